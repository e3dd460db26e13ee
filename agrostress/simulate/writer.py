"""Write a simulated scene: the cube (Zarr) with ``fields.geojson`` inside the store."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import xarray as xr

from agrostress.cube import write_zarr

FIELDS_FILE = "fields.geojson"


def write_scene(ds: xr.Dataset, fields: gpd.GeoDataFrame, out: str | Path) -> Path:
    """Write the cube to ``out`` (atomically) with ``out/fields.geojson`` (the cube's CRS)."""
    return write_zarr(ds, out, extra_files={FIELDS_FILE: fields.to_json(drop_id=True).encode()})


def read_fields(cube_path: str | Path) -> gpd.GeoDataFrame:
    """The field polygons written beside a simulated cube."""
    path = Path(cube_path) / FIELDS_FILE
    if not path.exists():
        raise FileNotFoundError(f"no {FIELDS_FILE} in {cube_path}")
    return gpd.read_file(path)
