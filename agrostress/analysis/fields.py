"""Field polygons onto the cube's grid: reading, reprojecting, rasterising, pixel area."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from affine import Affine

from agrostress.cube import pixel_size


def read_fields(src: Any, *, crs: Any = None) -> Any:
    """Field polygons — a vector file (any OGR format) or a GeoDataFrame — checked under the
    one set of rules every interface uses:

    * null and empty geometries are dropped; what is left must be polygons (at least one);
    * a CRS is required (``crs`` supplies one for a file saved without it);
    * ``field_id`` is assigned 1..n when absent and must not be empty; rows sharing a
      ``field_id`` are one field (dissolved, the first row's attributes kept);
    * invalid geometries are repaired (``make_valid``).
    """
    import geopandas as gpd

    from agrostress.ingest.aoi import read_vector

    if isinstance(src, gpd.GeoDataFrame):
        gdf = src.copy()
    elif isinstance(src, str | Path):
        if not Path(src).exists():
            raise FileNotFoundError(f"field file not found: {src}")
        gdf = read_vector(Path(src), "field", ValueError)
    else:
        raise ValueError(f"fields must be a GeoDataFrame or a file, got {type(src).__name__}")
    if crs is not None:
        gdf = gdf.set_crs(crs, allow_override=True)
    gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty]
    if gdf.empty:
        raise ValueError("the field file holds no polygons")
    kinds = set(gdf.geom_type)
    if not kinds <= {"Polygon", "MultiPolygon"}:
        raise ValueError(f"fields must be polygons, got {sorted(kinds)}")
    if gdf.crs is None:
        raise ValueError("the field polygons have no CRS; save them with one (e.g. GeoJSON)")
    if "field_id" not in gdf.columns:
        gdf.insert(0, "field_id", np.arange(1, len(gdf) + 1))
    if gdf["field_id"].isna().any():
        raise ValueError("some fields have an empty field_id")
    invalid = ~gdf.geometry.is_valid
    if invalid.any():
        gdf.loc[invalid, "geometry"] = gdf.geometry[invalid].make_valid()
    if gdf["field_id"].duplicated().any():
        gdf = gdf.dissolve(by="field_id", as_index=False, aggfunc="first")
    return gdf.reset_index(drop=True)


def prepare_fields(fields: Any, crs: Any) -> Any:
    """:func:`read_fields` reprojected to ``crs`` (the cube's)."""
    return read_fields(fields).to_crs(crs)


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
