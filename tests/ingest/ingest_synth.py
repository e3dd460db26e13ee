"""Small synthetic cubes for ingestion tests (exactly representable as L2A DN).

Reflectance values are k/10000 in float32, so every DN path (with or without the PB 04.00
offset) gives back the identical float32 numbers. SCL is constant over 20 m blocks aligned with
the cube origin (a multiple of 20 m), so nearest resampling of a 20 m SCL is exact.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from pyproj import Transformer

from agrostress.cube import BANDS, build_cube, dn_to_reflectance

# typical wheat canopy reflectance per band (B02..B12)
VEG = np.array([0.030, 0.060, 0.040, 0.100, 0.250, 0.300, 0.350, 0.360, 0.200, 0.100])

EPSG = 32631
ORIGIN = (600000.0, 5000040.0)  # upper-left, multiple of 20 m (like S2 tile origins)


def make_cube(
    width: int = 48,
    height: int = 40,
    dates: list[str] | None = None,
    *,
    epsg: int = EPSG,
    origin: tuple[float, float] = ORIGIN,
    seed: int = 0,
    nodata_date: int | None = 2,
) -> xr.Dataset:
    """A cube with smooth vegetation, 20 m-blocky clouds, and (optionally) a half-empty date."""
    dates = dates or [
        "2024-03-05T10:50:31",
        "2024-03-15T10:50:29",
        "2024-03-25T10:50:33",
        "2024-04-04T10:50:31",
        "2024-04-14T10:50:30",
    ]
    rng = np.random.default_rng(seed)
    t = len(dates)
    yy, xx = np.mgrid[0:height, 0:width]
    base = 1.0 + 0.15 * np.sin(xx / 7.0) * np.cos(yy / 5.0)
    refl = np.empty((t, len(BANDS), height, width), dtype=np.float64)
    for i in range(t):
        season = 0.8 + 0.1 * i
        for b in range(len(BANDS)):
            noise = rng.normal(0.0, 0.004, size=(height, width))
            refl[i, b] = VEG[b] * base * (season if b >= 4 else 1.0) + noise
    dn = np.clip(np.round(refl * 10000), 1, 20000).astype(np.uint16)
    scl = np.full((t, height, width), 4, dtype=np.uint8)
    blocks = rng.random((t, (height + 1) // 2, (width + 1) // 2))
    blocky = np.repeat(np.repeat(blocks, 2, axis=1), 2, axis=2)[:, :height, :width]
    scl[blocky > 0.93] = 9
    scl[(blocky > 0.88) & (blocky <= 0.93)] = 8
    scl[(blocky > 0.85) & (blocky <= 0.88)] = 3
    scl[(blocky < 0.05)] = 5
    if nodata_date is not None and nodata_date < t:  # swath edge: left part without data
        cut = (width // 4) * 2
        dn[nodata_date, :, :, :cut] = 0
        scl[nodata_date, :, :cut] = 0
    reflectance = dn_to_reflectance(dn, offset=0.0)
    x = origin[0] + 10.0 * (np.arange(width) + 0.5)
    y = origin[1] - 10.0 * (np.arange(height) + 0.5)
    platforms = ["S2A" if i % 2 == 0 else "S2B" for i in range(t)]
    return build_cube(
        reflectance, scl, pd.DatetimeIndex(dates), y, x, f"EPSG:{epsg}", platform=platforms
    )


def aoi_geojson(
    cube: xr.Dataset, *, margin_px: tuple[int, int, int, int] = (5, 4, 6, 5), epsg: int = EPSG
) -> dict[str, Any]:
    """A pentagon inside the cube (margins left, bottom, right, top in px), as 4326 GeoJSON."""
    x0 = float(cube.x.values[0]) - 5 + 10 * margin_px[0] + 3.7
    x1 = float(cube.x.values[-1]) + 5 - 10 * margin_px[2] - 3.3
    y1 = float(cube.y.values[0]) + 5 - 10 * margin_px[3] - 2.9
    y0 = float(cube.y.values[-1]) - 5 + 10 * margin_px[1] + 4.1
    xm = (x0 + x1) / 2
    ring = [(x0, y0), (x1, y0), (x1, y1 - 60), (xm, y1), (x0, y1 - 60), (x0, y0)]
    t = Transformer.from_crs(epsg, 4326, always_xy=True)
    coords = [list(t.transform(x, y)) for x, y in ring]
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"name": "field"},
                "geometry": {"type": "Polygon", "coordinates": [coords]},
            }
        ],
    }


def write_geojson(path: Any, obj: dict[str, Any]) -> Any:
    path.write_text(json.dumps(obj))
    return path


def expected_on_aoi(cube: xr.Dataset, aoi: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(times, reflectance, scl) the ingestion of ``cube`` over ``aoi`` must produce."""
    sub = cube.sel(x=aoi.x, y=aoi.y)
    refl = np.array(sub["reflectance"].values)
    scl = np.array(sub["scl"].values)
    inside = aoi.mask()
    refl[:, :, ~inside] = np.nan
    scl[:, ~inside] = 0
    refl[np.broadcast_to((scl == 0)[:, None], refl.shape)] = np.nan
    keep = (scl != 0).reshape(len(scl), -1).any(axis=1)
    return sub["time"].values[keep], refl[keep], scl[keep]
