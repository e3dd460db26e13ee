"""What makes simulated reflectance L2A-like: acquisition dates of two satellites, view/sun
geometry, clouds and shadows with SCL codes, missed haze, atmospheric-correction residuals,
co-registration error and the L2A quantisation (DN = 10000 ρ + 1000)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage

from agrostress.cube import BANDS, reflectance_to_dn
from agrostress.simulate.difficulty import Difficulty
from agrostress.simulate.domain import SceneDomain
from agrostress.simulate.layout import smooth_noise

TWENTY_M_BANDS = ("B05", "B06", "B07", "B8A", "B11", "B12")
# fraction of unusable dates by month (cloud climatology, central Europe)
CLOUD_CLIMATOLOGY = {1: 0.7, 2: 0.65, 3: 0.6, 4: 0.55, 5: 0.5, 6: 0.4, 7: 0.35, 8: 0.35,
                     9: 0.4, 10: 0.5, 11: 0.65, 12: 0.7}
CLOUD_SPECTRUM = np.array([1.0, 1.0, 0.98, 0.98, 0.97, 0.96, 0.96, 0.95, 0.75, 0.6])


@dataclass(frozen=True)
class Acquisition:
    """One overpass: date, platform, relative orbit and geometry (degrees)."""

    time: pd.Timestamp
    platform: str
    orbit: int
    sun_zenith: float
    view_zenith: float
    relative_azimuth: float
    sun_azimuth: float


def solar_geometry(lat_deg: float, doy: float, local_solar_hour: float = 10.5) -> tuple[float, float]:
    """Sun zenith and azimuth (degrees) at ``local_solar_hour`` on day ``doy``."""
    lat = np.deg2rad(lat_deg)
    decl = np.deg2rad(23.44) * np.sin(2 * np.pi * (284 + doy) / 365.0)
    hour = np.deg2rad((local_solar_hour - 12.0) * 15.0)
    cos_z = np.sin(lat) * np.sin(decl) + np.cos(lat) * np.cos(decl) * np.cos(hour)
    zen = np.arccos(np.clip(cos_z, -1, 1))
    cos_az = (np.sin(decl) - np.sin(lat) * cos_z) / (np.cos(lat) * np.sin(zen))
    az = np.rad2deg(np.arccos(np.clip(cos_az, -1, 1)))
    return float(np.rad2deg(zen)), float(360 - az if hour > 0 else az)


# the relative orbits that can see a scene: (day offset of S2A in the 10-day cycle, view
# zenith range, view azimuth); S2B flies the same tracks 5 days later
ORBITS = ((0, (2.5, 4.5), 105.0), (3, (7.0, 9.0), 285.0), (7, (9.0, 11.0), 105.0))


def acquisitions(
    rng: np.random.Generator, start: pd.Timestamp, end: pd.Timestamp, lat_deg: float,
    domain: SceneDomain | None = None,
) -> list[Acquisition]:
    """S2A/S2B overpasses of the scene's relative orbits, with missing dates and outages.

    ``domain`` sets how many orbits see the scene (1–3), whether Sentinel-2B flies and an
    outage interval; without it, two orbits and both satellites.
    """
    n_orbits = domain.orbits if domain else 2
    platforms = (("S2A", 0), ("S2B", 5)) if (domain is None or domain.s2b_available) else (("S2A", 0),)
    outage = domain.outage if domain else None
    base = start - pd.Timedelta(days=int(rng.integers(0, 10)))
    out = []
    view = {k: rng.uniform(*ORBITS[k][1]) for k in range(n_orbits)}
    for cycle in range(0, (end - base).days // 10 + 2):
        for k in range(n_orbits):
            for platform, lag in platforms:
                offset = ORBITS[k][0] + lag
                t = base + pd.Timedelta(days=10 * cycle + offset, minutes=int(rng.integers(0, 6)))
                t = t.normalize() + pd.Timedelta(hours=10, minutes=30 + int(rng.integers(0, 10)))
                if not (start <= t <= end + pd.Timedelta(hours=23)) or rng.random() < 0.04:
                    continue  # outside the period, or a missing acquisition
                if outage and outage[0] <= t.day_of_year <= outage[1]:
                    continue
                sza, saa = solar_geometry(lat_deg, t.day_of_year)
                psi = abs(saa - ORBITS[k][2]) % 360
                psi = 360 - psi if psi > 180 else psi
                out.append(Acquisition(t, platform, k + 1, sza, float(view[k]), psi, saa))
    return sorted(out, key=lambda a: a.time)


@dataclass
class Sky:
    """Per-date atmosphere: cloud and shadow opacity, cirrus and haze layers, residual errors."""

    cloud: np.ndarray  # (H, W) opacity 0..1
    shadow: np.ndarray  # (H, W) 0..1
    cirrus: np.ndarray  # (H, W) additive reflectance
    haze: np.ndarray  # (H, W) additive reflectance, NOT flagged by SCL
    no_data: np.ndarray  # (H, W) bool, outside the swath
    aerosol: float  # additive error at 490 nm (scaled by λ^-1.3)
    gain: float  # multiplicative calibration/correction error
    cloud_brightness: float


def draw_sky(
    rng: np.random.Generator, shape: tuple[int, int], acq: Acquisition, d: Difficulty,
    regime: float = 1.0,
) -> Sky:
    """Clouds from a month climatology (× the scene's cloud ``regime``) as coherent objects;
    shadows cast along the sun azimuth."""
    h, w = shape
    p_bad = min(0.95, CLOUD_CLIMATOLOGY[acq.time.month] * d.cloud_scale * regime)
    u = rng.random()
    if u < p_bad * 0.55:
        coverage = rng.uniform(0.85, 1.0)  # overcast
    elif u < p_bad * 1.3:
        coverage = rng.uniform(0.05, 0.6)  # broken clouds
    else:
        coverage = 0.0
    # clouds and their shadows live on a larger domain: a shadow may come from outside
    height_m = rng.uniform(800, 2500)
    shift_px = height_m * np.tan(np.deg2rad(acq.sun_zenith)) / 10.0
    az = np.deg2rad(acq.sun_azimuth)
    dx, dy = -shift_px * np.sin(az), shift_px * np.cos(az)  # shadow opposite the sun (rows grow south)
    margin = int(np.ceil(shift_px)) + 4
    big = (h + 2 * margin, w + 2 * margin)
    if coverage > 0:
        z = smooth_noise(rng, big, sigma=rng.uniform(6, 20))
        thr = np.quantile(z, 1 - coverage)
        opacity = np.clip((z - thr) / 0.6, 0, 1)
    else:
        opacity = np.zeros(big)
    cloud = opacity[margin : margin + h, margin : margin + w]
    shadow = shifted_window(opacity, margin - dy, margin - dx, shape) * (1 - cloud)
    cirrus = np.zeros(shape)
    if rng.random() < 0.15 * d.cloud_scale:
        c = smooth_noise(rng, shape, sigma=15)
        cirrus = np.clip(c - rng.uniform(-0.5, 0.8), 0, None) * rng.uniform(0.01, 0.03)
    haze = np.zeros(shape)
    if rng.random() < d.haze_rate:
        hz = smooth_noise(rng, shape, sigma=20)
        haze = np.clip(hz + 1.0, 0, None) * rng.uniform(0.005, 0.02)
    no_data = np.zeros(shape, dtype=bool)
    if rng.random() < 0.03:  # swath edge crosses the scene
        yy, xx = np.mgrid[0:h, 0:w]
        no_data = (xx + yy * rng.uniform(-0.3, 0.3)) < rng.uniform(0.1, 0.6) * w
    return Sky(
        cloud=cloud,
        shadow=shadow,
        cirrus=cirrus,
        haze=haze,
        no_data=no_data,
        aerosol=float(rng.normal(0, 0.01 * d.noise_scale)),
        gain=float(1 + rng.normal(0, 0.015 * d.noise_scale)),
        cloud_brightness=float(rng.uniform(0.35, 0.75)),
    )


def shifted_window(image: np.ndarray, top: float, left: float, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear sample of ``image[..., top + i, left + j]`` for the (h, w) window ``shape``.

    Equal to ``ndimage.shift(image, (-top, -left), order=1)`` cropped to the window; outside the
    image the edge value is used (``mode="nearest"``).
    """
    h, w = shape
    iy, ix = int(np.floor(top)), int(np.floor(left))
    fy, fx = top - iy, left - ix
    rows = np.clip(np.arange(iy, iy + h + 1), 0, image.shape[-2] - 1)
    cols = np.clip(np.arange(ix, ix + w + 1), 0, image.shape[-1] - 1)
    a = image[..., rows[:, None], cols[None, :]]
    top_row = (1 - fx) * a[..., :-1, :-1] + fx * a[..., :-1, 1:]
    bottom_row = (1 - fx) * a[..., 1:, :-1] + fx * a[..., 1:, 1:]
    return (1 - fy) * top_row + fy * bottom_row


def misregister(
    rng: np.random.Generator, image: np.ndarray, sd_px: float
) -> np.ndarray:
    """Shift a (band, H, W) image by a random sub-pixel offset; 20 m bands see 2×2 footprints."""
    dy, dx = rng.normal(0, sd_px, 2)
    twenty = [j for j, band in enumerate(BANDS) if band in TWENTY_M_BANDS]
    image = image.copy()
    image[twenty] = ndimage.uniform_filter(image[twenty], size=(1, 2, 2), mode="nearest")
    return shifted_window(image, -dy, -dx, image.shape[-2:])


def observe(
    rng: np.random.Generator,
    surface: np.ndarray,
    sky: Sky,
    centres_nm: np.ndarray,
    d: Difficulty,
    baseline: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Surface reflectance (band, H, W) → L2A-like reflectance and SCL for one date.

    ``baseline``: per-band (gain, offset) of the processing baseline this date was made with.
    """
    lam = (centres_nm / 490.0)[:, None, None]
    refl = surface * sky.gain + sky.aerosol * lam**-1.3
    if baseline is not None:
        refl = refl * baseline[0][:, None, None] + baseline[1][:, None, None]
    refl = refl * (1 - 0.65 * sky.shadow[None])
    refl = refl + (sky.cirrus + sky.haze)[None] * lam**-1.0
    cloud_refl = sky.cloud_brightness * CLOUD_SPECTRUM[:, None, None]
    refl = (1 - sky.cloud[None]) * refl + sky.cloud[None] * cloud_refl
    sd = d.noise_scale * (0.002 + 0.01 * np.abs(refl))
    refl = refl + rng.standard_normal(refl.shape) * sd
    # L2A storage (PB >= 04.00): DN = round(10000 ρ + 1000); no clipping at 0
    refl = (reflectance_to_dn(refl).astype(np.float32) - 1000.0) / 10000.0

    red, nir = refl[BANDS.index("B04")], refl[BANDS.index("B08")]
    ndvi = (nir - red) / np.maximum(nir + red, 1e-6)
    scl = np.where(ndvi > 0.3, 4, 5).astype(np.uint8)
    scl[nir < 0.04] = 2
    scl[(ndvi < 0.0) & (nir < 0.08)] = 6  # water
    scl[rng.random(scl.shape) < 0.003] = 7
    scl[sky.cirrus > 0.008] = 10
    scl[sky.shadow > 0.3] = 3
    scl[sky.cloud > 0.25] = 8
    scl[sky.cloud > 0.6] = 9
    scl[sky.no_data] = 0
    refl[:, sky.no_data] = np.nan
    return refl.astype(np.float32), scl
