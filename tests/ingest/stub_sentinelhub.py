"""A stub Sentinel Hub on 127.0.0.1: OAuth token, Catalogue search and Process API.

It speaks the real protocol closely enough for sentinelhub-py pointed at it (``sh_base_url``,
``sh_token_url``): form-encoded client-credentials token requests answered with a JWT-shaped
token; STAC search with ``context.next`` paging; Process API requests parsed from JSON and
answered with a 12-band UINT16 GeoTIFF (10 bands as harmonised DN, SCL, dataMask) cut from a
cube on a 10 m UTM grid. Faults are queued per endpoint by the test.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import numpy as np
import pandas as pd
import shapely
import xarray as xr
from pyproj import Transformer
from shapely.geometry import box, mapping, shape

from agrostress.cube import BANDS

CLIENT_ID = "agrostress-test-client"
CLIENT_SECRET = "agrostress-test-secret"


@dataclass
class Fault:
    """What to do instead of (or before) a normal answer."""

    kind: str  # "status" | "truncate" | "corrupt" | "delay"
    status: int = 500
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def status(code: int, body: Any = None, headers: dict[str, str] | None = None) -> Fault:
    if body is None:
        body = {
            "error": {"status": code, "reason": "stub fault", "message": f"stub answered {code}"}
        }
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Fault("status", code, raw, headers or {})


def too_many_requests(retry_after_ms: int = 50) -> Fault:
    return status(429, headers={"Retry-After": str(retry_after_ms)})


def truncate() -> Fault:
    return Fault("truncate")


def corrupt() -> Fault:
    return Fault("corrupt")


def delay(seconds: float) -> Fault:
    return Fault("delay", seconds=seconds)


class StubSentinelHub:
    """The stub server. ``faults[endpoint]`` is a queue consumed one fault per request;
    ``persistent[endpoint]`` is a fault applied to every request."""

    def __init__(
        self,
        cube: xr.Dataset,
        *,
        page_size: int = 2,
        footprint: Any = None,
        cloud_cover: list[float] | None = None,
    ):
        self.cube = cube
        self.page_size = page_size
        self.epsg = int(cube.rio.crs.to_epsg())
        x, y = cube["x"].values, cube["y"].values
        self.x0, self.y1 = float(x[0]) - 5.0, float(y[0]) + 5.0
        self.res = 10.0
        utm_box = footprint or box(x[0] - 5, y[-1] - 5, x[-1] + 5, y[0] + 5)
        t = Transformer.from_crs(self.epsg, 4326, always_xy=True)
        self.footprint_utm = utm_box
        self.footprint = shapely.transform(utm_box, t.transform, interleaved=False)
        self.cloud_cover = cloud_cover or [10.0 * (i % 4) for i in range(cube.sizes["time"])]
        self.faults: dict[str, list[Fault]] = {"token": [], "search": [], "process": []}
        self.persistent: dict[str, Fault | None] = {"token": None, "search": None, "process": None}
        self.calls: list[tuple[str, Any]] = []
        self.token = _jwt({"azp": CLIENT_ID, "sub": "stub"})
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # ------------------------------------------------------------------ control

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/oauth/token"

    def fail(self, endpoint: str, *faults: Fault) -> None:
        with self._lock:
            self.faults[endpoint].extend(faults)

    def next_fault(self, endpoint: str) -> Fault | None:
        with self._lock:
            if self.faults[endpoint]:
                return self.faults[endpoint].pop(0)
            return self.persistent[endpoint]

    def count(self, endpoint: str) -> int:
        return sum(1 for e, _ in self.calls if e == endpoint)

    def start(self) -> StubSentinelHub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ------------------------------------------------------------------ API logic

    def features(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        times = pd.DatetimeIndex(self.cube["time"].values)
        lo, hi = pd.Timestamp.min, pd.Timestamp.max
        if body.get("datetime"):
            a, b = body["datetime"].split("/")
            lo = pd.Timestamp(a).tz_convert(None) if a != ".." else lo
            hi = pd.Timestamp(b).tz_convert(None) if b != ".." else hi
        area = None
        if body.get("bbox"):
            area = box(*body["bbox"])
        if body.get("intersects"):
            area = shape(body["intersects"])
        if area is not None and not area.intersects(self.footprint):
            return []
        max_cc = 100.0
        flt = body.get("filter") or ""
        if "eo:cloud_cover" in flt:
            max_cc = float(flt.split("<=")[-1].strip().split()[0])
        out = []
        platforms = (
            self.cube["platform"].values if "platform" in self.cube.coords else ["S2A"] * len(times)
        )
        for i, t in enumerate(times):
            if not (lo <= t <= hi) or self.cloud_cover[i] > max_cc:
                continue
            stamp = t.strftime("%Y%m%dT%H%M%S")
            out.append(
                {
                    "type": "Feature",
                    "stac_version": "1.0.0",
                    "id": f"{platforms[i]}_MSIL2A_{stamp}_N0510_R051_T31TCJ_{stamp}",
                    "geometry": mapping(self.footprint),
                    "bbox": list(self.footprint.bounds),
                    "properties": {
                        "datetime": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "platform": f"sentinel-{str(platforms[i])[1:].lower()}",
                        "instruments": ["msi"],
                        "constellation": "sentinel-2",
                        "eo:cloud_cover": self.cloud_cover[i],
                        "proj:epsg": self.epsg,
                    },
                    "assets": {},
                    "links": [],
                }
            )
        return out

    def render(self, body: dict[str, Any]) -> bytes:
        import rasterio
        from affine import Affine
        from rasterio.io import MemoryFile

        bounds = body["input"]["bounds"]
        crs = bounds["properties"]["crs"]
        if not crs.endswith(f"/EPSG/0/{self.epsg}"):
            raise ValueError(f"stub serves EPSG:{self.epsg} only, got {crs}")
        x0, y0, x1, y1 = bounds["bbox"]
        out = body["output"]
        w, h = int(out["width"]), int(out["height"])
        if abs((x1 - x0) / w - self.res) > 1e-6 or abs((y1 - y0) / h - self.res) > 1e-6:
            raise ValueError("stub serves 10 m requests only")
        script = body["evalscript"]
        for name in (*BANDS, "SCL", "dataMask"):
            if f'"{name}"' not in script:
                raise ValueError(f"evalscript does not request {name}")
        data = body["input"]["data"][0]
        if data["type"] != "sentinel-2-l2a":
            raise ValueError(f"unknown collection {data['type']}")
        tr = data["dataFilter"]["timeRange"]
        lo, hi = pd.Timestamp(tr["from"]).tz_convert(None), pd.Timestamp(tr["to"]).tz_convert(None)
        col0 = (x0 - self.x0) / self.res
        row0 = (self.y1 - y1) / self.res
        if abs(col0 - round(col0)) > 1e-6 or abs(row0 - round(row0)) > 1e-6:
            raise ValueError("stub serves requests aligned with its 10 m grid only")
        col0, row0 = round(col0), round(row0)
        arr = np.zeros((len(BANDS) + 2, h, w), dtype=np.uint16)
        times = pd.DatetimeIndex(self.cube["time"].values)
        hits = [i for i, t in enumerate(times) if lo <= t <= hi]
        if hits:
            i = min(hits, key=lambda k: self.cloud_cover[k])
            H, W = self.cube.sizes["y"], self.cube.sizes["x"]
            r0, r1 = max(row0, 0), min(row0 + h, H)
            c0, c1 = max(col0, 0), min(col0 + w, W)
            if r1 > r0 and c1 > c0:
                refl = self.cube["reflectance"].values[i, :, r0:r1, c0:c1]
                scl = self.cube["scl"].values[i, r0:r1, c0:c1]
                # harmonizeValues: offset removed, values clamped at 0 — a valid dark pixel
                # (water, deep shadow) is DN 0 with dataMask 1, as the service sends it
                dn = np.where(np.isfinite(refl), np.clip(np.round(np.nan_to_num(refl) * 10000),
                                                         0, 65535), 0).astype(np.uint16)
                mask = (scl != 0).astype(np.uint16)
                sl = (slice(r0 - row0, r1 - row0), slice(c0 - col0, c1 - col0))
                arr[(slice(0, len(BANDS)), *sl)] = dn * mask
                arr[(len(BANDS), *sl)] = scl * mask
                arr[(len(BANDS) + 1, *sl)] = mask
        transform = Affine(self.res, 0, x0, 0, -self.res, y1)
        with MemoryFile() as mem:
            with mem.open(
                driver="GTiff",
                width=w,
                height=h,
                count=arr.shape[0],
                dtype="uint16",
                crs=rasterio.crs.CRS.from_epsg(self.epsg),
                transform=transform,
            ) as dst:
                dst.write(arr)
            return bytes(mem.read())


def _jwt(claims: dict[str, Any]) -> str:
    def enc(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{enc({'alg': 'none', 'typ': 'JWT'})}.{enc(claims)}.c2ln"


def _handler(stub: StubSentinelHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _send(
            self, code: int, body: bytes, ctype: str, headers: dict[str, str] | None = None
        ) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def _json(self, code: int, obj: Any) -> None:
            self._send(code, json.dumps(obj).encode(), "application/json")

        def do_POST(self) -> None:  # noqa: N802
            with suppress(BrokenPipeError, ConnectionResetError):
                self._post()

        def do_GET(self) -> None:  # noqa: N802
            self._json(404, {"error": {"status": 404, "message": "not found"}})

        def _post(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n) if n else b""
            path = self.path.split("?")[0]
            endpoint = {
                "/oauth/token": "token",
                "/api/v1/catalog/1.0.0/search": "search",
                "/api/v1/process": "process",
            }.get(path)
            if endpoint is None:
                self._json(404, {"error": {"status": 404, "message": f"no route {path}"}})
                return
            body: Any = parse_qs(raw.decode()) if endpoint == "token" else json.loads(raw or b"{}")
            stub.calls.append((endpoint, body))
            fault = stub.next_fault(endpoint)
            if fault is not None:
                if fault.kind == "delay":
                    time.sleep(fault.seconds)
                elif fault.kind == "status":
                    self._send(fault.status, fault.body, "application/json", fault.headers)
                    return
            if endpoint == "token":
                self._token(body)
                return
            if self.headers.get("Authorization") != f"Bearer {stub.token}":
                self._json(
                    401,
                    {"error": {"status": 401, "reason": "Unauthorized", "message": "bad token"}},
                )
                return
            if endpoint == "search":
                self._search(body)
                return
            try:
                tiff = stub.render(body)
            except (KeyError, ValueError) as e:
                self._json(
                    400, {"error": {"status": 400, "reason": "Bad Request", "message": str(e)}}
                )
                return
            if fault is not None and fault.kind == "corrupt":
                tiff = tiff[:8] + b"\x00garbage" * 64
            if fault is not None and fault.kind == "truncate":
                self.send_response(200)
                self.send_header("Content-Type", "image/tiff")
                self.send_header("Content-Length", str(len(tiff)))
                self.end_headers()
                self.wfile.write(tiff[: len(tiff) // 3])
                self.wfile.flush()
                self.close_connection = True
                return
            self._send(200, tiff, "image/tiff")

        def _token(self, form: dict[str, list[str]]) -> None:
            cid = (form.get("client_id") or [""])[0]
            secret = (form.get("client_secret") or [""])[0]
            if (form.get("grant_type") or [""])[0] != "client_credentials":
                self._json(400, {"error": "unsupported_grant_type"})
            elif cid != CLIENT_ID or secret != CLIENT_SECRET:
                self._json(
                    401,
                    {
                        "error": "invalid_client",
                        "error_description": "Invalid client or Invalid client credentials",
                    },
                )
            else:
                self._json(
                    200, {"access_token": stub.token, "token_type": "Bearer", "expires_in": 3600}
                )

        def _search(self, body: dict[str, Any]) -> None:
            feats = stub.features(body)
            start = int(body.get("next") or 0)
            limit = min(int(body.get("limit") or 10), stub.page_size)
            page = feats[start : start + limit]
            context: dict[str, Any] = {"limit": limit, "returned": len(page)}
            if start + limit < len(feats):
                context["next"] = start + limit
            self._json(
                200,
                {"type": "FeatureCollection", "features": page, "links": [], "context": context},
            )

    return Handler


@contextmanager
def running(cube: xr.Dataset, **kwargs: Any) -> Iterator[StubSentinelHub]:
    stub = StubSentinelHub(cube, **kwargs).start()
    try:
        yield stub
    finally:
        stub.stop()
