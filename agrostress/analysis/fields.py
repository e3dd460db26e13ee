"""Field polygons onto the cube's grid: reading, reprojecting, rasterising, pixel area."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import xarray as xr
from affine import Affine

from agrostress.cube import pixel_size


def prepare_fields(fields: Any, crs: Any) -> Any:
    """Validate a field GeoDataFrame, reproject it to ``crs`` and give every row a field_id.

    Rows sharing a ``field_id`` are merged; null/empty geometries are dropped.
    """
    import geopandas as gpd

    if not isinstance(fields, gpd.GeoDataFrame):
        raise ValueError(f"fields must be a GeoDataFrame, got {type(fields).__name__}")
    gdf = fields[fields.geometry.notna() & ~fields.geometry.is_empty].copy()
    if gdf.empty:
        raise ValueError("the field file holds no polygons")
    kinds = set(gdf.geom_type)
    if not kinds <= {"Polygon", "MultiPolygon"}:
        raise ValueError(f"fields must be polygons, got {sorted(kinds)}")
    if gdf.crs is None:
        raise ValueError("the field polygons have no CRS; save them with one (e.g. GeoJSON)")
    gdf = gdf.to_crs(crs)
    if "field_id" not in gdf.columns:
        gdf["field_id"] = np.arange(1, len(gdf) + 1)
    if gdf["field_id"].isna().any():
        raise ValueError("some fields have an empty field_id")
    if gdf["field_id"].duplicated().any():
        keep = [c for c in ("class_name", "label") if c in gdf.columns]
        gdf = gdf.dissolve(by="field_id", as_index=False, aggfunc="first")[
            ["field_id", *keep, "geometry"]
        ]
    return gdf.reset_index(drop=True)


def grid_transform(cube: xr.Dataset) -> Affine:
    """The affine transform of the cube's pixel grid (from its x/y pixel-centre coordinates)."""
    dx, dy = pixel_size(cube)
    x0, y0 = float(cube["x"].values[0]), float(cube["y"].values[0])
    return Affine(dx, 0.0, x0 - dx / 2, 0.0, dy, y0 - dy / 2)


def rasterise_fields(gdf: Any, shape: tuple[int, int], transform: Affine) -> np.ndarray:
    """int32 raster of 1-based row positions of ``gdf`` (0 outside; later rows win overlaps)."""
    from rasterio.features import rasterize

    shapes = [(geom, i + 1) for i, geom in enumerate(gdf.geometry)]
    return rasterize(shapes, out_shape=shape, transform=transform, fill=0, dtype="int32")


def pixel_area_m2(cube: xr.Dataset, crs: Any) -> tuple[float, bool]:
    """(area of one pixel in m², approximate?) — geographic CRSs use the scene's mid latitude."""
    dx, dy = pixel_size(cube)
    if crs.is_geographic:
        lat = math.radians(float(np.mean(cube["y"].values)))
        return abs(dx * 111_320.0 * math.cos(lat) * dy * 110_574.0), True
    factor = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
    return abs(dx * dy) * factor * factor, False
