"""Content-addressed ingestion cache: the same request is never downloaded twice.

The key is the SHA-256 of a canonical JSON of: source name, the source's identity (endpoint
URL, collection, data-relevant settings, input file fingerprints), the AOI fingerprint (UTM
EPSG, aligned bounds, resolution, hash of the normalised polygon WKB), the period, the band list
and :data:`~agrostress.ingest.base.INGEST_FORMAT_VERSION`. Entries are Zarr cubes written
atomically under ``<cache_dir>/<key>.zarr`` with a readable ``<key>.json`` beside them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from agrostress.atomic import atomic_path
from agrostress.cube import BANDS, read_zarr, write_zarr
from agrostress.ingest.aoi import AOI
from agrostress.ingest.base import INGEST_FORMAT_VERSION

LOGGER = logging.getLogger("agrostress.ingest")


def request_description(
    source: str, identity: dict[str, Any], aoi: AOI, start: dt.date, end: dt.date
) -> dict[str, Any]:
    """Everything that determines the cube of one ingest request."""
    return {
        "format": INGEST_FORMAT_VERSION,
        "source": source,
        "identity": identity,
        "aoi": aoi.fingerprint(),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "bands": list(BANDS),
    }


def cache_key(description: dict[str, Any]) -> str:
    """SHA-256 (hex, 32 chars) of the canonical JSON of ``description``."""
    blob = json.dumps(description, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


class IngestCache:
    """A folder of cached cubes keyed by :func:`cache_key`."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / f"{key}.zarr"

    def get(self, key: str) -> xr.Dataset | None:
        """The cached cube (loaded in memory), or None.

        An entry whose content digest does not match its sidecar (a crash between writing the
        Zarr and the sidecar, a tampered or damaged store: Zarr reads missing chunks as fill
        values, silently) is discarded.
        """
        p = self.path(key)
        if not p.exists():
            return None
        try:
            meta = json.loads((self.root / f"{key}.json").read_text())
            ds = read_zarr(p).load()
            if meta.get("digest") != content_digest(ds):
                raise ValueError("content digest mismatch")
        except Exception as e:
            LOGGER.warning("cache entry %s unusable (%s); discarding it", p, e)
            shutil.rmtree(p, ignore_errors=True)
            return None
        LOGGER.info("cache hit %s", p)
        return ds

    def put(self, key: str, ds: xr.Dataset, description: dict[str, Any]) -> Path:
        """Store ``ds`` atomically under ``key`` (Zarr, then the sidecar with its digest)."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = write_zarr(ds, self.path(key), overwrite=True)
        meta = {**description, "key": key, "digest": content_digest(ds)}
        with atomic_path(self.root / f"{key}.json") as tmp:
            tmp.write_text(json.dumps(meta, indent=2, sort_keys=True, default=str))
        return path


def content_digest(ds: xr.Dataset) -> str:
    """SHA-256 over the bytes of the cube's arrays and coordinates (bit-for-bit identity)."""
    h = hashlib.sha256()
    for name in ("time", "x", "y", "reflectance", "scl", "label", "field_id"):
        if name in ds.variables:
            a = np.ascontiguousarray(ds[name].values)
            h.update(name.encode())
            h.update(str(a.dtype).encode())
            h.update(str(a.shape).encode())
            h.update(a.tobytes())
    return h.hexdigest()
