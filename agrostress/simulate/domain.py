"""Scene-level domain draws: where and in what kind of season a scene lies.

Every simulated scene is one region in one season. What is common to all its fields is drawn
here, recorded in the cube's ``domain`` attribute, and used by the phenology, the acquisition
calendar, the clouds and the radiometry:

* **latitude** 40–57 °N, and with it the phenology (Hopkins' bioclimatic law: ~4 days later per
  degree north; calibrated at 48 °N on the real French wheat of 2023, see ``docs/simulator.md``);
* **weather year**: ``normal``, ``drought`` (heat / drought: the whole region ripens 7–21 days
  early with a smaller canopy, fewer clouds — healthy wheat, labelled healthy) or ``cool``
  (a late, wet season: 3–10 days later, more clouds);
* **acquisition calendar**: 1–3 relative orbits over the scene, Sentinel-2B available or not
  (it was lost from December 2021 until Sentinel-2C took over in 2025), and an outage of
  10–25 days in some seasons;
* **cloud regime** multiplying the monthly climatology (0.6–1.5, lower in drought years);
* **processing-baseline offsets**: from a date on (a baseline change mid-season) every band's
  reflectance carries a small gain (±1 %) and offset (±0.003), as between real baselines.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np

LATITUDE_RANGE = (40.0, 57.0)
REFERENCE_LATITUDE = 48.0  # where the phenology below is calibrated (real France 2023)
DAYS_PER_DEGREE = 4.0  # Hopkins' bioclimatic law (phenology later northwards)
WEATHER = {"normal": 0.6, "drought": 0.25, "cool": 0.15}  # probabilities of the weather years


@dataclass(frozen=True)
class SceneDomain:
    """The scene's region and season (everything recorded in the cube's ``domain`` attribute)."""

    latitude: float
    weather: str  # normal | drought | cool
    season_shift_days: float  # phenology shift of the whole region (latitude + weather)
    weather_shift_days: float  # the weather's part of it
    canopy_factor: float  # peak LAI multiplier of the season (drought < 1)
    orbits: int  # relative orbits seeing the scene (1–3)
    s2b_available: bool
    outage: tuple[float, float] | None  # DOY interval without acquisitions
    cloud_scale: float  # multiplies the monthly cloud climatology
    baseline_change_doy: float | None  # from this DOY on, the offsets below apply
    baseline_gain: tuple[float, ...]  # per band
    baseline_offset: tuple[float, ...]  # per band, reflectance

    def to_json(self) -> str:
        return json.dumps(asdict(self))


def latitude_shift(latitude: float) -> float:
    """Phenology delay (days) of a latitude relative to the calibration latitude."""
    return DAYS_PER_DEGREE * (latitude - REFERENCE_LATITUDE)


def draw_domain(rng: np.random.Generator, latitude: float | None, n_bands: int) -> SceneDomain:
    """Draw a scene's domain; ``latitude`` pins it (None: uniform in ``LATITUDE_RANGE``)."""
    lat = float(rng.uniform(*LATITUDE_RANGE)) if latitude is None else float(latitude)
    if not -90 <= lat <= 90:
        raise ValueError(f"latitude {lat} out of range")
    weather = str(rng.choice(list(WEATHER), p=list(WEATHER.values())))
    if weather == "drought":
        shift, canopy, clouds = -rng.uniform(7, 21), rng.uniform(0.75, 0.95), rng.uniform(0.6, 0.9)
    elif weather == "cool":
        shift, canopy, clouds = rng.uniform(3, 10), rng.uniform(0.95, 1.05), rng.uniform(1.1, 1.5)
    else:
        shift, canopy, clouds = rng.normal(0, 3), rng.uniform(0.9, 1.05), rng.uniform(0.8, 1.2)
    orbits = int(rng.choice([1, 2, 3], p=[0.3, 0.5, 0.2]))
    s2b = bool(rng.random() > 0.15)
    outage = None
    if rng.random() < 0.2:
        o0 = float(rng.uniform(80, 180))
        outage = (o0, o0 + float(rng.uniform(10, 25)))
    change = float(rng.uniform(60, 200)) if rng.random() < 0.3 else None
    gain = tuple(float(g) for g in 1 + rng.normal(0, 0.01, n_bands)) if change else (1.0,) * n_bands
    offset = tuple(float(o) for o in rng.normal(0, 0.003, n_bands)) if change else (0.0,) * n_bands
    return SceneDomain(
        latitude=lat, weather=weather, season_shift_days=float(latitude_shift(lat) + shift),
        weather_shift_days=float(shift), canopy_factor=float(canopy), orbits=orbits,
        s2b_available=s2b, outage=outage, cloud_scale=float(clouds), baseline_change_doy=change,
        baseline_gain=gain, baseline_offset=offset,
    )
