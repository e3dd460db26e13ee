"""Small synthetic cubes with known, piecewise-linear band series."""

from __future__ import annotations

import numpy as np
import pandas as pd

from agrostress.cube import BANDS, build_cube

# Irregular, real-like acquisition days: 2–3 day pairs (two satellites) and 10+ day holes.
DOYS = np.array(
    [
        52,
        55,
        57,
        60,
        62,
        65,
        75,
        78,
        80,
        92,
        95,
        100,
        110,
        112,
        115,
        125,
        128,
        140,
        143,
        150,
        160,
        163,
        175,
        178,
        180,
        190,
        192,
        195,
        203,
        206,
    ]
)


def linear_series(doys: np.ndarray, y: int, x: int, band: int) -> np.ndarray:
    """A piecewise-linear series (knots at DOY 100 and 150) that differs per pixel and band."""
    base = 0.05 + 0.01 * band + 0.002 * y + 0.001 * x
    return (
        base
        + 0.002 * (doys - 50)
        + np.where(doys > 100, 0.001 * (doys - 100), 0.0)
        - np.where(doys > 150, 0.004 * (doys - 150), 0.0)
    ).astype(np.float32)


def make_cube(ny: int = 6, nx: int = 5, doys: np.ndarray = DOYS, year: int = 2024, seed: int = 0):
    """A valid cube with linear band series, SCL 4 everywhere and a few planted clouds."""
    t = (
        pd.Timestamp(f"{year}-01-01")
        + pd.to_timedelta(doys - 1, unit="D")
        + pd.Timedelta("10:30:00")
    )
    T = len(doys)
    refl = np.empty((T, len(BANDS), ny, nx), dtype=np.float32)
    for yy in range(ny):
        for xx in range(nx):
            for b in range(len(BANDS)):
                refl[:, b, yy, xx] = linear_series(doys.astype(float), yy, xx, b)
    # make the red-edge/NIR ordering vegetation-like so indices are finite
    refl[:, BANDS.index("B08")] += 0.25
    refl[:, BANDS.index("B8A")] += 0.25
    refl[:, BANDS.index("B07")] += 0.2
    refl[:, BANDS.index("B06")] += 0.12
    scl = np.full((T, ny, nx), 4, dtype=np.uint8)
    label = np.zeros((ny, nx), dtype=np.int8)
    fid = np.ones((ny, nx), dtype=np.int32)
    return build_cube(
        refl,
        scl,
        t,
        5_000_000 - 10 * np.arange(ny),
        500_000 + 10 * np.arange(nx),
        32631,
        label=label,
        field_id=fid,
    )
