"""The field simulator: a labelled Sentinel-2 L2A cube of wheat fields, physically based.

Chain per acquisition: per-pixel state (phenology, stresses) → PROSPECT-D leaves (rust leaves
as area-weighted mixtures of healthy and symptomatic leaves) → 4SAIL canopy over a soil of
varying moisture → S2A/S2B spectral responses → misregistration, atmosphere residuals, clouds,
shadows, haze, noise → L2A quantisation and SCL.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr
from pyproj import CRS, Transformer
from rasterio.transform import from_origin
from scipy import ndimage

from agrostress import __version__
from agrostress.cube import BANDS, CLASS_NAMES, UNLABELLED, build_cube
from agrostress.simulate.canopy import campbell_lidf
from agrostress.simulate.difficulty import get_difficulty
from agrostress.simulate.domain import draw_domain
from agrostress.simulate.kernels import prospect_fast, sail_bands_fast
from agrostress.simulate.landcover import COVER_NAMES, WHEAT, built_up_spectrum, water_spectrum
from agrostress.simulate.layout import make_layout
from agrostress.simulate.leaf import prospect_d
from agrostress.simulate.observation import acquisitions, draw_sky, misregister, observe
from agrostress.simulate.rust import RustField, RustMap
from agrostress.simulate.sensor import band_centroids, spectral_sampling
from agrostress.simulate.vegetation import (
    LODGED_ALA,
    RUST,
    SURFACE_BUILT,
    SURFACE_SOIL,
    SURFACE_WATER,
    FieldTruth,
    draw_parameters,
    state_at,
)

RESOLUTION = 10.0
PIXEL_BLOCK = 16384  # pixels per PROSAIL batch (bounds memory: ~40 arrays of block × W floats)


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate. The scene is ``width`` × ``height`` pixels of 10 m (default square)."""

    fields: int = 12
    size: int = 128
    width: int | None = None
    height: int | None = None
    year: int = 2024
    seed: int = 0
    difficulty: str = "benchmark"
    epsg: int = 32631
    # upper-left corner (x, y) in ``epsg``; None: easting 500 000 and the northing of ``latitude``
    origin: tuple[float, float] | None = None
    # °N of the scene (phenology follows it); None: from ``origin``, or drawn in 40–57 °N
    latitude: float | None = None
    start: str | None = None  # ISO date, default 20 Feb of ``year``
    end: str | None = None  # ISO date, default 25 Jul of ``year``
    spectral_step_nm: int | None = None  # None: fitted quadrature nodes (see sensor.py)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height or self.size, self.width or self.size)

    def period(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        start = pd.Timestamp(self.start or f"{self.year}-02-20")
        end = pd.Timestamp(self.end or f"{self.year}-07-25")
        if end <= start:
            raise ValueError(f"end {end.date()} is not after start {start.date()}")
        return start, end

    def validate(self) -> None:
        h, w = self.shape
        if self.fields < 1:
            raise ValueError("fields must be >= 1")
        if min(h, w) < 8 or h * w > 4096 * 4096:
            raise ValueError(f"scene size {h}x{w} px out of range (8..4096 a side)")
        if h * w < self.fields * 60:
            raise ValueError(
                f"{self.fields} fields need at least {self.fields * 60} pixels; scene has {h * w}"
            )
        get_difficulty(self.difficulty)
        if self.latitude is not None and not 35.0 <= self.latitude <= 65.0:
            raise ValueError(f"latitude {self.latitude} out of range (35..65 °N: winter-wheat belt)")


def _origin_of(config: SimulationConfig, latitude: float) -> tuple[float, float]:
    """Upper-left corner of a scene centred at ``latitude`` on the UTM zone's central meridian."""
    h, w = config.shape
    zone = CRS.from_epsg(config.epsg).utm_zone  # e.g. "31N"; None for other projections
    lon0 = (int(zone[:-1]) - 1) * 6 - 177 if zone else 3.0
    x, y = Transformer.from_crs(4326, config.epsg, always_xy=True).transform(lon0, latitude)
    return (float(np.floor(x - w * RESOLUTION / 2)), float(np.floor(y + h * RESOLUTION / 2)))


def _symptom_leaves(stress: FieldTruth, rng: np.random.Generator, base: dict[str, float]) -> dict:
    """PROSPECT parameters of chlorotic, sporulating (uredia) and necrotic leaf tissue."""
    cab_chl = rng.uniform(8, 15)
    return {
        "n": np.array([base["n"], base["n"], 1.8]),
        "cab": np.array([cab_chl, rng.uniform(3, 6), 2.0]),
        "car": np.array([0.223 * cab_chl + 1.0, rng.uniform(10, 16), 1.0]),
        "cbrown": np.array([0.0, 0.3, rng.uniform(1.5, 3.0)]),
        "cw": base["cw"] * np.array([0.8, 0.6, 0.25]),
        "cm": np.full(3, base["cm"]),
        "ant": np.zeros(3),
    }


def simulate_scene(config: SimulationConfig) -> tuple[xr.Dataset, gpd.GeoDataFrame]:
    """Simulate a labelled cube and its field polygons, deterministically for ``config.seed``."""
    config.validate()
    diff = get_difficulty(config.difficulty)
    start, end = config.period()
    h, w = config.shape
    seeds = np.random.SeedSequence(config.seed).spawn(7)
    rng_layout, rng_params, rng_rust, rng_dates, rng_sky, rng_noise, rng_domain = (
        np.random.default_rng(s) for s in seeds
    )
    latitude = config.latitude
    if latitude is None and config.origin is not None:
        x0, y0 = config.origin
        latitude = Transformer.from_crs(config.epsg, 4326, always_xy=True).transform(
            x0 + w * RESOLUTION / 2, y0 - h * RESOLUTION / 2)[1]
    domain = draw_domain(rng_domain, latitude, len(BANDS))
    x0, y0 = config.origin or _origin_of(config, domain.latitude)
    transform = from_origin(x0, y0, RESOLUTION, RESOLUTION)
    xs = x0 + RESOLUTION * (np.arange(w) + 0.5)
    ys = y0 - RESOLUTION * (np.arange(h) + 0.5)
    lon, lat = Transformer.from_crs(config.epsg, 4326, always_xy=True).transform(
        x0 + w * RESOLUTION / 2, y0 - h * RESOLUTION / 2
    )

    layout = make_layout(rng_layout, h, w, transform, config.fields)
    labels = [i % 3 for i in range(config.fields)]
    rng_layout.shuffle(labels)
    params, stresses = draw_parameters(rng_params, layout, labels, diff, domain)

    npx = h * w
    fid = layout.field_id.ravel()
    rust = RustMap.empty(npx)
    symptom = {}
    sampling = spectral_sampling(config.spectral_step_nm)
    for fs in stresses:
        if fs.label != RUST:
            continue
        field = RustField(
            onset=fs.rust_onset,
            rate=fs.rust_rate,
            max_fraction=fs.rust_max_fraction,
            focus_share=fs.rust_focus_share,
            spread_px_per_day=fs.rust_spread_px_per_day,
            focus_radius_px=fs.rust_focus_radius_px,
        )
        rust.add_field(rng_rust, layout.field_id == fs.field_id, field)
        m = fid == fs.field_id
        base = {"n": float(params.n[m].mean()), "cw": float(params.cw[m].mean()),
                "cm": float(params.cm[m].mean())}
        leaves = _symptom_leaves(fs, rng_rust, base)
        rho, tau = prospect_d(**leaves, index=sampling.index)
        symptom[fs.field_id] = (rho, tau, leaves["cab"])

    acqs = acquisitions(rng_dates, start, end, lat, domain)
    if not acqs:
        raise ValueError(f"no acquisitions between {start.date()} and {end.date()}")
    from prosail import spectral_lib

    dry = np.asarray(spectral_lib.soil.rsoil1)[sampling.index]
    wet = np.asarray(spectral_lib.soil.rsoil2)[sampling.index]
    wl = sampling.wavelengths
    # soil = brightness (wet + moisture (dry − wet)); water and built-up surfaces their own
    soil_basis = np.stack([wet, dry - wet, water_spectrum(wl), built_up_spectrum(wl)])
    surface_weight = np.stack([params.surface == SURFACE_SOIL, params.surface == SURFACE_WATER,
                               params.surface == SURFACE_BUILT], axis=1) * params.surface_brightness[:, None]
    baseline = (np.array(domain.baseline_gain), np.array(domain.baseline_offset))
    blue_ramp = np.clip((700.0 - wl) / 300.0, 0.0, 1.0)  # soil redness darkens blue most
    # soil dryness (prosail's psoil: 1 dry): a random walk that dries through the summer
    summer = np.array([np.clip((a.time.day_of_year - 120) / 80, 0, 1) for a in acqs])
    moisture = np.clip(0.4 + 0.4 * summer + np.cumsum(rng_sky.normal(0, 0.1, len(acqs))), 0.05, 0.95)
    centres = {p: np.array(list(band_centroids(p).values())) for p in ("S2A", "S2B")}

    nt = len(acqs)
    lidf = campbell_lidf(params.ala)  # leaf angles are static per pixel, except when lodged
    lidf_lodged = campbell_lidf(np.array([LODGED_ALA]))[0]
    refl = np.empty((nt, len(BANDS), h, w), dtype=np.float32)
    scl = np.empty((nt, h, w), dtype=np.uint8)
    true_lai = np.empty((nt, h, w), dtype=np.float32)
    true_cab = np.empty((nt, h, w), dtype=np.float32)
    severity = np.empty((nt, h, w), dtype=np.float32)
    for ti, acq in enumerate(acqs):
        doy = acq.time.day_of_year + acq.time.hour / 24.0
        st = state_at(params, doy)
        chl, spo, nec = rust.lesion_fractions(doy)
        sev = chl + spo + nec
        lai = st["lai"] * (1 - 0.35 * sev)
        cab_eff = st["cab"] * (1 - sev)
        psoil = np.clip(moisture[ti] + params.soil_moisture_offset, 0, 1)
        sky = draw_sky(rng_sky, (h, w), acq, diff, domain.cloud_scale)
        # pixels under opaque cloud (and >= 2 px from any see-through pixel) need no physics
        hidden = ndimage.binary_erosion(sky.cloud >= 1.0, iterations=2, border_value=1)
        todo = np.flatnonzero(~(hidden | sky.no_data).ravel())
        surface = np.zeros((npx, len(BANDS)))
        for b0 in range(0, todo.size, PIXEL_BLOCK):
            px = todo[b0 : b0 + PIXEL_BLOCK]
            rho = np.zeros((px.size, sampling.index.size))
            tau = np.zeros_like(rho)
            veg = np.flatnonzero(lai[px] > 0)  # bare soil needs no leaf optics
            leaf = {k: st[k][px[veg]] for k in ("n", "cab", "car", "cbrown", "cw", "cm", "ant")}
            rho[veg], tau[veg] = prospect_fast(**leaf, index=sampling.index)
            infected = sev[px] > 0
            if infected.any():
                k = np.flatnonzero(infected)
                frac = np.stack([chl[px[k]], spo[px[k]], nec[px[k]]], axis=1)  # (k, 3)
                healthy = 1 - frac.sum(axis=1, keepdims=True)
                owner = fid[px[k]]
                for f_id in np.unique(owner):
                    j = owner == f_id
                    s_rho, s_tau, _ = symptom[f_id]
                    rho[k[j]] = healthy[j] * rho[k[j]] + frac[j] @ s_rho
                    tau[k[j]] = healthy[j] * tau[k[j]] + frac[j] @ s_tau
            # brightness (wet + moisture (dry − wet)), water, built-up: one (px, 4) @ (4, W) product
            bright = params.soil_brightness[px] * surface_weight[px, 0]
            coef = np.column_stack([bright, bright * psoil[px], surface_weight[px, 1:]])
            soil = (coef @ soil_basis) * (1 - params.soil_redness[px, None] * blue_ramp)
            leaf_angles = np.where(st["lodged"][px, None], lidf_lodged, lidf[px])
            surface[px] = sail_bands_fast(
                rho, tau, lai[px], leaf_angles, st["hotspot"][px], soil,
                acq.sun_zenith, acq.view_zenith, acq.relative_azimuth,
                sampling.weights[acq.platform],
            )
        infected = np.flatnonzero(sev > 0)
        for f_id in np.unique(fid[infected]):
            j = infected[fid[infected] == f_id]
            frac = np.stack([chl[j], spo[j], nec[j]], axis=1)
            cab_eff[j] += frac @ symptom[f_id][2]
        image = surface.T.reshape(len(BANDS), h, w)
        image = misregister(rng_noise, image, diff.misregistration_px)
        changed = domain.baseline_change_doy is not None and doy >= domain.baseline_change_doy
        refl[ti], scl[ti] = observe(rng_noise, image, sky, centres[acq.platform], diff,
                                    baseline if changed else None)
        true_lai[ti] = (st["green_lai"] * (1 - 0.35 * sev)).reshape(h, w)
        true_cab[ti] = cab_eff.reshape(h, w)
        severity[ti] = sev.reshape(h, w)

    label = np.full((h, w), UNLABELLED, dtype=np.int8)
    for fs in stresses:
        label[layout.field_id == fs.field_id] = fs.label
    attrs = {
        "source": "simulated",
        "simulator_version": __version__,
        "processing_baseline": "04.00",
        "simulation_config": json.dumps(asdict(config)),
        "difficulty": config.difficulty,
        "seed": config.seed,
        "resolution": RESOLUTION,
        "class_names": json.dumps(list(CLASS_NAMES)),
        "domain": domain.to_json(),
    }
    ds = build_cube(
        refl, scl, [a.time for a in acqs], ys, xs, config.epsg,
        platform=[a.platform for a in acqs], label=label, field_id=layout.field_id, attrs=attrs,
    )
    truth_dims = ("time", "y", "x")
    ds["true_lai"] = (truth_dims, true_lai, {"long_name": "green leaf area index (truth)"})
    ds["true_cab"] = (truth_dims, true_cab, {"long_name": "leaf chlorophyll a+b, µg/cm² (truth)"})
    ds["rust_severity"] = (truth_dims, severity, {"long_name": "diseased leaf-area fraction"})
    ds["land_cover"] = (("y", "x"), layout.cover, {
        "long_name": "land cover (codes in cover_names)",
        "cover_names": json.dumps({str(k): v for k, v in COVER_NAMES.items()})})
    ds = ds.assign_coords(
        view_zenith=("time", [a.view_zenith for a in acqs]),
        sun_zenith=("time", [a.sun_zenith for a in acqs]),
        relative_orbit=("time", [a.orbit for a in acqs]),
    )
    fields = _fields_frame(layout.polygons, stresses, config.epsg)
    return ds, fields


def _fields_frame(polygons: list, stresses: list[FieldTruth], epsg: int) -> gpd.GeoDataFrame:
    rows: list[dict[str, Any]] = []
    for poly, fs in zip(polygons, stresses, strict=True):
        row = asdict(fs)
        row["class_name"] = CLASS_NAMES[fs.label]
        row["area_ha"] = poly.area / 1e4
        rows.append(row)
    return gpd.GeoDataFrame(rows, geometry=list(polygons), crs=f"EPSG:{epsg}")


def wheat_mask(ds: xr.Dataset) -> np.ndarray:
    """Pixels inside simulated wheat fields."""
    return np.asarray(ds["land_cover"].values == WHEAT)
