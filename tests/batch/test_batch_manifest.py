"""The run manifest: fingerprints, atomic saves, resumable state."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from shapely.geometry import mapping

from agrostress.batch import BatchError, FingerprintMismatch, Manifest, make_grid
from agrostress.batch.manifest import MANIFEST_NAME, fingerprint_id
from tests.batch.batch_helpers import region_polygon_utm, utm_to_wgs84

FP = {"region_sha256": "abc", "start": "2024-03-01", "end": "2024-07-20", "tile_size": 16}


@pytest.fixture
def tiles() -> list:
    return make_grid(mapping(utm_to_wgs84(region_polygon_utm())), 16).tiles


def test_new_manifest_then_resume(tmp_path: Path, tiles: list) -> None:
    m, resumed = Manifest.open(tmp_path, FP, tiles)
    assert not resumed and m.counts() == {"pending": len(tiles), "done": 0, "failed": 0}
    first = tiles[0].id
    m.tiles[first].status = "done"
    m.tiles[first].timings = {"read": 1.5}
    m.save()
    assert not [p for p in tmp_path.iterdir() if p.name != MANIFEST_NAME]  # no temporary left
    raw = json.loads((tmp_path / MANIFEST_NAME).read_text())
    assert raw["fingerprint_id"] == fingerprint_id(FP) and raw["counts"]["done"] == 1
    m2, resumed = Manifest.open(tmp_path, dict(FP), tiles)
    assert resumed and m2.tiles[first].status == "done"
    assert m2.tiles[first].timings == {"read": 1.5}
    assert m2.tiles[first].bounds == list(tiles[0].bounds)


def test_different_request_is_refused_unless_forced(tmp_path: Path, tiles: list) -> None:
    Manifest.open(tmp_path, FP, tiles)[0].save()
    other = {**FP, "end": "2024-08-01"}
    with pytest.raises(FingerprintMismatch, match="end"):
        Manifest.open(tmp_path, other, tiles)
    m, resumed = Manifest.open(tmp_path, other, tiles, force=True)
    assert not resumed and m.fingerprint == other


def test_unreadable_manifest(tmp_path: Path, tiles: list) -> None:
    (tmp_path / MANIFEST_NAME).write_text("{ half a manifest")
    with pytest.raises(BatchError, match="cannot read"):
        Manifest.open(tmp_path, FP, tiles)
    m, resumed = Manifest.open(tmp_path, FP, tiles, force=True)
    assert not resumed and len(m.tiles) == len(tiles)


def test_fingerprint_id_is_order_independent() -> None:
    assert fingerprint_id({"a": 1, "b": 2}) == fingerprint_id({"b": 2, "a": 1})
    assert fingerprint_id({"a": 1}) != fingerprint_id({"a": 2})
