"""Temporal regularisation: exactness, masking, gaps, edges, smoothing, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest

from agrostress.preprocess.grid import (
    Regularisation,
    TemporalGrid,
    day_of_year,
    insufficient,
    regularise,
    smooth,
)
from tests.preprocess.pp_synth import DOYS, linear_series


def test_grid_parse_and_doys():
    g = TemporalGrid.parse("60:200:5")
    assert g == TemporalGrid() and len(g) == 29 and g.doys[0] == 60 and g.doys[-1] == 200
    assert str(TemporalGrid.parse("10:40")) == "10:40:5"
    for bad in ("60-200", "60:200:0", "200:60:5", "a:b:c"):
        with pytest.raises(ValueError):
            TemporalGrid.parse(bad)


def test_day_of_year_picks_majority_year():
    t = np.array(["2023-12-31", "2024-01-01", "2024-03-01"], dtype="datetime64[ns]")
    doys, year = day_of_year(t)
    assert year == 2024 and doys.tolist() == [0.0, 1.0, 61.0]


def test_interpolation_exact_on_piecewise_linear():
    # Knots at 100 and 150 are observation days, so linear interpolation is exact.
    d = np.array(
        [52, 57, 63, 70, 80, 91, 100, 108, 119, 130, 141, 150, 155, 166, 177, 188, 196, 206.0]
    )
    v = np.stack([linear_series(d, y, 0, b) for y in range(3) for b in range(2)], axis=1)
    r = regularise(v, d, "60:200:5", max_gap=30)
    g = TemporalGrid().doys.astype(float)
    truth = np.stack([linear_series(g, y, 0, b) for y in range(3) for b in range(2)], axis=1)
    assert r.step_valid.all()
    np.testing.assert_allclose(r.values[:, 0, :], truth, atol=2e-7)
    # observations that fall on a grid step are reproduced bit-exactly
    on = np.isin(g, d)
    hit = np.searchsorted(d, g[on])
    np.testing.assert_array_equal(r.values[on, 0, :], v[hit])


def test_matches_numpy_interp_on_random_irregular_series():
    rng = np.random.default_rng(3)
    T, C, P = len(DOYS), 3, 400
    v = rng.random((T, C, P), dtype=np.float32)
    valid = rng.random((T, P)) > 0.35
    r = regularise(v, DOYS, None, valid=valid, max_gap=1000, edge=1000)
    g = TemporalGrid().doys
    for p in range(P):
        m = valid[:, p]
        if m.sum() == 0:
            assert not r.step_valid[:, p].any()
            continue
        for c in range(C):
            ref = np.interp(g, DOYS[m], v[m, c, p])
            np.testing.assert_allclose(r.values[:, c, p], ref, rtol=1e-5, atol=1e-6)


def test_masked_dates_never_leak():
    T, P = len(DOYS), 50
    rng = np.random.default_rng(1)
    v = rng.uniform(0.1, 0.2, (T, 2, P)).astype(np.float32)
    valid = rng.random((T, P)) > 0.4
    v[~np.broadcast_to(valid[:, None, :], v.shape)] = 1e6  # poison every masked observation
    v[3, 0, 7] = np.nan  # a NaN in one channel invalidates that observation for all channels
    v[3, 1, 7] = 1e6
    r = regularise(v, DOYS, None, valid=valid, smoother=None)
    assert np.nanmax(r.values) < 0.21
    rs = regularise(v, DOYS, None, valid=valid, smoother="whittaker", lam=5)
    assert np.nanmax(rs.values) < 0.5


def test_all_cloud_pixel_is_missing_not_invented():
    T = len(DOYS)
    v = np.full((T, 1, 3), 0.3, dtype=np.float32)
    valid = np.ones((T, 3), dtype=bool)
    valid[:, 1] = False
    r = regularise(v, DOYS, None, valid=valid)
    assert not r.step_valid[:, 1].any() and np.isnan(r.values[:, 0, 1]).all()
    assert r.valid_count[1] == 0 and r.longest_gap[1] == 140
    assert insufficient(r.valid_count, r.step_valid).tolist() == [False, True, False]


def test_max_gap_and_edges():
    d = np.array([40.0, 70, 75, 120, 125, 190])  # a 45-day hole between 75 and 120
    v = d.astype(np.float32)  # value = its own DOY: interpolation returns the grid DOY
    r = regularise(v, d, "60:200:5", max_gap=30, edge=10)
    g = TemporalGrid().doys
    ok = r.step_valid[:, 0]
    # 60, 65 bracketed by 40 & 70: gap 30 ≤ 30 → valid; 80..115 inside the 45-day hole → missing;
    # 130..185 inside the 65-day hole → missing; 190 observed; 195, 200 within edge 10 of 190.
    expect = (g <= 75) | (g >= 120) & (g <= 125) | (g >= 190)
    np.testing.assert_array_equal(ok, expect)
    np.testing.assert_allclose(r.values[ok, 0, 0], np.where(g[ok] > 190, 190, g[ok]))
    assert r.longest_gap[0] == 65 and r.valid_count[0] == 5  # DOY 40 is outside 60−10


def test_exact_hit_inside_a_long_gap_is_kept():
    d = np.array([50.0, 100, 160])
    r = regularise(d.astype(np.float32), d, "60:160:20", max_gap=30)
    assert r.step_valid[:, 0].tolist() == [False, False, True, False, False, True]


def test_whittaker_matches_dense_solve_and_keeps_missing():
    rng = np.random.default_rng(0)
    G, C, P = 29, 2, 60
    y = rng.normal(size=(G, C, P)).astype(np.float32)
    sv = rng.random((G, P)) > 0.2
    y[~np.broadcast_to(sv[:, None], y.shape)] = np.nan
    z = smooth(y, sv, lam=7.0)
    D = np.diff(np.eye(G), n=2, axis=0)
    for p in range(P):
        w = sv[:, p].astype(float)
        ref = np.linalg.solve(np.diag(w) + 7.0 * D.T @ D, (w[:, None] * np.nan_to_num(y[:, :, p])))
        ref[~sv[:, p]] = np.nan
        np.testing.assert_allclose(z[:, :, p], ref, atol=2e-5)


def test_regularisation_options_validate():
    with pytest.raises(ValueError):
        Regularisation(max_gap=0)
    with pytest.raises(ValueError):
        Regularisation(smoother="loess")
    assert Regularisation(max_gap=20).edge_days == 10


def test_bad_inputs():
    d = np.array([100.0, 110, 120])
    with pytest.raises(ValueError, match="outside the data's season"):
        regularise(np.ones(3, np.float32), d, "250:300:5")
    with pytest.raises(ValueError, match="strictly increasing"):
        regularise(np.ones(3, np.float32), np.array([100.0, 100, 120]), None)
    with pytest.raises(ValueError, match="dates for"):
        regularise(np.ones(4, np.float32), d, None)
