"""A stand-in for the core path (fetch → analyse → write) that follows its contract.

It runs in milliseconds and its answer is a known function of the request (100 m diagonal
stripes of the three classes over the fields), so the service's plumbing — limits, jobs,
persistence, concurrency, artefacts — can be tested exactly without the science. Tests that
need the real core use ``agrostress.analysis`` when it is implemented.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import rasterio
import shapely
import xarray as xr
from PIL import Image
from pyproj import Transformer
from rasterio.features import geometry_mask

from agrostress.ingest import load_aoi
from api.jobs.core import Core

CLASSES = ("healthy", "nitrogen_deficiency", "yellow_rust")
COLOURS = np.array([[46, 125, 50], [249, 168, 37], [198, 40, 40]], dtype=np.uint8)


class FakeCore:
    """Builds a :class:`api.jobs.core.Core`; ``delay_s`` makes fetching slow (with progress)."""

    def __init__(self, delay_s: float = 0.0, fail_with: BaseException | None = None):
        self.delay_s = delay_s
        self.fail_with = fail_with
        self.calls = 0
        self._lock = threading.Lock()

    def core(self) -> Core:
        return Core(self.fetch_cube, self.analyse, write_outputs)

    def fetch_cube(self, source: str, aoi: Any, start: Any, end: Any, **kw: Any) -> Any:
        with self._lock:
            self.calls += 1
        area = load_aoi(aoi, crs=kw.get("aoi_crs"), max_area_km2=None)
        progress = kw.get("progress")
        steps = max(1, int(self.delay_s / 0.05))
        for i in range(steps):
            if progress:
                progress("fetch", i, steps)
            if self.delay_s:
                time.sleep(self.delay_s / steps)
        if self.fail_with is not None:
            raise self.fail_with
        return SimpleNamespace(aoi=area, source=source, start=str(start), end=str(end))

    def analyse(self, cube: Any, model: Any, *, fields: Any = None, explain: bool = False,
                method: str = "ig", tile: int = 256, progress: Any = None,
                decision: Any = None, as_of: Any = None, crops: Any = None,
                not_wheat: Any = None) -> Any:
        """The real core's signature; crops and the not-wheat detector are not faked."""
        return fake_analyse(cube, model, fields=fields, explain=explain, method=method,
                            progress=progress, as_of=as_of)


def expected_classes(aoi: Any) -> np.ndarray:
    """The fake class map: 100 m diagonal stripes 0/1/2, 255 outside the fields."""
    xx, yy = np.meshgrid(aoi.x, aoi.y)
    cls = (np.floor(xx / 100.0) + np.floor(yy / 100.0)).astype(np.int64) % 3
    return np.where(aoi.mask(), cls, 255).astype(np.uint8)


def fake_timeline(call: str | None, as_of: str) -> dict[str, Any]:
    """A made-up time line ending with ``call`` on ``as_of`` (the shape the core writes)."""
    calls = ["too_early", "healthy", call]
    p = {c: [1 / 3, 0.8 if c == "healthy" else 0.1, 1.0 if c == call else 0.0] for c in CLASSES}
    return {"dates": ["2024-04-01", "2024-04-20", as_of], "doys": [92.0, 111.0, 136.0],
            "calls": calls, "probabilities": p}


class FakeField(dict):
    """A made-up field answer: already the JSON object the core's ``FieldSummary.to_dict``
    gives (with the fake's time line in it)."""

    def to_dict(self) -> dict[str, Any]:
        return dict(self)


def fake_analyse(cube: Any, model: Any, *, fields: Any, explain: bool, method: str,
                 progress: Any = None, as_of: Any = None) -> Any:
    aoi = cube.aoi
    classes = expected_classes(aoi)
    fields_utm = fields.to_crs(epsg=aoi.epsg)
    out_fields = []
    for fid, geom in zip(fields_utm["field_id"], fields_utm.geometry, strict=True):
        inside = geometry_mask([geom], out_shape=aoi.shape, transform=aoi.transform, invert=True)
        vals = classes[inside]
        vals = vals[vals != 255]
        counts = np.bincount(vals, minlength=3)[:3] if vals.size else np.zeros(3)
        fractions = counts / counts.sum() if counts.sum() else np.full(3, np.nan)
        call = int(np.argmax(counts)) if counts.sum() else None
        out_fields.append(FakeField({
            "field_id": int(fid),
            "call": CLASSES[call] if call is not None else None,
            "confidence": float(fractions[call]) if call is not None else float("nan"),
            "class_fractions": dict(zip(CLASSES, map(float, fractions), strict=True)),
            "mean_probabilities": dict(zip(CLASSES, map(float, fractions), strict=True)),
            "valid_pixel_share": 1.0 if vals.size else 0.0,
            "area_ha": float(geom.area / 1e4),
        }))
        if as_of is not None and out_fields[-1]["call"] is not None:
            out_fields[-1]["timeline"] = fake_timeline(out_fields[-1]["call"], str(as_of))
            out_fields[-1]["call_since"] = str(as_of)
    if progress:
        progress(1, 1)
    valid = classes != 255
    totals = {name: float((classes == i).sum() * 0.01) for i, name in enumerate(CLASSES)}
    totals.update(nodata_ha=float((~valid).sum() * 0.01), total_ha=float(classes.size * 0.01))
    da = xr.DataArray(classes, dims=("y", "x"), coords={"y": aoi.y, "x": aoi.x})
    attributions = None
    if explain:
        attributions = {"method": method, "fields": {str(f["field_id"]): {} for f in out_fields},
                        "features": ["LAI", "LCC"], "dates": ["2024-04-01", "2024-05-01"]}
    return SimpleNamespace(classes=da, fields=out_fields, totals=totals, aoi=aoi,
                           attributions=attributions, model_card={"name": "fake"},
                           timelines=None,
                           meta={"decision": {"priors": "fake"}, "reference": None})


class LaterRenders:
    """The fake core with the PNG drawn after the answer (``renders=False``), slowly; with
    ``fail``, the drawing raises."""

    def __init__(self, delay_s: float = 1.0, fail: bool = False):
        self.delay_s, self.fail = delay_s, fail

    def core(self, fake: FakeCore | None = None) -> Core:
        fake = fake or FakeCore()
        return Core(fake.fetch_cube, fake.analyse, write_outputs,
                    render_outputs=self.render, pending_renders=lambda _r, plots=True:
                    ["stress_map.png"])

    def render(self, result: Any, out_dir: Path, *, plots: bool = True) -> list[str]:
        time.sleep(self.delay_s)
        if self.fail:
            raise RuntimeError("drawing failed")
        _map_png(result, Path(out_dir) / "stress_map.png")
        return ["stress_map.png"]


def _map_png(result: Any, path: Path) -> None:
    arr = np.asarray(result.classes.values, dtype=np.uint8)
    rgba = np.zeros((*arr.shape, 4), dtype=np.uint8)
    valid = arr != 255
    rgba[valid, :3] = COLOURS[arr[valid]]
    rgba[valid, 3] = 255
    Image.fromarray(rgba, "RGBA").save(path)


def write_outputs(result: Any, out_dir: Path, *, plots: bool = True,
                  renders: bool = True) -> dict[str, Path]:
    out_dir = Path(out_dir)
    aoi = result.aoi
    arr = np.asarray(result.classes.values, dtype=np.uint8)
    paths = {"stress_map.tif": out_dir / "stress_map.tif"}
    with rasterio.open(paths["stress_map.tif"], "w", driver="GTiff", width=aoi.width,
                       height=aoi.height, count=1, dtype="uint8", crs=f"EPSG:{aoi.epsg}",
                       transform=aoi.transform, nodata=255) as dst:
        dst.write(arr, 1)
    if renders:
        paths["stress_map.png"] = out_dir / "stress_map.png"
        _map_png(result, paths["stress_map.png"])
    paths["summary.json"] = out_dir / "summary.json"
    paths["summary.json"].write_text(json.dumps({"fields": result.fields}, default=str))
    if result.attributions is not None:
        paths["attributions.json"] = out_dir / "attributions.json"
        paths["attributions.json"].write_text(json.dumps(result.attributions))
        paths["attributions.png"] = out_dir / "attributions.png"
        heat = (np.outer(np.arange(8), np.arange(12)) * 3).astype(np.uint8)
        Image.fromarray(heat, "L").save(paths["attributions.png"])
    return paths


def field_polygon(lon: float, lat: float, size_m: float = 400.0) -> dict[str, Any]:
    """A square field of ``size_m`` metres a side with its SW corner at (lon, lat)."""
    dlat = size_m / 111_320.0
    dlon = size_m / (111_320.0 * np.cos(np.radians(lat)))
    ring = [[lon, lat], [lon + dlon, lat], [lon + dlon, lat + dlat], [lon, lat + dlat], [lon, lat]]
    return {"type": "Polygon", "coordinates": [[[round(a, 7), round(b, 7)] for a, b in ring]]}


def expected_fields(geojson: dict[str, Any]) -> list[dict[str, Any]]:
    """What the fake core must answer for a Polygon / FeatureCollection (call, fractions)."""
    import geopandas as gpd

    feats = geojson["features"] if geojson["type"] == "FeatureCollection" else [
        {"type": "Feature", "properties": {}, "geometry": geojson}
    ]
    geoms = [shapely.geometry.shape(f["geometry"]) for f in feats]
    aoi = load_aoi(shapely.union_all(geoms), crs="EPSG:4326", max_area_km2=None)
    gdf = gpd.GeoDataFrame({"field_id": list(range(1, len(geoms) + 1))}, geometry=geoms,
                           crs="EPSG:4326")
    res = fake_analyse(SimpleNamespace(aoi=aoi), None, fields=gdf, explain=False, method="ig")
    return res.fields


def utm_to_wgs84(epsg: int) -> Transformer:
    return Transformer.from_crs(epsg, 4326, always_xy=True)
