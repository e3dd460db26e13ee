"""Per-pixel vegetation and soil parameters over the season: wheat phenology, nitrogen
deficiency, other land covers. Numbers follow ``shared/docs/simulator.md``.

Wheat (double logistic, per field with pixel scatter)::

    s1 = σ(r1 (t − t1)),  s2 = σ(r2 (t − t2))
    green LAI  = (L0 + (Lpk − L0) s1) (1 − s2)          (the truth ``true_lai``)
    canopy LAI = (L0 + (Lpk − L0) s1) (1 − 0.6 s2)      (senescent leaves stay in the canopy)
    Cab = (C0 + (Cpk − C0) s1) (1 − 0.85 s2),  Car = 0.223 Cab + 0.986 + 2 s2 (+ scatter)
    Cbrown = 1.5 s2,  Cw × (1 − 0.7 s2),  N + 0.3 s2,  Cm × (1 + 0.2 season progress)

Nitrogen deficiency (severity s, onset, smooth 15-day ramp ρ): LAI × (1 − 0.8 s ρ),
Cab × (1 − 0.6 s ρ), Car × (1 − 0.35 s ρ) (Car/Cab raised), t2 − 15 s, and an onset before
green-up slows r1 by up to 40 %.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from agrostress.simulate.difficulty import Difficulty
from agrostress.simulate.layout import BARE, GRASS, HEDGE, TRACK, WHEAT, Layout, smooth_noise

HEALTHY, NITROGEN, RUST = 0, 1, 2


def _sig(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass
class FieldStress:
    """Ground truth of one wheat field (written to fields.geojson)."""

    field_id: int
    label: int
    n_severity: float = 0.0
    n_onset: float = float("nan")
    rust_onset: float = float("nan")
    rust_rate: float = float("nan")
    rust_max_fraction: float = 0.0
    rust_focus_share: float = 0.0
    rust_spread_px_per_day: float = 0.0


@dataclass
class PixelParams:
    """Static per-pixel parameters (flattened scene), from which any date's state follows."""

    cover: np.ndarray
    t1: np.ndarray
    r1: np.ndarray
    t2: np.ndarray
    r2: np.ndarray
    lai0: np.ndarray
    laipk: np.ndarray
    cab0: np.ndarray
    cabpk: np.ndarray
    car_off: np.ndarray
    n: np.ndarray
    cw: np.ndarray
    cm: np.ndarray
    ant: np.ndarray
    ala: np.ndarray
    hotspot: np.ndarray
    soil_brightness: np.ndarray
    soil_moisture_offset: np.ndarray
    n_severity: np.ndarray
    n_onset: np.ndarray
    mow_phase: np.ndarray
    extra: dict[str, np.ndarray] = field(default_factory=dict)


def draw_parameters(
    rng: np.random.Generator,
    layout: Layout,
    labels_per_field: list[int],
    difficulty: Difficulty,
) -> tuple[PixelParams, list[FieldStress]]:
    """Draw field-level means, pixel scatter and stress parameters for every pixel."""
    h, w = layout.cover.shape
    npx = h * w
    cover = layout.cover.ravel()
    fid = layout.field_id.ravel()
    parcel = layout.parcel.ravel()
    sc = difficulty.pixel_scatter
    n_parcels = int(parcel.max()) + 1

    def per_parcel(lo: float, hi: float) -> np.ndarray:
        return rng.uniform(lo, hi, n_parcels)[parcel]

    def scatter(sigma_px: float = 3.0) -> np.ndarray:
        # smooth (management/soil) plus white (plant-level) variability
        return (0.7 * smooth_noise(rng, (h, w), sigma_px) + 0.3 * rng.standard_normal((h, w))).ravel()

    t1 = rng.normal(110, 7, n_parcels)[parcel] + 2.0 * sc * scatter()
    r1 = per_parcel(0.06, 0.10)
    t2 = rng.normal(180, 6, n_parcels)[parcel] + 1.5 * sc * scatter()
    r2 = per_parcel(0.07, 0.12)
    lai0 = per_parcel(0.3, 1.0) * (1 + 0.1 * sc * scatter())
    laipk = per_parcel(4.0, 7.0) * (1 + 0.08 * sc * scatter())
    cab0 = per_parcel(30, 40) * (1 + 0.05 * sc * scatter())
    cabpk = per_parcel(45, 62) * (1 + 0.06 * sc * scatter())
    car_off = 0.986 + 0.7 * rng.standard_normal(npx) * min(sc, 1.5) * 0.5
    n = per_parcel(1.4, 1.7) + 0.03 * sc * scatter()
    cw = per_parcel(0.013, 0.020) * (1 + 0.05 * sc * scatter())
    cm = per_parcel(0.004, 0.006) * (1 + 0.05 * sc * scatter())
    ant = per_parcel(0.0, 1.0)
    ala = per_parcel(55, 70) + 2.0 * sc * scatter()
    hotspot = per_parcel(0.05, 0.2)
    soil_brightness = per_parcel(0.6, 1.3) * (1 + 0.05 * sc * scatter(6.0))
    soil_moisture_offset = 0.1 * scatter(8.0)
    mow_phase = per_parcel(0, 35)

    # other covers
    grass = cover == GRASS
    hedge = cover == HEDGE
    bare = (cover == BARE) | (cover == TRACK)
    laipk = np.where(grass, per_parcel(2.0, 4.0), laipk)
    laipk = np.where(hedge, per_parcel(3.5, 5.0) * (1 + 0.1 * scatter()), laipk)
    ala = np.where(grass, 50.0, np.where(hedge, 45.0, ala))
    hotspot = np.where(hedge, 0.4, hotspot)
    n = np.where(hedge, 1.8, n)
    cm = np.where(hedge, 0.008, cm)
    soil_brightness = np.where(cover == TRACK, per_parcel(1.1, 1.5), soil_brightness)
    laipk = np.where(bare, 0.0, laipk)
    lai0 = np.where(bare, 0.0, lai0)

    n_sev = np.zeros(npx)
    n_onset = np.full(npx, np.inf)
    stresses: list[FieldStress] = []
    for i, label in enumerate(labels_per_field, start=1):
        fs = FieldStress(field_id=i, label=label)
        if label == NITROGEN:
            fs.n_severity = float(rng.uniform(*difficulty.n_severity))
            fs.n_onset = float(rng.uniform(60, 140))
            m = fid == i
            n_sev[m] = fs.n_severity * (1 + 0.05 * rng.standard_normal())
            n_onset[m] = fs.n_onset
        elif label == RUST:
            fs.rust_onset = float(rng.uniform(95, 160))
            fs.rust_rate = float(rng.uniform(0.08, 0.2))
            fs.rust_max_fraction = float(rng.uniform(*difficulty.rust_max_fraction))
            fs.rust_focus_share = float(rng.uniform(*difficulty.rust_focus_share))
            fs.rust_spread_px_per_day = float(rng.uniform(0.02, 0.06))
        stresses.append(fs)
    # N deficiency: earlier senescence, slower green-up when it starts before it
    t2 = t2 - 15.0 * n_sev
    r1 = r1 * np.where(n_onset < t1, 1.0 - 0.4 * n_sev / 0.6, 1.0)
    params = PixelParams(
        cover=cover,
        t1=t1,
        r1=r1,
        t2=t2,
        r2=r2,
        lai0=lai0,
        laipk=laipk,
        cab0=cab0,
        cabpk=cabpk,
        car_off=car_off,
        n=n,
        cw=cw,
        cm=cm,
        ant=ant,
        ala=ala,
        hotspot=hotspot,
        soil_brightness=soil_brightness,
        soil_moisture_offset=soil_moisture_offset,
        n_severity=n_sev,
        n_onset=n_onset,
        mow_phase=mow_phase,
    )
    return params, stresses


def state_at(p: PixelParams, doy: float) -> dict[str, np.ndarray]:
    """Leaf (PROSPECT) and canopy (SAIL) parameters of every pixel on day ``doy``."""
    s1 = _sig(p.r1 * (doy - p.t1))
    s2 = _sig(p.r2 * (doy - p.t2))
    size = p.lai0 + (p.laipk - p.lai0) * s1
    green_lai = size * (1 - s2)
    lai = size * (1 - 0.6 * s2)
    cab = (p.cab0 + (p.cabpk - p.cab0) * s1) * (1 - 0.85 * s2)
    car_extra = 2.0 * s2
    cbrown = 1.5 * s2
    cw = p.cw * (1 - 0.7 * s2)
    n = p.n + 0.3 * s2
    cm = p.cm * (1 + 0.2 * np.clip((doy - 60) / 140, 0, 1))

    # nitrogen deficiency: smooth ramp after onset
    x = np.clip((doy - p.n_onset) / 15.0, 0.0, 1.0)
    ramp = x * x * (3 - 2 * x)
    lai_f = 1 - 0.8 * p.n_severity * ramp
    cab_f = 1 - 0.6 * p.n_severity * ramp
    car_f = 1 - 0.35 * p.n_severity * ramp
    green_lai, lai, cab = green_lai * lai_f, lai * lai_f, cab * cab_f
    car = (0.223 * cab / cab_f + p.car_off) * car_f + car_extra  # Car follows unstressed Cab

    # grass: mown every ~35 days, regrows over ~20 days; summer drying
    grass = p.cover == GRASS
    since_mow = np.mod(doy + p.mow_phase, 35.0)
    grass_lai = p.laipk * (0.3 + 0.7 * np.clip(since_mow / 20.0, 0, 1))
    # hedges: deciduous leaf-out in April
    hedge = p.cover == HEDGE
    hedge_lai = 0.8 + p.laipk * _sig(0.12 * (doy - 112))
    green_lai = np.where(grass, grass_lai, np.where(hedge, hedge_lai, green_lai))
    lai = np.where(grass, grass_lai, np.where(hedge, hedge_lai, lai))
    cab = np.where(grass, 42.0, np.where(hedge, 45.0, cab))
    car = np.where(grass | hedge, 10.0, car)
    cbrown = np.where(grass, 0.2 * np.clip((doy - 150) / 50, 0, 1), np.where(hedge, 0.0, cbrown))
    cw = np.where(grass | hedge, 0.015, cw)
    n = np.where(grass, 1.5, np.where(hedge, 1.8, n))
    bare = (p.cover == BARE) | (p.cover == TRACK)
    green_lai = np.where(bare, 0.0, green_lai)
    lai = np.where(bare, 0.0, lai)
    return {
        "n": n,
        "cab": cab,
        "car": np.maximum(car, 0.0),
        "cbrown": cbrown,
        "cw": cw,
        "cm": cm,
        "ant": p.ant,
        "lai": lai,
        "green_lai": green_lai,
        "ala": p.ala,
        "hotspot": p.hotspot,
        "wheat": p.cover == WHEAT,
    }
