"""Sentinel Hub / Copernicus Data Space Ecosystem through sentinelhub-py.

* Catalogue API search for acquisitions in the period (paged), grouped by UTC day.
* One Process API request per (day, tile): B02-B12 (10 bands), SCL and dataMask, UINT16 DN
  with ``harmonizeValues: true`` (the service removes the PB 04.00 offset, so
  reflectance = DN / 10000; the pixel check of :mod:`~agrostress.ingest.harmonise` still runs),
  ``mosaickingOrder: leastCC`` within the day, on the AOI's 10 m UTM grid. Grids over
  ``sh_max_px`` (2500) pixels a side are split into aligned tiles and re-mosaicked exactly.
* Retries (sentinelhub-py's own machinery, made explicit through the settings): HTTP 429 waits
  ``Retry-After`` (milliseconds, as Sentinel Hub sends it) or ``sh_rate_limit_wait_s`` and
  gives up after ``sh_rate_limit_retries`` answers; 5xx, connection errors and timeouts are
  retried ``sh_max_attempts`` times with back-off ``sh_retry_sleep_s`` x 3^k; a corrupt or
  truncated TIFF is re-requested up to ``sh_max_attempts`` times. 401/403 and OAuth errors →
  :class:`CredentialsError`; nothing found → :class:`EmptyCatalogueError` or, when the
  catalogue has nothing over the AOI at any time, :class:`CoverageError`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import time
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from agrostress.cube import BANDS
from agrostress.ingest.base import (
    CoverageError,
    CredentialsError,
    EmptyCatalogueError,
    IngestError,
    ProgressCallback,
    UpstreamError,
    finalize_cube,
    platform_code,
    register_source,
    report,
)
from agrostress.ingest.harmonise import OffsetDecision, check_offset, harmonise

if TYPE_CHECKING:
    import xarray as xr

    from agrostress.ingest.aoi import AOI
    from agrostress.settings import Settings

LOGGER = logging.getLogger("agrostress.ingest")

PROFILES: dict[str, tuple[str, str]] = {
    "sentinelhub": (
        "https://services.sentinel-hub.com",
        "https://services.sentinel-hub.com/auth/realms/main/protocol/openid-connect/token",
    ),
    "cdse": (
        "https://sh.dataspace.copernicus.eu",
        "https://identity.dataspace.copernicus.eu/auth/realms/CDSE/protocol/openid-connect/token",
    ),
}

OUTPUT_BANDS = (*BANDS, "SCL", "dataMask")

_EVALSCRIPT_TEMPLATE = """//VERSION=3
// AgroStress ingest: 10 L2A bands as harmonised DN, SCL and dataMask, UINT16.
function setup() {
  return {
    input: [{bands: [BANDS], units: "DN"}],
    output: {id: "default", bands: COUNT, sampleType: "UINT16"}
  };
}
function evaluatePixel(s) {
  return [SAMPLES];
}
"""
EVALSCRIPT = (
    _EVALSCRIPT_TEMPLATE.replace("BANDS", ", ".join(f'"{b}"' for b in OUTPUT_BANDS))
    .replace("COUNT", str(len(OUTPUT_BANDS)))
    .replace("SAMPLES", ", ".join(f"s.{b}" for b in OUTPUT_BANDS))
)


class CorruptResponse(Exception):
    """A Process API response that is not the TIFF we asked for."""


def resolve_urls(settings: Settings) -> tuple[str, str]:
    """(base URL, token URL): explicit settings win over the ``sh_profile`` defaults."""
    base, token = PROFILES[settings.sh_profile]
    return (settings.sh_base_url or base).rstrip("/"), settings.sh_token_url or token


def split_grid(width: int, height: int, max_px: int) -> list[tuple[int, int, int, int]]:
    """Tiles (row0, col0, h, w) covering a width x height grid, none over max_px a side."""
    nx, ny = math.ceil(width / max_px), math.ceil(height / max_px)
    cols = np.linspace(0, width, nx + 1).round().astype(int)
    rows = np.linspace(0, height, ny + 1).round().astype(int)
    return [
        (int(rows[j]), int(cols[i]), int(rows[j + 1] - rows[j]), int(cols[i + 1] - cols[i]))
        for j in range(ny)
        for i in range(nx)
    ]


@register_source("sentinelhub")
class SentinelHubSource:
    """Sentinel-2 L2A from Sentinel Hub or Copernicus Data Space (Process + Catalogue APIs)."""

    name = "sentinelhub"
    location_determined = True  # a pixel's values do not depend on the grid's extent

    def __init__(self, settings: Settings):
        self.settings = settings
        self.base_url, self.token_url = resolve_urls(settings)

    # ------------------------------------------------------------------ configuration

    def identity(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "collection": "sentinel-2-l2a",
            "max_cloud_cover": self.settings.ingest_max_cloud_cover,
            "mosaicking": "leastCC",
            "harmonize_values": True,
            "offset_check": self.settings.ingest_offset_check,
            "evalscript_sha256": hashlib.sha256(EVALSCRIPT.encode()).hexdigest(),
        }

    def config(self) -> Any:
        """A :class:`sentinelhub.SHConfig` built from the settings (no file is written)."""
        from sentinelhub import SHConfig

        s = self.settings
        values: dict[str, Any] = {
            "sh_base_url": self.base_url,
            "sh_token_url": self.token_url,
            "max_download_attempts": s.sh_max_attempts,
            "download_sleep_time": s.sh_retry_sleep_s,
            "download_timeout_seconds": s.sh_timeout_s,
            "max_retries": s.sh_rate_limit_retries,
        }
        if s.sh_client_id:
            values["sh_client_id"] = s.sh_client_id
        if s.sh_client_secret.get_secret_value():
            values["sh_client_secret"] = s.sh_client_secret.get_secret_value()
        if s.sh_config_profile:
            try:
                cfg = SHConfig(s.sh_config_profile, **values)
            except KeyError as e:
                raise CredentialsError(f"sentinelhub-py config profile: {e}") from e
        else:
            cfg = SHConfig(use_defaults=True, **values)
        if not (cfg.sh_client_id and cfg.sh_client_secret):
            raise CredentialsError(
                "Sentinel Hub credentials missing: set AGROSTRESS_SH_CLIENT_ID and "
                "AGROSTRESS_SH_CLIENT_SECRET (or SH_CLIENT_ID / SH_CLIENT_SECRET); "
                "see docs/ingest.md"
            )
        return cfg

    def collection(self) -> Any:
        """Sentinel-2 L2A bound to the configured service URL."""
        from sentinelhub import DataCollection

        tag = hashlib.sha1(self.base_url.encode()).hexdigest()[:10].upper()
        return DataCollection.SENTINEL2_L2A.define_from(
            f"AGROSTRESS_S2L2A_{tag}", service_url=self.base_url
        )

    # ------------------------------------------------------------------ fetch

    def fetch(
        self, aoi: AOI, start: dt.date, end: dt.date, *, progress: ProgressCallback | None = None
    ) -> xr.Dataset:
        with _translate_errors(self.base_url):
            return self._fetch(aoi, start, end, progress)

    def _fetch(
        self, aoi: AOI, start: dt.date, end: dt.date, progress: ProgressCallback | None
    ) -> xr.Dataset:
        from sentinelhub import SentinelHubDownloadClient, SentinelHubSession

        cfg = self.config()
        session = SentinelHubSession(config=cfg)  # fetches the token: fails early on credentials
        client = SentinelHubDownloadClient(
            config=cfg, session=session, default_retry_time=self.settings.sh_rate_limit_wait_s
        )
        collection = self.collection()
        days = self._search(cfg, client, collection, aoi, start, end)
        report(progress, "catalogue", 1, 1)
        tiles = split_grid(aoi.width, aoi.height, self.settings.sh_max_px)
        jobs = [(d, t) for d in range(len(days)) for t in range(len(tiles))]
        shape = (len(BANDS), aoi.height, aoi.width)
        refl = np.full((len(days), *shape), np.nan, dtype=np.float32)
        scl = np.zeros((len(days), aoi.height, aoi.width), dtype=np.uint8)
        pending: dict[int, np.ndarray] = {}  # DN of days whose tiles are still arriving
        has_data: dict[int, np.ndarray] = {}  # their dataMask
        missing = {d: len(tiles) for d in range(len(days))}
        offsets: list[float] = [0.0] * len(days)
        batch = max(1, self.settings.sh_max_threads * 2)
        report(progress, "download", 0, len(jobs))
        for b0 in range(0, len(jobs), batch):
            idx = list(range(b0, min(b0 + batch, len(jobs))))
            requests = [
                self._request(cfg, collection, aoi, tiles[jobs[i][1]], days[jobs[i][0]]["day"])
                for i in idx
            ]
            arrays = self._download_reauth(cfg, client, requests,
                                           [tiles[jobs[i][1]] for i in idx])
            for i, arr in zip(idx, arrays, strict=True):
                d, t = jobs[i]
                r0, c0, h, w = tiles[t]
                valid = arr[-1] > 0
                dn = pending.setdefault(d, np.zeros(shape, dtype=np.uint16))
                ok = has_data.setdefault(d, np.zeros(shape[1:], dtype=bool))
                dn[:, r0 : r0 + h, c0 : c0 + w] = np.where(valid, arr[: len(BANDS)], 0)
                ok[r0 : r0 + h, c0 : c0 + w] = valid
                scl[d, r0 : r0 + h, c0 : c0 + w] = np.where(valid, arr[len(BANDS)], 0)
                missing[d] -= 1
                if missing[d] == 0:  # day complete: harmonise and free its DN
                    decision = check_offset(
                        OffsetDecision(0.0, "Sentinel Hub harmonizeValues=true"),
                        dn[BANDS.index("B04")],
                        scl[d],
                        scene=f"sentinelhub {days[d]['day']}",
                        enabled=self.settings.ingest_offset_check,
                    )
                    # dataMask, not DN 0, says where there is data: harmonised values of
                    # dark pixels (water, deep shadow) are clamped to DN 0 and stay valid
                    refl[d] = harmonise(pending.pop(d), decision, valid=has_data.pop(d))
                    offsets[d] = decision.offset
            report(progress, "download", idx[-1] + 1, len(jobs))
        return finalize_cube(
            refl,
            scl,
            [day["time"] for day in days],
            aoi,
            platforms=[day["platform"] for day in days],
            attrs={
                "sentinelhub_base_url": self.base_url,
                "scene_ids": [",".join(day["ids"]) for day in days],
                "boa_offsets": offsets,
            },
            source=self.name,
        )

    # ------------------------------------------------------------------ catalogue

    def _search(
        self, cfg: Any, client: Any, collection: Any, aoi: AOI, start: dt.date, end: dt.date
    ) -> list[dict[str, Any]]:
        from sentinelhub import CRS, BBox, SentinelHubCatalog

        catalog = SentinelHubCatalog(config=cfg)
        catalog.client = client
        bbox = BBox(aoi.bounds, crs=CRS(aoi.epsg))
        t0 = dt.datetime.combine(start, dt.time(0, 0, 0))
        t1 = dt.datetime.combine(end, dt.time(23, 59, 59))
        maxcc = self.settings.ingest_max_cloud_cover
        flt = f"eo:cloud_cover <= {maxcc:g}" if maxcc < 100 else None
        features = list(catalog.search(collection, time=(t0, t1), bbox=bbox, filter=flt, limit=100))
        if not features:
            # the published Catalogue API requires a datetime: the whole mission so far
            ever = (dt.datetime(2015, 6, 23), dt.datetime.now(dt.UTC).replace(tzinfo=None))
            anytime = catalog.search(collection, time=ever, bbox=bbox, limit=1)
            if next(iter(anytime), None) is None:
                raise CoverageError(
                    f"Sentinel Hub has no Sentinel-2 L2A scene over the AOI at any time "
                    f"(bbox {aoi.bbox_wgs84}): the AOI is outside the coverage"
                )
            raise EmptyCatalogueError(
                f"Sentinel Hub catalogue: no Sentinel-2 L2A acquisition over the AOI between "
                f"{start} and {end}" + (f" with cloud cover <= {maxcc:g} %" if flt else "")
            )
        days: dict[dt.date, dict[str, Any]] = {}
        for f in features:
            ts = pd.Timestamp(f["properties"]["datetime"])
            ts = ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo else ts
            day = days.setdefault(
                ts.date(), {"day": ts.date(), "time": ts, "ids": [], "platform": None}
            )
            day["time"] = min(day["time"], ts)
            day["ids"].append(str(f.get("id", "")))
            day["platform"] = day["platform"] or platform_code(
                f["properties"].get("platform") or str(f.get("id", ""))[:3]
            )
        out = [days[k] for k in sorted(days)]
        for day in out:
            day["ids"] = sorted(day["ids"])
        LOGGER.info("sentinelhub: %d scene(s) on %d day(s)", len(features), len(out))
        return out

    # ------------------------------------------------------------------ process API

    def _request(
        self, cfg: Any, collection: Any, aoi: AOI, tile: tuple[int, int, int, int], day: dt.date
    ) -> Any:
        from sentinelhub import CRS, BBox, MimeType, MosaickingOrder, SentinelHubRequest

        r0, c0, h, w = tile
        res = aoi.resolution
        x0 = aoi.bounds[0] + c0 * res
        y1 = aoi.bounds[3] - r0 * res
        bbox = BBox((x0, y1 - h * res, x0 + w * res, y1), crs=CRS(aoi.epsg))
        t0 = dt.datetime.combine(day, dt.time(0, 0, 0))
        t1 = dt.datetime.combine(day, dt.time(23, 59, 59))
        req = SentinelHubRequest(
            evalscript=EVALSCRIPT,
            input_data=[
                SentinelHubRequest.input_data(
                    collection,
                    time_interval=(t0, t1),
                    mosaicking_order=MosaickingOrder.LEAST_CC,
                    other_args={"processing": {"harmonizeValues": True}},
                )
            ],
            responses=[SentinelHubRequest.output_response("default", MimeType.TIFF)],
            bbox=bbox,
            size=(w, h),
            config=cfg,
        )
        return req.download_list[0]

    def _download_reauth(
        self, cfg: Any, client: Any, requests: list[Any], tiles: list[tuple[int, int, int, int]]
    ) -> list[np.ndarray]:
        """:meth:`_download`, re-authenticating once when the service answers 401 mid-run (a
        token revoked or expired early); a second 401 is a credentials error."""
        from sentinelhub import SentinelHubSession
        from sentinelhub.exceptions import DownloadFailedException

        try:
            return self._download(client, requests, tiles)
        except DownloadFailedException as e:
            if _status(e) != 401:
                raise
            LOGGER.warning("sentinelhub: 401 mid-run, fetching a new token and retrying once")
            client.session = SentinelHubSession(config=cfg)
            return self._download(client, requests, tiles)

    def _download(
        self, client: Any, requests: list[Any], tiles: list[tuple[int, int, int, int]]
    ) -> list[np.ndarray]:
        from sentinelhub.exceptions import SHRateLimitWarning

        out: list[np.ndarray | None] = [None] * len(requests)
        pending = list(range(len(requests)))
        sleep = self.settings.sh_retry_sleep_s
        last: Exception | None = None
        for attempt in range(self.settings.sh_max_attempts):
            if attempt:
                LOGGER.warning("re-requesting %d corrupt response(s): %s", len(pending), last)
                time.sleep(sleep)
                sleep *= 3
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", SHRateLimitWarning)
                responses = client.download(
                    [requests[i] for i in pending],
                    max_threads=self.settings.sh_max_threads,
                    decode_data=False,
                )
            if any(issubclass(w.category, SHRateLimitWarning) for w in caught):
                LOGGER.info("sentinelhub: rate limit hit (429), waited and retried")
            failed = []
            for i, resp in zip(pending, responses, strict=True):
                try:
                    out[i] = decode_tiff(resp.content, tiles[i][2], tiles[i][3])
                except CorruptResponse as e:
                    failed.append(i)
                    last = e
            pending = failed
            if not pending:
                return out  # type: ignore[return-value]
        raise UpstreamError(
            f"Sentinel Hub returned an unreadable response {self.settings.sh_max_attempts} "
            f"time(s): {last}"
        )


def decode_tiff(content: bytes, height: int, width: int) -> np.ndarray:
    """Decode a Process API TIFF into (12, height, width) uint16, or :class:`CorruptResponse`."""
    from rasterio.io import MemoryFile

    if not content:
        raise CorruptResponse("empty response body")
    try:
        with MemoryFile(content) as mem, mem.open() as src:
            if src.count != len(OUTPUT_BANDS) or (src.height, src.width) != (height, width):
                raise CorruptResponse(
                    f"TIFF has {src.count} band(s) of {src.height}x{src.width}, expected "
                    f"{len(OUTPUT_BANDS)} of {height}x{width}"
                )
            data = src.read()
    except CorruptResponse:
        raise
    except Exception as e:  # rasterio / GDAL errors of every kind
        raise CorruptResponse(f"not a readable TIFF ({type(e).__name__}: {e})") from e
    if data.dtype != np.uint16:
        raise CorruptResponse(f"TIFF has dtype {data.dtype}, expected uint16")
    return data


class _translate_errors:
    """Context manager mapping sentinelhub-py / requests / oauthlib errors to IngestError."""

    def __init__(self, base_url: str):
        self.base_url = base_url

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        if exc is None or isinstance(exc, IngestError) or not isinstance(exc, Exception):
            return False
        raise translate_error(exc, self.base_url) from exc


def translate_error(exc: Exception, base_url: str) -> IngestError:
    """The :class:`IngestError` for an exception raised by sentinelhub-py."""
    import requests
    from oauthlib.oauth2.rfc6749.errors import InsecureTransportError, OAuth2Error
    from sentinelhub.exceptions import DownloadFailedException, OutOfRequestsException

    if isinstance(exc, InsecureTransportError):
        return CredentialsError("the OAuth token URL must use https:// (AGROSTRESS_SH_TOKEN_URL)")
    if isinstance(exc, OAuth2Error):
        return CredentialsError(
            f"Sentinel Hub rejected the credentials ({exc.error}: {exc.description}); check "
            "AGROSTRESS_SH_CLIENT_ID / AGROSTRESS_SH_CLIENT_SECRET and the profile (sentinelhub "
            "vs cdse)"
        )
    if isinstance(exc, OutOfRequestsException):
        return UpstreamError(
            f"Sentinel Hub kept answering 429 Too Many Requests ({exc}); retry later or raise "
            "AGROSTRESS_SH_RATE_LIMIT_RETRIES"
        )
    req_exc = exc.request_exception if isinstance(exc, DownloadFailedException) else exc
    response = getattr(req_exc, "response", None)
    status = getattr(response, "status_code", None)
    if status in (401, 403):
        text = _server_message(response)
        if status == 403 and any(w in text.lower() for w in QUOTA_WORDS):
            return UpstreamError(f"Sentinel Hub refused the request (403): {text}")
        return CredentialsError(
            f"Sentinel Hub answered {status} ({'unauthorised' if status == 401 else 'forbidden'}"
            f": {text}) at {getattr(response, 'url', base_url)}: check the credentials and that "
            "the account may use the Process/Catalogue APIs"
        )
    if status is not None and 400 <= status < 500:
        text = _server_message(response)
        low = text.lower()
        if "outside" in low or "coverage" in low or "no data" in low:
            return CoverageError(f"Sentinel Hub: {text}")
        return UpstreamError(f"Sentinel Hub rejected the request ({status}): {text}")
    if status is not None:
        return UpstreamError(
            f"Sentinel Hub failed with HTTP {status} after retries: {_server_message(response)}"
        )
    if isinstance(req_exc, requests.Timeout):
        return UpstreamError(f"Sentinel Hub timed out after retries ({base_url}): {req_exc}")
    if isinstance(req_exc, requests.RequestException) or isinstance(exc, DownloadFailedException):
        return UpstreamError(f"Sentinel Hub unreachable or failing ({base_url}): {exc}")
    return UpstreamError(f"Sentinel Hub ingestion failed: {type(exc).__name__}: {exc}")


#: words of a 403 that is about the account's allowance, not its credentials
QUOTA_WORDS = ("quota", "exceeded", "limit", "processing units", "insufficient")


def _status(exc: Exception) -> int | None:
    """The HTTP status behind a sentinelhub-py download error (None without a response)."""
    from sentinelhub.exceptions import DownloadFailedException

    req_exc = exc.request_exception if isinstance(exc, DownloadFailedException) else exc
    return getattr(getattr(req_exc, "response", None), "status_code", None)


def _server_message(response: Any) -> str:
    try:
        body = response.json()
        err = body.get("error", body)
        if isinstance(err, dict):
            return str(err.get("message") or err.get("reason") or err)
        return str(err)
    except Exception:
        return (getattr(response, "text", "") or "")[:300]
