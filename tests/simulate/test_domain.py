"""The simulator's randomised domains: ranges respected, every draw recorded, determinism."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from agrostress.cube import BANDS
from agrostress.simulate import SimulationConfig, simulate_scene
from agrostress.simulate.domain import LATITUDE_RANGE, draw_domain, latitude_shift
from agrostress.simulate.heterogeneity import draw_patterns, tramline_fraction
from agrostress.simulate.landcover import (
    BUILT,
    COVER_NAMES,
    OTHER_PARCELS,
    WATER,
    WHEAT,
    built_up_spectrum,
    water_spectrum,
)
from agrostress.simulate.observation import acquisitions
from agrostress.simulate.vegetation import N_ONSET_AFTER_T1, RUST_ONSET_AFTER_T1


def test_domain_draws_stay_in_their_ranges():
    rng = np.random.default_rng(0)
    doms = [draw_domain(rng, None, len(BANDS)) for _ in range(400)]
    lat = np.array([d.latitude for d in doms])
    assert LATITUDE_RANGE[0] <= lat.min() and lat.max() <= LATITUDE_RANGE[1]
    assert lat.max() - lat.min() > 12  # the whole range is used
    weathers = {d.weather for d in doms}
    assert weathers == {"normal", "drought", "cool"}
    for d in doms:
        w = d.weather_shift_days
        if d.weather == "drought":
            assert -21 <= w <= -7 and d.canopy_factor < 1 and d.cloud_scale < 1
        elif d.weather == "cool":
            assert 3 <= w <= 10 and d.cloud_scale > 1
        assert d.season_shift_days == pytest.approx(latitude_shift(d.latitude) + w)
        assert d.orbits in (1, 2, 3)
        if d.outage:
            assert 10 <= d.outage[1] - d.outage[0] <= 25
        if d.baseline_change_doy is None:
            assert set(d.baseline_gain) == {1.0} and set(d.baseline_offset) == {0.0}
        else:
            assert max(abs(g - 1) for g in d.baseline_gain) < 0.05
            assert max(abs(o) for o in d.baseline_offset) < 0.015
    assert {d.orbits for d in doms} == {1, 2, 3}
    assert any(not d.s2b_available for d in doms) and any(d.outage for d in doms)
    # a pinned latitude is kept; phenology is later northwards (Hopkins: ~4 d per degree)
    assert draw_domain(rng, 52.5, len(BANDS)).latitude == 52.5
    assert latitude_shift(56) - latitude_shift(44) == pytest.approx(48)


def test_calendar_follows_orbits_satellites_and_outages():
    rng = np.random.default_rng(1)
    start, end = pd.Timestamp("2024-03-01"), pd.Timestamp("2024-07-20")
    base = draw_domain(np.random.default_rng(3), 48.0, len(BANDS))
    counts = {}
    for orbits in (1, 2, 3):
        dom = base.__class__(**{**base.__dict__, "orbits": orbits, "s2b_available": True, "outage": None})
        acq = acquisitions(rng, start, end, 48.0, dom)
        counts[orbits] = len(acq)
        assert {a.orbit for a in acq} == set(range(1, orbits + 1))
    assert counts[1] < counts[2] < counts[3]
    assert 25 <= counts[1] <= 32  # 5-day revisit, a few missing
    only_a = base.__class__(**{**base.__dict__, "orbits": 1, "s2b_available": False,
                               "outage": (120.0, 140.0)})
    acq = acquisitions(rng, start, end, 48.0, only_a)
    assert {a.platform for a in acq} == {"S2A"}
    doy = np.array([a.time.day_of_year for a in acq])
    assert not ((doy >= 120) & (doy <= 140)).any()


def test_scene_records_every_draw_and_is_deterministic():
    cfg = SimulationConfig(fields=4, size=48, seed=21)
    a, fa = simulate_scene(cfg)
    b, fb = simulate_scene(cfg)
    assert a.attrs["domain"] == b.attrs["domain"] and fa.equals(fb)
    np.testing.assert_array_equal(a.reflectance.values, b.reflectance.values)
    dom = json.loads(a.attrs["domain"])
    for key in ("latitude", "weather", "season_shift_days", "orbits", "s2b_available", "outage",
                "cloud_scale", "baseline_change_doy", "baseline_gain", "baseline_offset"):
        assert key in dom
    for col in ("green_up_doy", "senescence_doy", "harvest_doy", "tillage_doy", "sowing_delay_days",
                "cultivar_shift_days", "peak_lai", "headland_px", "tramline_spacing_m",
                "tramline_angle_deg", "soil_patch_share", "lodging_doy", "lodging_share",
                "weed_share", "n_onset", "n_severity", "rust_onset", "rust_focus_radius_px"):
        assert col in fa.columns, col
    assert (fa.senescence_doy > fa.green_up_doy).all()
    assert (fa.harvest_doy > fa.senescence_doy).all()
    assert json.loads(a.land_cover.attrs["cover_names"]) == {str(k): v for k, v in COVER_NAMES.items()}
    c, _ = simulate_scene(SimulationConfig(fields=4, size=48, seed=22))
    assert c.attrs["domain"] != a.attrs["domain"]


def test_latitude_sets_the_grid_and_the_season():
    south, fs = simulate_scene(SimulationConfig(fields=3, size=40, seed=4, latitude=41.0))
    north, fn = simulate_scene(SimulationConfig(fields=3, size=40, seed=4, latitude=56.0))
    assert json.loads(south.attrs["domain"])["latitude"] == 41.0
    assert north.y.values.mean() - south.y.values.mean() > 1.5e6  # ~15 degrees of northing
    # same seed, same weather draw: the north ripens about 4 days per degree later
    delay = fn.harvest_doy.mean() - fs.harvest_doy.mean()
    assert 45 <= delay <= 75, delay
    with pytest.raises(ValueError, match="latitude"):
        simulate_scene(SimulationConfig(fields=3, size=40, latitude=20.0))


def test_stress_onsets_follow_the_crop_stage():
    for seed in range(6):
        _, f = simulate_scene(SimulationConfig(fields=6, size=64, seed=100 + seed, difficulty="easy"))
        n = f[f.label == 1]
        rel = n.n_onset - n.green_up_doy
        # the field's mean green-up includes pixel scatter: allow a few days
        assert (rel >= N_ONSET_AFTER_T1[0] - 5).all() and (rel <= N_ONSET_AFTER_T1[1] + 5).all()
        r = f[f.label == 2]
        rel = r.rust_onset - r.green_up_doy
        assert (rel >= RUST_ONSET_AFTER_T1[0] - 5).all() and (rel <= RUST_ONSET_AFTER_T1[1] + 5).all()
        assert (r.rust_onset < r.senescence_doy).all()
        assert r.rust_rate.between(0.05, 0.25).all() and r.rust_focus_radius_px.between(0.3, 2).all()


def test_harvest_leaves_stubble_then_bare_soil():
    ds, f = simulate_scene(SimulationConfig(fields=4, size=48, seed=9, latitude=44.0,
                                            end="2024-08-31"))
    truth = ds.true_lai.values
    doy = ds.time.dt.dayofyear.values
    for _, row in f.iterrows():
        px = ds.field_id.values == row.field_id
        after = doy > row.harvest_doy + 3
        before = (doy > row.green_up_doy + 20) & (doy < row.senescence_doy - 20)
        assert after.any() and before.any()
        assert np.nanmax(truth[after][:, px]) == 0.0  # no green leaf after the harvest
        assert np.nanmean(truth[before][:, px]) > 1.0


def test_heterogeneity_patterns_stay_in_range():
    rng = np.random.default_rng(5)
    mask = np.zeros((60, 60), bool)
    mask[5:55, 8:50] = True
    lodged = weedy = 0
    for _ in range(40):
        p = draw_patterns(rng, mask, green_up=90.0)
        v = p.vigour[mask]
        assert v.min() >= 0.6 * 0.75 * 0.8 - 1e-9 and v.max() <= 1.0
        assert (p.vigour[~mask] == 1).all() and np.isinf(p.lodging[~mask]).all()
        edge = mask & ~np.pad(mask[1:-1, 1:-1] & mask[:-2, 1:-1] & mask[2:, 1:-1]
                              & mask[1:-1, :-2] & mask[1:-1, 2:], 1)
        assert p.vigour[edge].mean() < p.vigour[mask & ~edge].mean()  # headlands are thinner
        assert 18 <= p.tramline_spacing_m <= 36 and p.headland_px in (1.0, 2.0)
        assert 0 <= p.soil_patch_share <= 0.2
        if np.isfinite(p.lodging_doy):
            lodged += 1
            assert 140 <= p.lodging_doy <= 165
            share = np.isfinite(p.lodging[mask]).mean()
            assert 0.0 < share <= 0.3
        if p.weed_share:
            weedy += 1
            assert 0 < (p.weed_lai[mask] > 0).mean() <= 0.25
    assert 0 < lodged < 20 and 0 < weedy < 20
    # a tramline every 20 m at 0°: half of the pixel columns carry a wheel track
    frac = tramline_fraction((4, 10), spacing_m=20.0, angle_deg=0.0, offset_m=0.0)
    assert np.allclose(frac[0], frac[1]) and (frac > 0).sum(axis=1)[0] == 5


def test_other_land_covers_are_drawn_with_their_own_surfaces():
    ds, _ = simulate_scene(SimulationConfig(fields=12, size=128, seed=3, latitude=48.0))
    cover = ds.land_cover.values
    present = set(np.unique(cover)) - {WHEAT}
    assert len(present & set(OTHER_PARCELS)) >= 3
    wl = np.arange(400, 2501)
    assert water_spectrum(wl).max() < 0.06 and water_spectrum(wl)[450] < 0.01  # NIR dark
    assert built_up_spectrum(wl).min() > 0.05
    # water is dark in the NIR in the cube too; built-up is bright and flat
    clear = np.isin(ds.scl.values, [4, 5, 6])
    nir = ds.reflectance.values[:, BANDS.index("B08")]
    if (cover == WATER).any():
        assert np.nanmedian(nir[clear & (cover == WATER)[None]]) < 0.05
    if (cover == BUILT).any():
        assert np.nanmedian(nir[clear & (cover == BUILT)[None]]) > 0.08
