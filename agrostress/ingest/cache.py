"""The ingestion cache: cubes of grid rectangles, shared by nearby requests, size-bounded.

**What is stored.** Not the requested AOI but the *unmasked* cube of a grid rectangle around it
(:func:`cache_rectangle`): for sources whose pixels depend only on their location
(``Source.location_determined``: Sentinel Hub, STAC, files) the AOI's aligned bounds snapped
outward to tiles of ``tile_px`` pixels (``AGROSTRESS_CACHE_TILE_PX``, 32 = 320 m at 10 m) in
the same UTM zone; for the others (the simulator) the AOI's own aligned bounds.
:func:`agrostress.ingest.fetch.fetch_cube` cuts each request out of it
(:func:`agrostress.ingest.base.cut_cube`), so requests whose polygons differ a little share
one entry and get exactly the cube an uncached fetch gives.

**Key.** The SHA-256 of a canonical JSON of: source name, the source's identity (endpoint
URL, collection, data-relevant settings, input file fingerprints), the rectangle (UTM EPSG,
bounds, resolution; not the polygon), the period, the band list and
:data:`~agrostress.ingest.base.INGEST_FORMAT_VERSION`.

**Layout.** ``<root>/<key>.zarr`` (the cube) and ``<root>/<key>.json`` (the request
description, a content digest and ``size_bytes``, the entry's size on disk; the sidecar's
mtime is the entry's last use), ``<root>/.lock`` and, while something is being written,
temporary dot-names ending in ``.tmp``.

**Bounded.** ``IngestCache(root, max_bytes)``: :meth:`IngestCache.put` first makes room for
the cube's raw size (so the folder stays within the limit while the write is in progress),
writes the Zarr to a temporary folder, then, under an exclusive lock (a threading lock and
an ``fcntl.flock`` on ``.lock``, so threads and processes sharing the folder take turns),
evicts least-recently-used entries until the new one fits, moves it in and writes its
sidecar. An entry larger than the whole limit is not stored. Reads hold a shared lock and
refresh the entry's recency; an entry whose content digest does not match is discarded.
Temporary leftovers of crashed writers older than an hour, cubes without a usable sidecar and
entries of an older cache format (never hit again) are removed while making room.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import xarray as xr

from agrostress.atomic import atomic_path
from agrostress.cube import BANDS, read_zarr, write_zarr
from agrostress.ingest.aoi import AOI, rectangle_aoi, snap_bounds
from agrostress.ingest.base import INGEST_FORMAT_VERSION, Source

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: threads are still serialised
    fcntl = None  # type: ignore[assignment]

LOGGER = logging.getLogger("agrostress.ingest")

LOCK_NAME = ".lock"
STALE_TMP_S = 3600.0
"""Temporary names older than this (seconds) are leftovers of a crashed writer."""
BLOCK = 4096
"""File system block: a sidecar is counted as its length rounded up to whole blocks."""


def cache_rectangle(aoi: AOI, source: Source, tile_px: int) -> AOI:
    """The grid rectangle cached for a request over ``aoi`` (as a rectangle-polygon AOI)."""
    bounds = aoi.bounds
    if getattr(source, "location_determined", False):
        bounds = snap_bounds(bounds, tile_px * aoi.resolution)
    return rectangle_aoi(aoi.epsg, bounds, aoi.resolution)


def request_description(
    source: str, identity: dict[str, Any], area: AOI, start: dt.date, end: dt.date
) -> dict[str, Any]:
    """Everything that determines the cube of ``area``'s grid (its polygon plays no part)."""
    return {
        "format": INGEST_FORMAT_VERSION,
        "source": source,
        "identity": identity,
        "grid": {
            "epsg": area.epsg,
            "bounds": [float(v) for v in area.bounds],
            "resolution": float(area.resolution),
        },
        "start": start.isoformat(),
        "end": end.isoformat(),
        "bands": list(BANDS),
    }


def cache_key(description: dict[str, Any]) -> str:
    """SHA-256 (hex, 32 chars) of the canonical JSON of ``description``."""
    blob = json.dumps(description, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


class CacheUsage(NamedTuple):
    """What the cache's stored entries take."""

    bytes: int
    entries: int


class _Entry(NamedTuple):
    key: str
    size: int
    last_used: int  # ns since the epoch
    current: bool  # a readable sidecar, not of an older cache format (those never match)


_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


def _thread_lock(root: Path) -> threading.Lock:
    """One lock per cache folder in this process, shared by all its IngestCache objects."""
    with _THREAD_LOCKS_GUARD:
        return _THREAD_LOCKS.setdefault(str(root.resolve()), threading.Lock())


class IngestCache:
    """A folder of cached cubes keyed by :func:`cache_key`, at most ``max_bytes`` on disk.

    ``max_bytes``: None = no limit, 0 = nothing is stored.
    """

    def __init__(self, root: str | Path, max_bytes: int | None = None):
        self.root = Path(root)
        self.max_bytes = max_bytes

    def path(self, key: str) -> Path:
        return self.root / f"{key}.zarr"

    def sidecar(self, key: str) -> Path:
        return self.root / f"{key}.json"

    # ------------------------------------------------------------------ reading

    def get(self, key: str) -> xr.Dataset | None:
        """The cached cube (loaded in memory), or None; a hit makes the entry most recent.

        An entry whose content digest does not match its sidecar (a crash between writing the
        Zarr and the sidecar, a tampered or damaged store: Zarr reads missing chunks as fill
        values, silently) is discarded.
        """
        if not self.path(key).exists():
            return None
        problem: Exception | None = None
        with self._locked(exclusive=False):
            if not self.path(key).exists():  # evicted meanwhile
                return None
            text = _read_text(self.sidecar(key))
            try:
                ds = self._load(key, text)
            except Exception as e:
                problem = e
            else:
                _touch(self.sidecar(key))
        if problem is None:
            LOGGER.info("cache hit %s", self.path(key))
            return ds
        LOGGER.warning("cache entry %s unusable (%s); discarding it", self.path(key), problem)
        with self._locked(exclusive=True):
            if _read_text(self.sidecar(key)) == text:  # not replaced meanwhile
                self._remove(key)
        return None

    def _load(self, key: str, sidecar_text: str | None) -> xr.Dataset:
        if sidecar_text is None:
            raise ValueError("no sidecar")
        meta = json.loads(sidecar_text)
        ds = read_zarr(self.path(key)).load()
        if meta.get("digest") != content_digest(ds):
            raise ValueError("content digest mismatch")
        return ds

    def usage(self) -> CacheUsage:
        """Bytes on disk and number of the stored entries (temporary writes not included)."""
        if not self.root.is_dir():
            return CacheUsage(0, 0)
        with self._locked(exclusive=False):
            entries = self._scan()
        return CacheUsage(sum(e.size for e in entries), len(entries))

    # ------------------------------------------------------------------ writing

    def put(self, key: str, ds: xr.Dataset, description: dict[str, Any]) -> Path | None:
        """Store ``ds`` under ``key``, evicting least-recently-used entries to stay within
        ``max_bytes``; the entry's path, or None when it is not stored (larger than the limit).
        """
        if self.max_bytes == 0:
            return None
        self.root.mkdir(parents=True, exist_ok=True)
        if self.max_bytes is not None:  # room for the write itself (at most its raw size)
            with self._locked(exclusive=True):
                self._make_room(min(int(ds.nbytes) + BLOCK, self.max_bytes), replacing=key)
        staging = Path(tempfile.mkdtemp(prefix=f".{key}.", suffix=".tmp", dir=self.root))
        try:
            staged = write_zarr(ds, staging / "cube.zarr")
            meta = {**description, "key": key, "digest": content_digest(ds)}
            text, size = _sidecar(meta, disk_usage(staged))
            if self.max_bytes is not None and size > self.max_bytes:
                LOGGER.warning(
                    "cube of %d bytes exceeds the whole cache limit of %d bytes: not cached",
                    size,
                    self.max_bytes,
                )
                return None
            with self._locked(exclusive=True):
                self._make_room(size, replacing=key)
                os.replace(staged, self.path(key))
                with atomic_path(self.sidecar(key)) as tmp:
                    tmp.write_text(text)
                _touch(self.sidecar(key))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return self.path(key)

    def _make_room(self, size: int, *, replacing: str) -> None:
        """Clean up, then evict least-recently-used entries until ``size`` more bytes fit."""
        self._clean()
        self._remove(replacing)
        entries = []
        for e in self._scan():
            if e.current:
                entries.append(e)
            else:
                LOGGER.info("cache: removing %s (no usable sidecar, or an older format)", e.key)
                self._remove(e.key)
        if self.max_bytes is None:
            return
        entries.sort(key=lambda e: (e.last_used, e.key))
        total = sum(e.size for e in entries)
        for e in entries:
            if total + size <= self.max_bytes:
                break
            self._remove(e.key)
            total -= e.size
            LOGGER.info("cache: evicted %s (%d bytes, least recently used)", e.key, e.size)

    def _clean(self) -> None:
        """Remove stale temporary names and sidecars without a cube (no writer is between
        the two: writers hold the exclusive lock)."""
        now = time.time()
        for p in list(self.root.iterdir()):
            if p.name.startswith("."):
                if p.name.endswith(".tmp") and now - _newest_mtime(p) > STALE_TMP_S:
                    LOGGER.info("cache: removing stale temporary %s", p)
                    _delete(p)
            elif p.suffix == ".json" and not self.path(p.stem).exists():
                p.unlink(missing_ok=True)

    def _remove(self, key: str) -> None:
        """Delete an entry: the sidecar first, then the cube (renamed to a temporary first,
        so an interrupted delete leaves only a stale temporary)."""
        self.sidecar(key).unlink(missing_ok=True)
        p = self.path(key)
        if p.exists():
            trash = self.root / f".{key}.zarr.{uuid.uuid4().hex[:8]}.evicted.tmp"
            os.replace(p, trash)
            shutil.rmtree(trash, ignore_errors=True)

    def _scan(self) -> list[_Entry]:
        """The stored entries (cubes not under a temporary name) with size and last use."""
        out = []
        for p in self.root.glob("*.zarr"):
            if p.name.startswith("."):
                continue
            side = self.sidecar(p.stem)
            meta = _read_meta(side)
            size = meta.get("size_bytes") if meta else None
            if not isinstance(size, int):  # written by an older version: measure it
                size = disk_usage(p) + (disk_usage(side) if meta is not None else 0)
            try:
                last_used = (side if meta is not None else p).stat().st_mtime_ns
            except FileNotFoundError:
                continue
            out.append(_Entry(p.stem, size, last_used, _is_current(meta)))
        return out

    @contextlib.contextmanager
    def _locked(self, *, exclusive: bool) -> Iterator[None]:
        """Exclusive (the thread lock, then ``LOCK_EX``) or shared (``LOCK_SH``) access.

        Every call opens the lock file anew, so its flock also excludes the other threads of
        this process (flock locks belong to the open file, not to the process).
        """
        self.root.mkdir(parents=True, exist_ok=True)
        guard: contextlib.AbstractContextManager[Any] = (
            _thread_lock(self.root) if exclusive else contextlib.nullcontext()
        )
        with guard, open(self.root / LOCK_NAME, "a+b") as fh:
            if fcntl is not None:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield  # closing the file releases the flock


# --------------------------------------------------------------------------- helpers


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


def disk_usage(path: Path) -> int:
    """Bytes allocated on disk to ``path`` and everything under it (like ``du``)."""
    total = _allocated(path)
    for dirpath, dirnames, filenames in os.walk(path):
        for name in (*dirnames, *filenames):
            total += _allocated(Path(dirpath) / name)
    return total


def _allocated(p: Path) -> int:
    try:
        st = p.lstat()
    except FileNotFoundError:
        return 0
    blocks = getattr(st, "st_blocks", None)
    return int(blocks) * 512 if blocks is not None else int(st.st_size)


def _newest_mtime(path: Path) -> float:
    """The newest mtime of ``path`` and, for a folder, of everything under it."""
    try:
        newest = path.lstat().st_mtime
    except FileNotFoundError:
        return time.time()
    if path.is_dir():
        for dirpath, dirnames, filenames in os.walk(path):
            for name in (*dirnames, *filenames):
                with contextlib.suppress(FileNotFoundError):
                    newest = max(newest, (Path(dirpath) / name).lstat().st_mtime)
    return newest


def _delete(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        p.unlink(missing_ok=True)


def _read_text(p: Path) -> str | None:
    try:
        return p.read_text()
    except FileNotFoundError:
        return None


def _read_meta(p: Path) -> dict[str, Any] | None:
    """A sidecar's content; None when missing or unreadable."""
    text = _read_text(p)
    try:
        meta = json.loads(text) if text is not None else None
    except json.JSONDecodeError:
        return None
    return meta if isinstance(meta, dict) else None


def _is_current(meta: dict[str, Any] | None) -> bool:
    """A sidecar was read and is not of an older cache format (whose keys never match)."""
    if meta is None:
        return False
    fmt = meta.get("format")
    return not (isinstance(fmt, int) and fmt < INGEST_FORMAT_VERSION)


def _sidecar(meta: dict[str, Any], zarr_bytes: int) -> tuple[str, int]:
    """The sidecar text for ``meta`` and the entry's size (Zarr + sidecar), recorded in it."""
    bare = json.dumps(meta, indent=2, sort_keys=True, default=str)
    size = zarr_bytes + -(-(len(bare.encode()) + 64) // BLOCK) * BLOCK  # 64: the size field
    text = json.dumps({**meta, "size_bytes": size}, indent=2, sort_keys=True, default=str)
    return text, size


def _touch(p: Path) -> None:
    """Mark ``p`` used now (ns precision, so the least-recently-used order is exact)."""
    now = time.time_ns()
    with contextlib.suppress(OSError):
        os.utime(p, ns=(now, now))
