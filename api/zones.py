"""The class map as GeoJSON zones (EPSG:4326), read back from the written ``stress_map.tif``.

Pixels of one class are polygonised with :func:`rasterio.features.shapes` and dissolved into
one (Multi)Polygon per class, so the viewer can draw the map exactly over the field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import shapely
from pyproj import CRS, Transformer
from rasterio.features import shapes

from agrostress.cube import NODATA
from agrostress.outputs.cog import map_codes


def _reproject(geom: Any, transformer: Transformer) -> Any:
    return shapely.transform(
        geom, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1]))
    )


def map_bounds_wgs84(tif: Path) -> list[float]:
    """(west, south, east, north) of the raster in degrees."""
    with rasterio.open(tif) as src:
        t = Transformer.from_crs(CRS.from_user_input(src.crs), CRS.from_epsg(4326), always_xy=True)
        return [round(float(v), 7) for v in t.transform_bounds(*src.bounds, densify_pts=21)]


def class_zones(tif: Path, class_names: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """A FeatureCollection with one feature per class present: class id, name, ha, share."""
    with rasterio.open(tif) as src:
        arr = src.read(1)
        transform, crs = src.transform, CRS.from_user_input(src.crs)
        nodata = src.nodata if src.nodata is not None else NODATA
    valid = arr != nodata
    pixel_ha = abs(transform.a * transform.e) / 1e4 if crs.is_projected else float("nan")
    to_wgs84 = Transformer.from_crs(crs, CRS.from_epsg(4326), always_xy=True)
    by_class: dict[int, list[Any]] = {}
    for geom, value in shapes(arr, mask=valid, transform=transform, connectivity=4):
        by_class.setdefault(int(value), []).append(shapely.geometry.shape(geom))
    n_valid = int(valid.sum())
    features = []
    for value in sorted(by_class):
        merged = shapely.coverage_union_all(by_class[value])
        pixels = int((arr == value).sum())
        name = map_codes(list(class_names)).get(value, f"class_{value}")
        geom = shapely.set_precision(_reproject(merged, to_wgs84), 1e-7)
        features.append(
            {
                "type": "Feature",
                "properties": {
                    "class_id": value,
                    "class_name": name,
                    "pixels": pixels,
                    "area_ha": round(pixels * pixel_ha, 4) if np.isfinite(pixel_ha) else None,
                    "share": round(pixels / n_valid, 6) if n_valid else None,
                },
                "geometry": json.loads(shapely.to_geojson(geom)),
            }
        )
    return {"type": "FeatureCollection", "features": features}
