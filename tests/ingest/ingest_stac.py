"""A static STAC catalogue of Sentinel-2 L2A COGs (earth-search layout) and a file server.

COGs: blue/green/red/nir at 10 m, rededge1-3/nir08/swir16/swir22/scl at 20 m (2x2 mean of
the 10 m truth; SCL by decimation), uint16 DN with or without the +1000 offset per item.
The HTTP server on 127.0.0.1 supports Range requests, as GDAL's /vsicurl expects of COG hosts.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely
import xarray as xr
from pyproj import Transformer
from shapely.geometry import box, mapping

from agrostress.cube import BANDS, reflectance_to_dn

ASSET_KEYS = {
    "B02": ("blue", 10),
    "B03": ("green", 10),
    "B04": ("red", 10),
    "B05": ("rededge1", 20),
    "B06": ("rededge2", 20),
    "B07": ("rededge3", 20),
    "B08": ("nir", 10),
    "B8A": ("nir08", 20),
    "B11": ("swir16", 20),
    "B12": ("swir22", 20),
}


@dataclass
class ItemSpec:
    """How one item is written: its metadata, and whether its DN really carry the offset."""

    baseline: str = "05.10"
    offset_applied_flag: bool | None = False  # earthsearch:boa_offset_applied
    data_has_offset: bool = True
    raster_offset: float | None = -0.1


def _write_cog(path: Path, arr: np.ndarray, transform: Any, epsg: int) -> None:
    import rasterio
    from rasterio.crs import CRS

    with rasterio.open(
        path,
        "w",
        driver="COG",
        width=arr.shape[1],
        height=arr.shape[0],
        count=1,
        dtype=arr.dtype.name,
        crs=CRS.from_epsg(epsg),
        transform=transform,
        nodata=0,
        compress="DEFLATE",
        blocksize=256,
    ) as dst:
        dst.write(arr, 1)


def _block_mean(a: np.ndarray) -> np.ndarray:
    """2x2 mean ignoring NaN (all-NaN blocks stay NaN)."""
    h, w = a.shape
    b = a[: h // 2 * 2, : w // 2 * 2].reshape(h // 2, 2, w // 2, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN blocks
        return np.nanmean(b, axis=(1, 3))


def write_catalog(
    cube: xr.Dataset,
    root: Path,
    specs: list[ItemSpec] | None = None,
    *,
    collection_id: str = "sentinel-2-l2a",
) -> Path:
    """Write catalog.json / collection / items / COGs under ``root``; return catalog.json."""
    import pystac
    from affine import Affine

    epsg = int(cube.rio.crs.to_epsg())
    x, y = cube["x"].values, cube["y"].values
    x0, y1 = float(x[0]) - 5, float(y[0]) + 5
    fp_utm = box(x0, float(y[-1]) - 5, float(x[-1]) + 5, y1)
    to_wgs = Transformer.from_crs(epsg, 4326, always_xy=True)
    fp = shapely.transform(fp_utm, to_wgs.transform, interleaved=False)
    times = pd.DatetimeIndex(cube["time"].values)
    specs = specs or [ItemSpec() for _ in times]
    catalog = pystac.Catalog(id="agrostress-test", description="test catalogue")
    coll = pystac.Collection(
        id=collection_id,
        description="Sentinel-2 L2A test items",
        extent=pystac.Extent(
            pystac.SpatialExtent([list(fp.bounds)]),
            pystac.TemporalExtent([[times[0].to_pydatetime(), times[-1].to_pydatetime()]]),
        ),
    )
    catalog.add_child(coll)
    platforms = cube["platform"].values if "platform" in cube.coords else ["S2A"] * len(times)
    for i, (t, spec) in enumerate(zip(times, specs, strict=True)):
        plat = str(platforms[i])
        item_id = f"{plat}_31TCJ_{t.strftime('%Y%m%d')}_{i}_L2A"
        folder = root / "data" / item_id
        folder.mkdir(parents=True, exist_ok=True)
        props: dict[str, Any] = {
            "platform": f"sentinel-{plat[1:].lower()}",
            "constellation": "sentinel-2",
            "eo:cloud_cover": float(10 * (i % 3)),
            "s2:processing_baseline": spec.baseline,
            "proj:code": f"EPSG:{epsg}",
        }
        if spec.offset_applied_flag is not None:
            props["earthsearch:boa_offset_applied"] = spec.offset_applied_flag
        item = pystac.Item(
            id=item_id,
            geometry=mapping(fp),
            bbox=list(fp.bounds),
            datetime=t.to_pydatetime().replace(tzinfo=dt.UTC),
            properties=props,
            collection=collection_id,
        )
        offset = -1000.0 if spec.data_has_offset else 0.0
        refl = cube["reflectance"].values[i]
        scl = cube["scl"].values[i]
        for b, band in enumerate(BANDS):
            key, res = ASSET_KEYS[band]
            layer = refl[b] if res == 10 else _block_mean(refl[b])
            dn = reflectance_to_dn(layer, offset=offset)
            tr = Affine(res, 0, x0, 0, -res, y1)
            _write_cog(folder / f"{band}.tif", dn, tr, epsg)
            rb: dict[str, Any] = {"nodata": 0, "data_type": "uint16", "scale": 0.0001}
            if spec.raster_offset is not None:
                rb["offset"] = spec.raster_offset
            item.add_asset(
                key,
                pystac.Asset(
                    href=str(folder / f"{band}.tif"),
                    media_type=pystac.MediaType.COG,
                    roles=["data", "reflectance"],
                    extra_fields={
                        "proj:shape": list(dn.shape),
                        "proj:transform": list(tr)[:6],
                        "raster:bands": [rb],
                        "eo:bands": [{"name": band}],
                    },
                ),
            )
        scl20 = scl[::2, ::2].astype(np.uint8)
        tr20 = Affine(20, 0, x0, 0, -20, y1)
        _write_cog(folder / "SCL.tif", scl20, tr20, epsg)
        item.add_asset(
            "scl",
            pystac.Asset(
                href=str(folder / "SCL.tif"),
                media_type=pystac.MediaType.COG,
                roles=["data"],
                extra_fields={
                    "proj:shape": list(scl20.shape),
                    "proj:transform": list(tr20)[:6],
                    "raster:bands": [{"nodata": 0, "data_type": "uint8"}],
                },
            ),
        )
        coll.add_item(item)
    catalog.normalize_hrefs(str(root))
    catalog.make_all_asset_hrefs_relative()
    catalog.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return root / "catalog.json"


class RangeHandler(SimpleHTTPRequestHandler):
    """Static files with single-range ``Range: bytes=a-b`` support; quiet."""

    def log_message(self, *args: Any) -> None:
        pass

    def send_head(self) -> Any:  # noqa: D102
        rng = self.headers.get("Range")
        path = self.translate_path(self.path)
        if not rng or not os.path.isfile(path):
            return super().send_head()
        m = re.match(r"bytes=(\d*)-(\d*)", rng)
        if not m:
            return super().send_head()
        size = os.path.getsize(path)
        start = int(m.group(1)) if m.group(1) else max(0, size - int(m.group(2)))
        end = int(m.group(2)) if m.group(1) and m.group(2) else size - 1
        end = min(end, size - 1)
        if start >= size:
            self.send_error(416)
            return None
        f = open(path, "rb")  # noqa: SIM115 - closed by copyfile caller
        f.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self._remaining = end - start + 1
        return _Limited(f, self._remaining)


class _Limited:
    def __init__(self, f: Any, n: int):
        self.f, self.n = f, n

    def read(self, size: int = -1) -> bytes:
        if self.n <= 0:
            return b""
        size = self.n if size < 0 else min(size, self.n)
        data = self.f.read(size)
        self.n -= len(data)
        return data

    def close(self) -> None:
        self.f.close()


@contextlib.contextmanager
def serve(root: Path) -> Iterator[str]:
    """Serve ``root`` over HTTP on 127.0.0.1; yield the base URL."""

    def handler(*args: Any, **kwargs: Any) -> RangeHandler:
        return RangeHandler(*args, directory=str(root), **kwargs)

    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.block_on_close = False
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _api_handler(root: Path, collection_id: str) -> type[RangeHandler]:
    """A minimal STAC API (landing page, conformance, /search GET+POST) over ``root``."""
    import json

    import pystac

    catalog = pystac.Catalog.from_file(str(root / "catalog.json"))
    items = list(catalog.get_items(recursive=True))

    class ApiHandler(RangeHandler):
        def _base(self) -> str:
            return f"http://{self.headers.get('Host')}"

        def _json(self, obj: Any, code: int = 200) -> None:
            raw = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def _landing(self) -> dict[str, Any]:
            base = self._base()
            return {
                "type": "Catalog",
                "id": "stub-stac-api",
                "description": "stub STAC API",
                "stac_version": "1.0.0",
                "conformsTo": [
                    "https://api.stacspec.org/v1.0.0/core",
                    "https://api.stacspec.org/v1.0.0/item-search",
                    "https://api.stacspec.org/v1.0.0/item-search#query",
                ],
                "links": [
                    {"rel": "self", "href": f"{base}/", "type": "application/json"},
                    {"rel": "root", "href": f"{base}/", "type": "application/json"},
                    {
                        "rel": "search",
                        "href": f"{base}/search",
                        "type": "application/geo+json",
                        "method": "GET",
                    },
                    {
                        "rel": "search",
                        "href": f"{base}/search",
                        "type": "application/geo+json",
                        "method": "POST",
                    },
                ],
            }

        def _search(self, params: dict[str, Any]) -> None:
            from shapely.geometry import shape

            self.server.searches.append(params)  # type: ignore[attr-defined]
            lo, hi = pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC")
            if params.get("datetime"):
                a, b = str(params["datetime"]).split("/")
                lo = pd.Timestamp(a) if a not in ("..", "") else lo
                hi = pd.Timestamp(b) if b not in ("..", "") else hi
            area = shape(params["intersects"]) if params.get("intersects") else None
            max_cc = (params.get("query") or {}).get("eo:cloud_cover", {}).get("lte", 100)
            base = self._base()
            feats = []
            for it in items:
                if params.get("collections") and collection_id not in params["collections"]:
                    continue
                t = pd.Timestamp(it.datetime)
                if not (lo <= t <= hi) or it.properties["eo:cloud_cover"] > max_cc:
                    continue
                if area is not None and not area.intersects(shape(it.geometry)):
                    continue
                d = it.to_dict(include_self_link=False)
                d["links"] = []
                for key, asset in it.assets.items():
                    rel = Path(asset.get_absolute_href()).resolve().relative_to(root.resolve())
                    d["assets"][key]["href"] = f"{base}/{rel.as_posix()}"
                feats.append(d)
            self._json({"type": "FeatureCollection", "features": feats, "links": []})

        def do_GET(self) -> None:  # noqa: N802
            path = self.path.split("?")[0]
            if path in ("/", ""):
                self._json(self._landing())
            elif path == "/conformance":
                self._json({"conformsTo": self._landing()["conformsTo"]})
            elif path == "/search":
                from urllib.parse import parse_qs, urlparse

                q = {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}
                if "collections" in q:
                    q["collections"] = q["collections"].split(",")
                if "intersects" in q:
                    q["intersects"] = json.loads(q["intersects"])
                if "query" in q:
                    q["query"] = json.loads(q["query"])
                self._search(q)
            else:
                super().do_GET()

        def do_POST(self) -> None:  # noqa: N802
            n = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(n) or b"{}")
            if self.path.split("?")[0] == "/search":
                self._search(body)
            else:
                self._json({"code": "NotFound"}, 404)

    return ApiHandler


@contextlib.contextmanager
def serve_api(root: Path, collection_id: str = "sentinel-2-l2a") -> Iterator[tuple[str, list]]:
    """Serve ``root`` as a STAC API on 127.0.0.1; yield (base URL, list of search bodies)."""
    cls = _api_handler(root, collection_id)

    def handler(*args: Any, **kwargs: Any) -> RangeHandler:
        return cls(*args, directory=str(root), **kwargs)

    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.block_on_close = False
    server.searches = []  # type: ignore[attr-defined]
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.searches  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
