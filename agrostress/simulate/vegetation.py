"""Per-pixel vegetation and soil parameters over the season: crop phenology with harvest,
nitrogen deficiency, within-field heterogeneity and the other land covers.

Crops (double logistic, per field with pixel scatter; ranges in ``landcover.PHENOLOGY``)::

    s1 = σ(r1 (t − t1)),  s2 = σ(r2 (t − t2))
    green LAI  = (L0 + (Lpk − L0) s1) (1 − s2)          (the truth ``true_lai``)
    canopy LAI = (L0 + (Lpk − L0) s1) (1 − 0.75 s2)      (senescent leaves stay in the canopy)
    Cab = (C0 + (Cpk − C0) s1) (1 − 0.95 s2),  Car = 0.223 Cab + 0.986 + 2 s2 (+ scatter)
    Cbrown = brown_max s2,  Cw × (1 − 0.85 s2),  N + 0.3 s2,  Cm × (1 + 0.2 season progress)

After the harvest the canopy is straw stubble (dry, brown, LAI 0.3–1.2); after the tillage,
bare soil. Nitrogen deficiency (severity s, onset, smooth 15-day ramp ρ): LAI × (1 − 0.8 s ρ),
Cab × (1 − 0.6 s ρ), Car × (1 − 0.35 s ρ), t2 − 15 s, and an onset before green-up slows r1
by up to 40 %.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agrostress.simulate.difficulty import Difficulty
from agrostress.simulate.domain import SceneDomain
from agrostress.simulate.heterogeneity import FieldPatterns, draw_patterns
from agrostress.simulate.landcover import (
    BARE,
    BUILT,
    CROPS,
    FOREST,
    GRASS,
    HEDGE,
    PHENOLOGY,
    RAPESEED,
    TRACK,
    WATER,
    WHEAT,
)
from agrostress.simulate.layout import Layout, smooth_noise

HEALTHY, NITROGEN, RUST = 0, 1, 2
# N deficiency starts between tillering and flag leaf: days relative to the field's green-up
N_ONSET_AFTER_T1 = (-35.0, 35.0)
# rust symptoms from stem elongation on, at least 10 days before mid-senescence
RUST_ONSET_AFTER_T1 = (5.0, 70.0)
SURFACE_SOIL, SURFACE_WATER, SURFACE_BUILT = 0, 1, 2


def _sig(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass
class FieldTruth:
    """Ground truth of one wheat field (written to fields.geojson): stress and every draw."""

    field_id: int
    label: int
    n_severity: float = 0.0
    n_onset: float = float("nan")
    rust_onset: float = float("nan")
    rust_rate: float = float("nan")
    rust_max_fraction: float = 0.0
    rust_focus_share: float = 0.0
    rust_spread_px_per_day: float = 0.0
    rust_focus_radius_px: float = float("nan")
    green_up_doy: float = float("nan")  # t1, field mean
    senescence_doy: float = float("nan")  # t2, field mean (after any N effect)
    harvest_doy: float = float("nan")
    tillage_doy: float = float("nan")
    sowing_delay_days: float = 0.0
    cultivar_shift_days: float = 0.0
    peak_lai: float = float("nan")
    headland_px: float = 0.0
    tramline_spacing_m: float = 0.0
    tramline_angle_deg: float = 0.0
    soil_patch_share: float = 0.0
    lodging_doy: float = float("nan")
    lodging_share: float = 0.0
    weed_share: float = 0.0


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
    soil_redness: np.ndarray
    n_severity: np.ndarray
    n_onset: np.ndarray
    brown_max: np.ndarray
    harvest: np.ndarray  # DOY (inf: not in season)
    tillage: np.ndarray  # DOY stubble is ploughed in (inf: never)
    stubble_lai: np.ndarray
    precover_lai: np.ndarray  # winter cover crop / weeds before a spring crop
    precover_end: np.ndarray
    flower_doy: np.ndarray  # rapeseed flowering peak (inf: none)
    mow_first: np.ndarray
    mow_interval: np.ndarray
    lodging: np.ndarray  # DOY a pixel lodges (inf: never)
    weed_lai: np.ndarray  # green weeds that outlive the crop
    surface: np.ndarray  # SURFACE_SOIL | SURFACE_WATER | SURFACE_BUILT
    surface_brightness: np.ndarray


def draw_parameters(
    rng: np.random.Generator,
    layout: Layout,
    labels_per_field: list[int],
    difficulty: Difficulty,
    domain: SceneDomain,
) -> tuple[PixelParams, list[FieldTruth]]:
    """Draw field-level means, pixel scatter, heterogeneity and stresses for every pixel."""
    h, w = layout.cover.shape
    npx = h * w
    cover = layout.cover.ravel()
    fid = layout.field_id.ravel()
    parcel = layout.parcel.ravel()
    sc = difficulty.pixel_scatter
    n_parcels = int(parcel.max()) + 1
    kind = layout.parcel_cover

    def per_parcel(lo: float, hi: float) -> np.ndarray:
        return rng.uniform(lo, hi, n_parcels)[parcel]

    def scatter(sigma_px: float = 3.0) -> np.ndarray:
        # smooth (management/soil) plus white (plant-level) variability
        return (0.7 * smooth_noise(rng, (h, w), sigma_px) + 0.3 * rng.standard_normal((h, w))).ravel()

    # crop phenology per parcel, from its land cover's table, shifted by the scene's domain
    shift = domain.season_shift_days
    sowing = np.where(rng.random(n_parcels) < 0.25, rng.uniform(0, 14, n_parcels), 0.0)
    cultivar = rng.normal(0, 3, n_parcels)
    table = {k: np.zeros(n_parcels) for k in
             ("t1", "r1", "t2", "r2", "lai0", "laipk", "cab0", "cabpk", "brown", "harvest", "precover")}
    table["harvest"][:] = np.inf
    for code, ph in PHENOLOGY.items():
        m = kind == code
        if not m.any():
            continue
        k = int(m.sum())
        table["t1"][m] = rng.normal(*ph.t1, k) + shift + sowing[m]
        table["r1"][m] = rng.uniform(*ph.r1, k)
        table["t2"][m] = rng.normal(*ph.t2, k) + shift + cultivar[m] + 0.3 * sowing[m]
        table["r2"][m] = rng.uniform(*ph.r2, k)
        table["lai0"][m] = rng.uniform(*ph.lai0, k) * (1 - 0.4 * sowing[m] / 14)
        table["laipk"][m] = rng.uniform(*ph.laipk, k) * domain.canopy_factor
        table["cab0"][m] = rng.uniform(*ph.cab0, k)
        table["cabpk"][m] = rng.uniform(*ph.cabpk, k)
        table["brown"][m] = rng.uniform(*ph.brown_max, k)
        table["harvest"][m] = (table["t2"][m] + rng.uniform(*ph.harvest_after_t2, k)
                               if ph.harvest_after_t2 else np.inf)
        table["precover"][m] = np.where(rng.random(k) < ph.precover, rng.uniform(0.5, 2.5, k), 0.0)
    tillage_after = np.where(rng.random(n_parcels) < 0.7, rng.uniform(3, 50, n_parcels), np.inf)

    t1 = table["t1"][parcel] + 2.0 * sc * scatter()
    r1 = table["r1"][parcel]
    t2 = table["t2"][parcel] + 1.5 * sc * scatter()
    r2 = table["r2"][parcel]
    lai0 = table["lai0"][parcel] * (1 + 0.15 * sc * scatter())
    laipk = table["laipk"][parcel] * (1 + 0.08 * sc * scatter())
    cab0 = table["cab0"][parcel] * (1 + 0.05 * sc * scatter())
    cabpk = table["cabpk"][parcel] * (1 + 0.06 * sc * scatter())
    brown_max = table["brown"][parcel]
    harvest = table["harvest"][parcel] + rng.uniform(0, 2, npx)  # a field takes a day or two
    tillage = harvest + tillage_after[parcel]
    stubble_lai = per_parcel(0.3, 1.2)
    precover_lai = table["precover"][parcel]
    precover_end = per_parcel(85, 110) + shift
    car_off = 0.986 + 0.7 * rng.standard_normal(npx) * min(sc, 1.5) * 0.5
    n = per_parcel(1.4, 1.7) + 0.03 * sc * scatter()
    cw = per_parcel(0.025, 0.04) * (1 + 0.05 * sc * scatter())
    cm = per_parcel(0.003, 0.005) * (1 + 0.05 * sc * scatter())
    ant = per_parcel(0.0, 1.0)
    ala = per_parcel(55, 70) + 2.0 * sc * scatter()
    hotspot = per_parcel(0.05, 0.2)
    soil_brightness = per_parcel(0.7, 1.5) * (1 + 0.05 * sc * scatter(6.0))
    soil_moisture_offset = 0.1 * scatter(8.0)
    soil_redness = per_parcel(0.15, 0.5)  # iron oxides: blue darker than red (real bare soil PSRI ~0.3)
    flower_doy = np.where(kind == RAPESEED, table["t1"] + rng.uniform(22, 34, n_parcels), np.inf)[parcel]
    mow_first = per_parcel(125, 155) + shift
    mow_interval = per_parcel(30, 50)
    surface = np.full(npx, SURFACE_SOIL, np.uint8)
    surface_brightness = np.ones(npx)

    # the covers without a crop season
    grass, hedge, forest = cover == GRASS, cover == HEDGE, cover == FOREST
    bare = (cover == BARE) | (cover == TRACK) | (cover == WATER) | (cover == BUILT)
    conifer = forest & (per_parcel(0, 1) < 0.4)
    lai0 = np.where(grass, per_parcel(1.0, 2.0), lai0)
    laipk = np.where(grass, per_parcel(2.0, 4.5), laipk)
    laipk = np.where(hedge, per_parcel(3.5, 5.0) * (1 + 0.1 * scatter()), laipk)
    laipk = np.where(forest, per_parcel(3.5, 6.0) * (1 + 0.1 * scatter()), laipk)
    t1 = np.where(hedge | forest, per_parcel(108, 122) + shift, t1)
    cab0 = np.where(grass | hedge | forest, per_parcel(35, 45), cab0)
    cabpk = np.where(grass | hedge | forest, cab0, cabpk)
    ala = np.where(grass, 50.0, np.where(hedge | forest, np.where(conifer, 60.0, 45.0), ala))
    hotspot = np.where(hedge | forest, 0.4, hotspot)
    n = np.where(hedge | forest, 1.8, n)
    cm = np.where(hedge | forest, 0.008, cm)
    lai0 = np.where(forest, np.where(conifer, laipk, 0.6), lai0)
    soil_brightness = np.where(forest, 0.5, soil_brightness)
    soil_brightness = np.where(cover == TRACK, per_parcel(1.1, 1.5), soil_brightness)
    laipk = np.where(bare, 0.0, laipk)
    lai0 = np.where(bare, 0.0, lai0)
    surface = np.where(cover == WATER, SURFACE_WATER, np.where(cover == BUILT, SURFACE_BUILT, surface))
    surface_brightness = np.where(cover == WATER, per_parcel(0.7, 1.4),
                                  np.where(cover == BUILT, per_parcel(0.7, 1.6) * (1 + 0.15 * scatter(1.0)),
                                           surface_brightness))
    # fallow: weeds come up from May on bare parcels of kind BARE (not tracks)
    fallow = (cover == BARE) & (per_parcel(0, 1) < 0.5)
    weed_lai = np.where(fallow, per_parcel(0.3, 1.5), 0.0)

    # wheat fields: truth, heterogeneity and stresses
    lodging = np.full(npx, np.inf)
    n_sev = np.zeros(npx)
    n_onset = np.full(npx, np.inf)
    truths: list[FieldTruth] = []
    for i, label in enumerate(labels_per_field, start=1):
        m = fid == i
        p_index = int(np.bincount(parcel[m]).argmax())
        ft = FieldTruth(field_id=i, label=label, sowing_delay_days=float(sowing[p_index]),
                        cultivar_shift_days=float(cultivar[p_index]))
        green_up = float(table["t1"][p_index])
        pat: FieldPatterns = draw_patterns(rng, layout.field_id == i, green_up)
        vig = pat.vigour.ravel()[m]
        lai0[m] *= vig
        laipk[m] *= vig
        t2[m] -= pat.early_senescence.ravel()[m]
        soil_brightness[m] *= pat.soil_brightness.ravel()[m]
        lodging[m] = pat.lodging.ravel()[m]
        weed_lai[m] = pat.weed_lai.ravel()[m]
        ft.headland_px, ft.tramline_spacing_m = pat.headland_px, pat.tramline_spacing_m
        ft.tramline_angle_deg, ft.soil_patch_share = pat.tramline_angle_deg, pat.soil_patch_share
        ft.lodging_doy, ft.lodging_share = pat.lodging_doy, pat.lodging_share
        ft.weed_share = pat.weed_share
        if label == NITROGEN:
            ft.n_severity = float(rng.uniform(*difficulty.n_severity))
            ft.n_onset = green_up + float(rng.uniform(*N_ONSET_AFTER_T1))
            # poorer soil, stronger deficiency: a little spatial structure, mostly uniform
            n_sev[m] = ft.n_severity * (1 + 0.05 * rng.standard_normal()) * (1 + 0.1 * scatter(4.0)[m])
            n_onset[m] = ft.n_onset
        elif label == RUST:
            lo, hi = RUST_ONSET_AFTER_T1
            hi = min(hi, float(table["t2"][p_index]) - 10 - green_up)
            ft.rust_onset = green_up + float(rng.uniform(lo, max(lo + 1, hi)))
            ft.rust_rate = float(rng.uniform(0.05, 0.25))
            ft.rust_max_fraction = float(rng.uniform(*difficulty.rust_max_fraction))
            ft.rust_focus_share = float(rng.uniform(*difficulty.rust_focus_share))
            ft.rust_spread_px_per_day = float(rng.uniform(0.01, 0.08))
            ft.rust_focus_radius_px = float(rng.uniform(0.3, 2.0))
        truths.append(ft)
    # N deficiency: earlier senescence, slower green-up when it starts before it
    n_sev = np.clip(n_sev, 0, 0.9)
    t2 = t2 - 15.0 * n_sev
    r1 = r1 * np.where(n_onset < t1, 1.0 - 0.4 * np.minimum(n_sev, 0.6) / 0.6, 1.0)
    for ft in truths:
        m = fid == ft.field_id
        ft.green_up_doy = float(np.mean(t1[m]))
        ft.senescence_doy = float(np.mean(t2[m]))
        ft.harvest_doy = float(np.mean(harvest[m]))
        ft.tillage_doy = float(np.mean(tillage[m]))
        ft.peak_lai = float(np.mean(laipk[m]))
    params = PixelParams(
        cover=cover, t1=t1, r1=r1, t2=t2, r2=r2, lai0=lai0, laipk=laipk, cab0=cab0, cabpk=cabpk,
        car_off=car_off, n=n, cw=cw, cm=cm, ant=ant, ala=ala, hotspot=hotspot,
        soil_brightness=soil_brightness, soil_moisture_offset=soil_moisture_offset,
        soil_redness=soil_redness, n_severity=n_sev, n_onset=n_onset, brown_max=brown_max, harvest=harvest, tillage=tillage,
        stubble_lai=stubble_lai, precover_lai=precover_lai, precover_end=precover_end,
        flower_doy=flower_doy, mow_first=mow_first, mow_interval=mow_interval, lodging=lodging,
        weed_lai=weed_lai, surface=surface, surface_brightness=surface_brightness,
    )
    return params, truths


LODGED_ALA = 35.0  # a lodged canopy lies flat: planophile leaves


def state_at(p: PixelParams, doy: float) -> dict[str, np.ndarray]:
    """Leaf (PROSPECT) and canopy (SAIL) parameters of every pixel on day ``doy``."""
    s1 = _sig(p.r1 * (doy - p.t1))
    s2 = _sig(p.r2 * (doy - p.t2))
    size = p.lai0 + (p.laipk - p.lai0) * s1
    green_lai = size * (1 - s2)
    lai = size * (1 - 0.75 * s2)
    cab = (p.cab0 + (p.cabpk - p.cab0) * s1) * (1 - 0.95 * s2)
    car_extra = 2.0 * s2
    cbrown = p.brown_max * s2
    cw = p.cw * (1 - 0.85 * s2)
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

    # rapeseed flowers: yellow petals over the canopy for ~3 weeks (carotenoids, less chlorophyll)
    bloom = np.exp(-0.5 * ((doy - p.flower_doy) / 7.0) ** 2)
    cab = cab * (1 - 0.55 * bloom)
    car = car + 12.0 * bloom

    # winter cover crop or weeds before a spring crop, destroyed in spring
    pre = p.precover_lai * (1 - _sig(0.3 * (doy - p.precover_end)))
    pre_share = pre / np.maximum(lai + pre, 1e-6)
    lai, green_lai = lai + pre, green_lai + pre
    cab = cab * (1 - pre_share) + 40.0 * pre_share
    cbrown = cbrown * (1 - pre_share)

    # weeds that stay green when the crop ripens (and fallow regrowth)
    weeds = p.weed_lai * _sig(0.1 * (doy - 120))
    extra = np.maximum(weeds - green_lai, 0.0)
    weed_share = extra / np.maximum(lai + extra, 1e-6)
    lai, green_lai = lai + extra, green_lai + extra
    cab = cab * (1 - weed_share) + 38.0 * weed_share
    cbrown = cbrown * (1 - weed_share)
    cw = cw * (1 - weed_share) + 0.02 * weed_share

    # harvest: straw stubble (dry, brown), then bare soil after the tillage
    cut = doy >= p.harvest
    ploughed = doy >= p.tillage
    lai = np.where(cut, np.where(ploughed, 0.0, p.stubble_lai), lai)
    green_lai = np.where(cut, 0.0, green_lai)
    cab = np.where(cut, 1.0, cab)
    car = np.where(cut, 2.0, car)
    cbrown = np.where(cut, np.maximum(p.brown_max, 4.0), cbrown)
    cw = np.where(cut, 0.002, cw)
    n = np.where(cut, 2.0, n)
    cm = np.where(cut, 0.008, cm)

    # grassland: a first cut in May-June, then every 30-50 days; regrowth over ~25 days
    grass = p.cover == GRASS
    since = doy - p.mow_first
    since_mow = np.where(since < 0, 1e3, np.mod(since, p.mow_interval))
    spring = p.lai0 + (p.laipk - p.lai0) * _sig(0.08 * (doy - 95))
    grass_lai = spring * (0.25 + 0.75 * np.clip(since_mow / 25.0, 0, 1))
    # hedges and forest: deciduous leaf-out in April (conifers keep lai0 = laipk)
    woody = (p.cover == HEDGE) | (p.cover == FOREST)
    wood_lai = p.lai0 + (p.laipk - p.lai0) * _sig(0.12 * (doy - p.t1))
    green_lai = np.where(grass, grass_lai, np.where(woody, wood_lai, green_lai))
    lai = np.where(grass, grass_lai, np.where(woody, wood_lai, lai))
    cab = np.where(grass | woody, p.cab0, cab)
    car = np.where(grass | woody, 10.0, car)
    cbrown = np.where(grass, 0.3 * np.clip((doy - 160) / 40, 0, 1), np.where(woody, 0.0, cbrown))
    cw = np.where(grass | woody, 0.015, cw)
    n = np.where(grass, 1.5, np.where(woody, 1.8, n))
    no_canopy = (p.cover == TRACK) | (p.surface != SURFACE_SOIL)
    green_lai = np.where(no_canopy, 0.0, green_lai)
    lai = np.where(no_canopy, 0.0, lai)
    crop = np.isin(p.cover, CROPS)
    lodged = crop & (doy >= p.lodging)
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
        "ala": np.where(lodged, LODGED_ALA, p.ala),
        "lodged": lodged,
        "hotspot": p.hotspot,
        "wheat": p.cover == WHEAT,
    }
