"""The run manifest: what a batch was asked to do and how far each tile got (``manifest.json``).

It records the request *fingerprint* (region hash, dates, source, model SHA-256, tile size,
explain, halo), every tile with its status (``pending`` | ``done`` | ``failed``), attempts,
per-stage timings, error and outputs, one entry per run (started, finished, tiles computed /
skipped / failed) and the final outputs. It is saved atomically (temporary file, then rename)
after every tile, so a killed run leaves the last consistent state; a re-run with the same
fingerprint redoes only tiles that are not ``done``. A different fingerprint into the same
output folder is refused unless forced.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agrostress.atomic import atomic_path
from agrostress.batch.grid import Tile
from agrostress.jsonable import jsonable

FORMAT = "agrostress-batch-manifest/1"
MANIFEST_NAME = "manifest.json"
STATUSES = ("pending", "done", "failed")


class BatchError(Exception):
    """An expected batch failure whose message is meant for the user."""


class FingerprintMismatch(BatchError, ValueError):
    """The output folder holds a run of a different request."""


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def fingerprint_id(fingerprint: dict[str, Any]) -> str:
    """A short stable hash of a fingerprint dict."""
    blob = json.dumps(fingerprint, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


@dataclass
class TileRecord:
    """The state of one tile in the manifest."""

    id: str
    epsg: int
    col: int
    row: int
    bounds: list[float]
    width: int
    height: int
    area_km2: float
    status: str = "pending"
    attempts: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    worker: str | None = None
    peak_rss_mb: float | None = None
    finished: str | None = None
    pixels: dict[str, int] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_tile(cls, tile: Tile) -> TileRecord:
        d = tile.to_dict()
        return cls(**d)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TileRecord:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        rec = cls(**known)
        if rec.status not in STATUSES:
            rec.status = "pending"
        return rec

    def reset(self) -> None:
        """Back to pending (attempt counter and last error are kept for the record)."""
        self.status = "pending"
        self.outputs = {}
        self.pixels = {}
        self.finished = None


@dataclass
class Manifest:
    """The manifest of one output folder."""

    path: Path
    fingerprint: dict[str, Any]
    tiles: dict[str, TileRecord]
    created: str = field(default_factory=now_iso)
    updated: str = field(default_factory=now_iso)
    runs: list[dict[str, Any]] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ identity

    @property
    def fingerprint_id(self) -> str:
        return fingerprint_id(self.fingerprint)

    @property
    def out_dir(self) -> Path:
        return self.path.parent

    # ------------------------------------------------------------------ queries

    def counts(self) -> dict[str, int]:
        c = Counter(r.status for r in self.tiles.values())
        return {s: c.get(s, 0) for s in STATUSES}

    def by_status(self, status: str) -> list[TileRecord]:
        return [r for r in self.tiles.values() if r.status == status]

    @property
    def complete(self) -> bool:
        return all(r.status == "done" for r in self.tiles.values())

    # ------------------------------------------------------------------ persistence

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "fingerprint": self.fingerprint,
            "fingerprint_id": self.fingerprint_id,
            "created": self.created,
            "updated": self.updated,
            "counts": self.counts(),
            "summary": self.summary,
            "outputs": self.outputs,
            "runs": self.runs,
            "tiles": [asdict(r) for r in self.tiles.values()],
        }

    def save(self) -> Path:
        """Write atomically (readers see the old or the new manifest, never a mix)."""
        self.updated = now_iso()
        text = json.dumps(jsonable(self.to_dict()), indent=1)
        with atomic_path(self.path) as tmp:
            tmp.write_text(text)
        return self.path

    @classmethod
    def load(cls, path: str | Path) -> Manifest:
        path = Path(path)
        try:
            raw = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
            raise BatchError(f"cannot read the run manifest {path}: {e}") from e
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise BatchError(f"{path} is not an AgroStress batch manifest ({FORMAT})")
        tiles = {d["id"]: TileRecord.from_dict(d) for d in raw.get("tiles", [])}
        return cls(
            path=path,
            fingerprint=raw.get("fingerprint", {}),
            tiles=tiles,
            created=raw.get("created", now_iso()),
            updated=raw.get("updated", now_iso()),
            runs=list(raw.get("runs", [])),
            outputs=dict(raw.get("outputs", {})),
            summary=dict(raw.get("summary", {})),
        )

    @classmethod
    def open(
        cls,
        out_dir: str | Path,
        fingerprint: dict[str, Any],
        tiles: Iterable[Tile],
        *,
        force: bool = False,
    ) -> tuple[Manifest, bool]:
        """The manifest for this request in ``out_dir``: (manifest, resumed).

        An existing manifest with the same fingerprint is resumed; with another fingerprint
        :class:`FingerprintMismatch` is raised unless ``force`` (then it is replaced).
        """
        path = Path(out_dir) / MANIFEST_NAME
        tiles = list(tiles)
        if path.exists():
            try:
                old = cls.load(path)
            except BatchError:
                if not force:
                    raise
                old = None
            if old is not None and old.fingerprint_id == fingerprint_id(fingerprint):
                known = {t.id for t in tiles}
                if set(old.tiles) != known:  # pragma: no cover - same fingerprint, same grid
                    raise BatchError(f"{path}: tile list differs from the region's grid")
                return old, True
            if old is not None and not force:
                diff = sorted(
                    k
                    for k in set(old.fingerprint) | set(fingerprint)
                    if old.fingerprint.get(k) != fingerprint.get(k)
                )
                raise FingerprintMismatch(
                    f"{Path(out_dir)} holds a batch run of a different request (differs in: "
                    f"{', '.join(diff)}); use another --out or --force to start over there"
                )
        m = cls(
            path=path,
            fingerprint=dict(fingerprint),
            tiles={t.id: TileRecord.from_tile(t) for t in tiles},
        )
        return m, False


