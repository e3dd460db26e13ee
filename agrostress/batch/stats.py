"""Per-field (or per management zone) statistics of a batch, read back from the mosaics.

Fields crossing tile (or UTM zone) borders are counted once, pixel by pixel: a pixel belongs
to a field when its centre lies inside the polygon, like everywhere else in AgroStress. The
table is written as GeoParquet and GeoPackage (layer ``fields``), atomically.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agrostress.atomic import atomic_path
from agrostress.batch.manifest import BatchError
from agrostress.cube import OUTCOME_CODES
from agrostress.decision import DecisionPolicy


@dataclass(frozen=True)
class ZoneRasters:
    """The mosaics of one UTM zone and the region part they cover."""

    epsg: int
    geometry: Any  # shapely (Multi)Polygon in the zone CRS
    transform: Any
    width: int
    height: int
    classes: Path
    probabilities: Path


def load_fields(src: Any, *, crs: Any = None) -> Any:
    """Field polygons under the core path's rules (:func:`agrostress.analysis.read_fields`),
    their errors as :class:`BatchError`."""
    from agrostress.analysis import read_fields

    try:
        return read_fields(src, crs=crs)
    except (ValueError, FileNotFoundError) as e:
        raise BatchError(str(e)) from None


def field_statistics(
    fields: Any,
    zones: Sequence[ZoneRasters],
    class_names: Sequence[str],
    *,
    resolution: float = 10.0,
    min_valid_share: float | None = None,
    decision: DecisionPolicy | None = None,
    in_season: bool = False,
) -> Any:
    """One row per field: the core path's field summary (call, confidence, class fractions,
    mean probabilities, valid share, area) computed on the mosaic pixels, flattened into
    columns, with the field's attributes and geometry (``decision``, ``in_season``: the
    run's decision rule and whether its as-of date is in season)."""
    import rasterio
    from rasterio.features import geometry_mask
    from rasterio.windows import Window
    from rasterio.windows import transform as window_transform

    names = [str(n) for n in class_names]
    n_cls = len(names)
    n = len(fields)
    cls_parts: list[list[np.ndarray]] = [[] for _ in range(n)]
    prob_parts: list[list[np.ndarray]] = [[] for _ in range(n)]
    for zone in zones:
        local = fields.to_crs(epsg=zone.epsg).geometry.values
        tr = zone.transform
        r = resolution
        with rasterio.open(zone.classes) as cls_src, rasterio.open(zone.probabilities) as p_src:
            for i, geom in enumerate(local):
                part = geom.intersection(zone.geometry) if geom is not None else None
                if part is None or part.is_empty or part.area <= 0:
                    continue
                xmin, ymin, xmax, ymax = part.bounds
                c0 = max(0, math.floor((xmin - tr.c) / r))
                c1 = min(zone.width, math.ceil((xmax - tr.c) / r))
                r0 = max(0, math.floor((tr.f - ymax) / r))
                r1 = min(zone.height, math.ceil((tr.f - ymin) / r))
                if c1 <= c0 or r1 <= r0:
                    continue
                win = Window(c0, r0, c1 - c0, r1 - r0)
                inside = geometry_mask(
                    [part],
                    out_shape=(r1 - r0, c1 - c0),
                    transform=window_transform(win, tr),
                    invert=True,
                )
                if not inside.any():
                    continue
                cls_parts[i].append(cls_src.read(1, window=win)[inside])
                prob_parts[i].append(p_src.read(list(range(1, n_cls + 1)), window=win)[:, inside])
    rows = []
    for i in range(n):
        cls = np.concatenate(cls_parts[i]) if cls_parts[i] else np.zeros(0, np.uint8)
        prob = (
            np.concatenate(prob_parts[i], axis=1)
            if prob_parts[i]
            else np.zeros((n_cls, 0), np.float32)
        )
        rows.append(summarise_pixels(cls, prob, names, resolution * resolution, min_valid_share,
                                     decision, in_season))
    out = fields.copy()
    scalars = [k for k in rows[0] if k != "field_id" and not isinstance(rows[0][k], dict)]
    for key in scalars:
        out[key] = [row.get(key) for row in rows]
    for outcome in OUTCOME_CODES.values():
        out[f"frac_{outcome}"] = [_num((row.get("class_fractions") or {}).get(outcome))
                                  for row in rows]
    for name in names:
        out[f"frac_{name}"] = [_num((row.get("class_fractions") or {}).get(name)) for row in rows]
        out[f"p_{name}"] = [_num((row.get("mean_probabilities") or {}).get(name)) for row in rows]
        out[f"ha_{name}"] = [
            _num((row.get("class_fractions") or {}).get(name), 0.0)
            * row.get("valid_pixels", 0)
            * resolution
            * resolution
            / 1e4
            for row in rows
        ]
    if "confidence" in out:
        out["confidence"] = out["confidence"].astype(float)
    return out


def summarise_pixels(
    classes: np.ndarray,
    probabilities: np.ndarray,
    class_names: Sequence[str],
    pixel_area_m2: float,
    min_valid_share: float | None = None,
    decision: DecisionPolicy | None = None,
    in_season: bool = False,
) -> dict[str, Any]:
    """The core path's per-field summary for one field's pixels (classes (N,), probs (C, N))."""
    from agrostress import analysis

    if min_valid_share is None:
        min_valid_share = analysis.MIN_VALID_SHARE
    npx = classes.shape[0]
    rows = analysis.field_summaries(  # one field: every pixel belongs to field 1
        np.ones((1, npx), np.int32),
        [1],
        probabilities.reshape(len(class_names), 1, npx),
        classes.reshape(1, npx),
        None,
        list(class_names),
        float(pixel_area_m2),
        float(min_valid_share),
        None,
        decision or DecisionPolicy(),
        in_season=in_season,
    )
    return rows[0].to_dict()


def _num(v: Any, default: float = float("nan")) -> float:
    return default if v is None else float(v)


def write_table(table: Any, out_dir: str | Path, stem: str = "fields") -> dict[str, Path]:
    """Write ``<stem>.parquet`` (GeoParquet) and ``<stem>.gpkg`` atomically."""
    out_dir = Path(out_dir)
    paths = {"fields_parquet": out_dir / f"{stem}.parquet", "fields_gpkg": out_dir / f"{stem}.gpkg"}
    with atomic_path(paths["fields_parquet"]) as tmp:
        table.to_parquet(tmp, index=False)
    with atomic_path(paths["fields_gpkg"]) as tmp:
        table.to_file(tmp, driver="GPKG", layer=stem)
    return paths
