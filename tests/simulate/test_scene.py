"""Simulated scenes: contract, plausibility, class signatures, determinism, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from agrostress import cube
from agrostress.cli import app
from agrostress.simulate import SimulationConfig, read_fields, simulate_scene

B = {b: i for i, b in enumerate(cube.BANDS)}


def clear(ds: xr.Dataset) -> np.ndarray:
    return np.isin(ds.scl.values, [4, 5])


def test_scene_is_a_valid_labelled_cube(small_scene):
    ds, fields = small_scene
    cube.validate(ds, require_labels=True)
    assert set(np.unique(ds.label.values)) == {-1, 0, 1, 2}
    assert sorted(fields.field_id) == list(range(1, 7))
    assert set(fields.label) == {0, 1, 2}
    for _, f in fields.iterrows():  # labels on the grid agree with the polygons
        assert set(np.unique(ds.label.values[ds.field_id.values == f.field_id])) == {f.label}
    assert fields.crs.to_epsg() == 32631
    dom = json.loads(ds.attrs["domain"])
    assert set(ds.platform.values) == ({"S2A", "S2B"} if dom["s2b_available"] else {"S2A"})


def test_acquisitions_follow_the_recorded_calendar(small_scene):
    ds, _ = small_scene
    dom = json.loads(ds.attrs["domain"])
    hours = np.diff(ds.time.values).astype("timedelta64[h]").astype(int)
    assert hours.min() >= 20  # one overpass a day at most
    revisit = 10 / (dom["orbits"] * (2 if dom["s2b_available"] else 1))
    assert np.median(hours) / 24 <= revisit + 1
    assert hours.max() / 24 >= revisit + 1  # missing acquisitions leave longer gaps
    assert set(ds.relative_orbit.values) == set(range(1, dom["orbits"] + 1))
    doy = ds.time.dt.dayofyear.values
    assert doy.min() <= 60 and doy.max() >= 200


def test_clouds_shadows_and_cirrus_are_flagged(small_scene):
    ds, _ = small_scene
    scl = ds.scl.values
    unusable = np.isin(scl, [3, 8, 9, 10]).mean(axis=(1, 2))
    assert 0.25 < (unusable > 0.5).mean() < 0.8  # spring climatology
    for code in (3, 8, 9):
        assert (scl == code).any(), code
    refl = ds.reflectance.values
    cloud = scl == 9
    visible = refl[:, B["B02"]]
    assert np.nanmean(visible[cloud]) > np.nanmean(visible[scl == 4]) + 0.2


def test_peak_season_healthy_wheat_is_plausible(small_scene):
    ds, _ = small_scene
    doy = ds.time.dt.dayofyear.values
    peak = (doy >= 115) & (doy <= 150)  # April-May at 48 °N, as the real wheat's peak
    healthy = ds.label.values == 0
    sel = clear(ds)[peak][:, healthy]
    refl = ds.reflectance.values[peak][:, :, healthy]  # (t, band, px)
    red = refl[:, B["B04"]][sel]
    nir = refl[:, B["B08"]][sel]
    ndvi = (nir - red) / (nir + red)
    assert sel.sum() > 100
    # real wheat (shared/real, France 2023): peak NDVI medians 0.85-0.91, 10 % quantile ~0.75
    assert 0.82 <= np.median(ndvi) <= 0.93
    assert np.mean((ndvi > 0.7) & (ndvi < 0.97)) > 0.85
    assert 0.01 <= np.median(red) <= 0.05
    assert 0.25 <= np.median(nir) <= 0.55


def test_stress_signatures_order_the_classes(easy_scene):
    """After the onsets: healthy wheat highest in chlorophyll and lowest in PSRI."""
    ds, fields = easy_scene
    doy = ds.time.dt.dayofyear.values
    late = (doy >= 140) & (doy <= 160)  # after most onsets, before ripening at 48 °N
    ok = clear(ds)[late]
    refl = ds.reflectance.values[late]
    sev = ds.rust_severity.values[late]

    def index_mean(cls: int, formula, extra=None) -> float:
        px = ds.label.values == cls
        sel = ok & px[None] if extra is None else ok & px[None] & extra
        vals = formula(refl)[sel]
        return float(np.nanmean(vals))

    def cire(r):  # chlorophyll index red edge
        return r[:, B["B07"]] / r[:, B["B05"]] - 1

    def psri(r):  # plant senescence reflectance index
        return (r[:, B["B04"]] - r[:, B["B02"]]) / r[:, B["B06"]]

    infected = sev > 0.1
    assert infected.any()
    h, n, y = index_mean(0, cire), index_mean(1, cire), index_mean(2, cire, infected)
    assert h > n and h > y, (h, n, y)
    # both stresses raise PSRI over healthy wheat (pigments; and the thinner N-deficient
    # canopy shows more of the red soil): what tells them apart is the pattern, below
    hp, np_, yp = index_mean(0, psri), index_mean(1, psri), index_mean(2, psri, infected)
    assert yp > hp and np_ > hp, (hp, np_, yp)
    # truth tracks the stresses: N lowers chlorophyll, rust is patchy, N is field-uniform
    cab = ds.true_cab.values[late]
    assert np.nanmean(cab[:, ds.label.values == 1]) < np.nanmean(cab[:, ds.label.values == 0])
    rust_fields = fields[fields.label == 2].field_id
    cv = [np.std(sev[-1][ds.field_id.values[None][0] == f]) for f in rust_fields]
    assert max(cv) > 0.02


def test_determinism_per_seed():
    cfg = SimulationConfig(fields=3, size=32, seed=5)
    a, fa = simulate_scene(cfg)
    b, fb = simulate_scene(cfg)
    xr.testing.assert_identical(a, b)
    assert fa.equals(fb)
    c, _ = simulate_scene(SimulationConfig(fields=3, size=32, seed=6))
    assert not np.array_equal(a.label.values, c.label.values)


def test_bad_configs_are_rejected():
    with pytest.raises(ValueError, match="unknown difficulty"):
        simulate_scene(SimulationConfig(fields=3, size=32, difficulty="extreme"))
    with pytest.raises(ValueError, match="fields need at least"):
        simulate_scene(SimulationConfig(fields=40, size=32))
    with pytest.raises(ValueError, match="not after start"):
        simulate_scene(SimulationConfig(fields=3, size=32, start="2024-06-01", end="2024-05-01"))


def test_cli_simulate_writes_cube_and_fields(tmp_path):
    out = tmp_path / "s.zarr"
    res = CliRunner().invoke(app, ["simulate", "--out", str(out), "--fields", "4", "--size", "40",
                                   "--seed", "2"])
    assert res.exit_code == 0, res.output
    ds = xr.open_zarr(out)
    cube.validate(cube.read_zarr(out), require_labels=True)
    assert json.loads(ds.attrs["simulation_config"])["seed"] == 2
    fields = read_fields(out)
    assert len(fields) == 4 and {"field_id", "label", "n_severity", "rust_onset"} <= set(fields)
    res = CliRunner().invoke(app, ["validate", str(out)])
    assert res.exit_code == 0 and "valid cube" in res.output


def test_cli_simulate_reports_bad_input(tmp_path):
    res = CliRunner().invoke(app, ["simulate", "--out", str(tmp_path / "x.zarr"), "--fields", "50",
                                   "--size", "32"])
    assert res.exit_code == 2
    assert "fields need at least" in res.output
    assert not (tmp_path / "x.zarr").exists()
