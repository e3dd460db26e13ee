"""run_batch on an in-process Dask cluster: mosaic = single pass, resume, failures, stats."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import rasterio

from agrostress.batch import FingerprintMismatch, Manifest, run_batch
from agrostress.batch.manifest import MANIFEST_NAME
from agrostress.ingest.base import UpstreamError, register_source
from agrostress.ingest.files_source import FilesSource
from agrostress.outputs.cog import map_codes
from tests.batch.batch_helpers import END, START, TILE


def _manifest(out: Path) -> Manifest:
    return Manifest.load(out / MANIFEST_NAME)


def _rerun(out: Path, scene: dict, model: Path, settings: Any, client: Any, **kw: Any) -> Manifest:
    kw.setdefault("tile_size", TILE)
    return run_batch(
        scene["region"], START, END, kw.pop("source", "files"), out, model,
        client=client, settings=settings, **kw,
    )  # fmt: skip


def test_mosaic_equals_single_pass(done_run: Path, single_pass: dict) -> None:
    m = _manifest(done_run)
    assert m.complete and len(m.tiles) == 4
    assert m.counts() == {"pending": 0, "done": len(m.tiles), "failed": 0}
    for name in ("stress_map.tif", "stress_map.vrt", "probabilities.tif", "probabilities.vrt"):
        with rasterio.open(done_run / name) as src:
            assert src.crs.to_epsg() == 32631
            assert src.transform == single_pass["transform"]
            data = src.read()
        if name.startswith("stress_map"):
            np.testing.assert_array_equal(data[0], single_pass["classes"])
        else:
            n = single_pass["probabilities"].shape[0]
            np.testing.assert_allclose(data[:n], single_pass["probabilities"], atol=1e-6)
            np.testing.assert_allclose(data[n], single_pass["confidence"], atol=1e-6)
    from rio_cogeo.cogeo import cog_validate

    assert cog_validate(str(done_run / "stress_map.tif"))[0]
    # the manifest records per-tile timings and the run
    rec = next(iter(m.tiles.values()))
    assert {"read", "write"} <= set(rec.timings) and rec.attempts == 1 and rec.worker
    run = m.runs[-1]
    assert run["computed"] == len(m.tiles) and run["skipped"] == 0 and run["status"] == "complete"
    assert run["km2_per_hour"] > 0
    hectares = m.summary["hectares"]
    classified = sum(v for k, v in hectares.items() if k != "nodata")
    assert classified == pytest.approx((single_pass["classes"] != 255).sum() * 0.01)


def test_field_statistics_table(done_run: Path, region_scene: dict, single_pass: dict) -> None:
    table = gpd.read_parquet(done_run / "fields.parquet")
    gpkg = gpd.read_file(done_run / "fields.gpkg", layer="fields")
    assert len(table) == len(gpkg) == len(gpd.read_file(region_scene["fields"]))
    assert {"field_id", "pixels", "valid_pixel_share", "call", "area_ha"} <= set(table.columns)
    seen = table[table["valid_pixels"] > 0]
    assert len(seen) > 0
    fracs = seen[[c for c in table.columns if c.startswith("frac_")]].sum(axis=1)
    np.testing.assert_allclose(fracs, 1.0)
    # field pixels counted once across tiles: never more than the region holds
    assert table["pixels"].sum() <= int((region_scene["cube"]["field_id"].values > 0).sum())


def test_rerun_skips_everything(
    run_copy: Path, region_scene, tiny_model_dir, files_settings, local_client
) -> None:
    before = (run_copy / "stress_map.tif").stat().st_mtime_ns
    m = _rerun(run_copy, region_scene, tiny_model_dir, files_settings, local_client)
    run = m.runs[-1]
    assert run["resumed"] and run["computed"] == 0 and run["skipped"] == len(m.tiles)
    assert (run_copy / "stress_map.tif").stat().st_mtime_ns == before  # mosaic reused


def test_resume_redoes_only_missing_failed_and_partial_tiles(
    run_copy: Path, region_scene, tiny_model_dir, files_settings, local_client, single_pass
) -> None:
    m = _manifest(run_copy)
    ids = sorted(m.tiles)
    tiles = run_copy / "tiles"
    # 1. a tile recorded done whose folder vanished
    shutil.rmtree(tiles / ids[0])
    # 2. a failed tile
    m.tiles[ids[1]].status = "failed"
    m.tiles[ids[1]].error = "UpstreamError: boom"
    shutil.rmtree(tiles / ids[1])
    # 3. a killed task: its temporary folder (complete or not, never trusted) and a folder
    #    without the metadata a complete task writes last
    partial = tiles / f".{ids[2]}.abc123.tmp"
    shutil.copytree(tiles / ids[2], partial / ids[2])
    (tiles / ids[2] / "tile.json").unlink()
    # 4. a tile finished after the last manifest save: complete folder, manifest says pending
    m.tiles[ids[3]].status = "pending"
    m.save()
    m2 = _rerun(run_copy, region_scene, tiny_model_dir, files_settings, local_client)
    run = m2.runs[-1]
    assert run["resumed"]
    assert (run["computed"], run["skipped"]) == (3, 1)
    assert m2.complete and m2.tiles[ids[3]].attempts == 1
    assert not partial.exists()
    with rasterio.open(run_copy / "stress_map.tif") as src:
        np.testing.assert_array_equal(src.read(1), single_pass["classes"])


def test_other_request_in_same_folder_is_refused(
    run_copy: Path, region_scene, tiny_model_dir, files_settings, local_client
) -> None:
    with pytest.raises(FingerprintMismatch, match="tile_size"):
        _rerun(run_copy, region_scene, tiny_model_dir, files_settings, local_client, tile_size=48)
    with pytest.raises(FingerprintMismatch, match="end"):
        run_batch(
            region_scene["region"], START, "2024-07-25", "files", run_copy, tiny_model_dir,
            tile_size=TILE, client=local_client, settings=files_settings,
        )  # fmt: skip
    assert _manifest(run_copy).complete  # untouched
    m = _rerun(
        run_copy, region_scene, tiny_model_dir, files_settings, local_client, tile_size=48, force=True
    )
    assert m.complete and len(m.tiles) == 1 and m.fingerprint["tile_size"] == 48
    assert sorted(p.name for p in (run_copy / "tiles").iterdir()) == sorted(m.tiles)


# --------------------------------------------------------------------------- failures


@register_source("batch-test-flaky")
class FlakySource(FilesSource):
    """``files``, failing for AOIs containing ``POISON`` always, others the first
    ``FAIL_FIRST`` times (attempts counted in ``COUNTS``)."""

    POISON: tuple[float, float] | None = None
    FAIL_FIRST = 0
    COUNTS: dict[tuple[float, ...], int] = {}  # noqa: RUF012

    def fetch(self, aoi: Any, start: Any, end: Any, *, progress: Any = None) -> Any:
        from shapely.geometry import Point, box

        key = tuple(aoi.bounds)
        n = self.COUNTS[key] = self.COUNTS.get(key, 0) + 1
        if self.POISON is not None and box(*aoi.bounds).contains(Point(self.POISON)):
            raise UpstreamError("simulated upstream failure (HTTP 503)")
        if n <= self.FAIL_FIRST:
            raise UpstreamError(f"transient failure {n}")
        return super().fetch(aoi, start, end, progress=progress)


@pytest.fixture
def flaky() -> Any:
    FlakySource.COUNTS = {}
    yield FlakySource
    FlakySource.POISON, FlakySource.FAIL_FIRST, FlakySource.COUNTS = None, 0, {}


def test_failing_tile_is_reported_and_others_complete(
    tmp_path: Path, region_scene, tiny_model_dir, files_settings, local_client, flaky, single_pass
) -> None:
    flaky.POISON = (500130.0, 5319850.0)  # inside tile x0000_y0000 only (halo included)
    flaky.FAIL_FIRST = 1  # every other tile fails once, then works
    events = []
    m = _rerun(
        tmp_path / "out", region_scene, tiny_model_dir, files_settings, local_client,
        source="batch-test-flaky", retries=1, progress=events.append,
    )  # fmt: skip
    failed = m.by_status("failed")
    assert [r.id for r in failed] == ["32631_x0000_y0000"]
    assert failed[0].attempts == 2 and "HTTP 503" in failed[0].error
    assert m.counts() == {"pending": 0, "done": 3, "failed": 1}
    assert all(r.attempts == 2 for r in m.by_status("done"))  # retried once, then fine
    run = m.runs[-1]
    assert run["status"] == "partial" and run["retried"] == 4 and run["failed"] == 1
    assert m.summary["failed_tiles"][0]["id"] == "32631_x0000_y0000"
    # progress: start, one event per finished tile (done/failed counts, rate), mosaic, end
    stages = [e.stage for e in events]
    assert stages[0] == "start" and stages[-1] == "end" and "mosaic" in stages
    tiles = [e for e in events if e.stage == "tile"]
    assert len(tiles) == 4 and tiles[-1].done == 3 and tiles[-1].failed == 1
    assert tiles[-1].total == 4 and tiles[-1].km2_per_hour > 0
    # the mosaic is written with the failed tile as nodata, the rest as in a single pass
    with rasterio.open(tmp_path / "out" / "stress_map.tif") as src:
        got = src.read(1)
    hole = np.zeros_like(got, bool)
    hole[:TILE, :TILE] = True
    assert np.all(got[hole] == 255)
    np.testing.assert_array_equal(got[~hole], single_pass["classes"][~hole])
    # re-running once upstream is fixed redoes only the failed tile
    flaky.POISON, flaky.FAIL_FIRST = None, 0
    m2 = _rerun(
        tmp_path / "out", region_scene, tiny_model_dir, files_settings, local_client,
        source="batch-test-flaky",
    )  # fmt: skip
    assert m2.complete and (m2.runs[-1]["computed"], m2.runs[-1]["skipped"]) == (1, 3)
    with rasterio.open(tmp_path / "out" / "stress_map.tif") as src:
        np.testing.assert_array_equal(src.read(1), single_pass["classes"])


@pytest.mark.slow
def test_explain_mosaics_evidence(
    tmp_path: Path, region_scene, tiny_model_dir, files_settings, local_client
) -> None:
    m = _rerun(
        tmp_path / "out", region_scene, tiny_model_dir, files_settings, local_client,
        tile_size=48, explain=True,
    )  # fmt: skip
    assert m.complete
    with rasterio.open(tmp_path / "out" / "evidence.tif") as src:
        assert src.count >= 1 and np.isfinite(src.read(1)).any()
    manifest = json.loads((tmp_path / "out" / MANIFEST_NAME).read_text())
    assert manifest["fingerprint"]["explain"] is True


def test_mosaic_cog_has_overviews_and_classes(done_run: Path, tmp_path: Path) -> None:
    from rio_cogeo.cogeo import cog_validate

    from agrostress.batch.mosaic import vrt_to_cog

    cog = vrt_to_cog(
        done_run / "stress_map.vrt", tmp_path / "m.tif", resampling="mode", blocksize=16
    )
    assert cog_validate(str(cog))[0]
    with rasterio.open(cog) as src, rasterio.open(done_run / "stress_map.vrt") as vrt:
        assert src.overviews(1)[0] == 2
        np.testing.assert_array_equal(src.read(1), vrt.read(1))
        assert src.colormap(1)[2] == vrt.colormap(1)[2]
        assert src.tags().get("CLASS_NAMES") == ",".join(map_codes().values())
    assert (done_run / "stress_map.qml").exists()  # QGIS style next to the class mosaic


@pytest.mark.slow
def test_region_across_two_utm_zones(tmp_path: Path, tiny_model_dir, local_client) -> None:
    region = tmp_path / "region.geojson"
    ring = [[5.998, 49.0], [6.002, 49.0], [6.002, 49.002], [5.998, 49.002], [5.998, 49.0]]
    region.write_text(json.dumps({"type": "Polygon", "coordinates": [ring]}))
    m = run_batch(
        region, START, END, "simulated", tmp_path / "out", tiny_model_dir,
        tile_size=16, client=local_client,
    )  # fmt: skip
    assert m.complete and m.summary["zones"] == [32631, 32632]
    for epsg in (32631, 32632):
        with rasterio.open(tmp_path / "out" / f"stress_map_{epsg}.tif") as src:
            assert src.crs.to_epsg() == epsg
            assert (src.read(1) != 255).any()
        assert (tmp_path / "out" / f"probabilities_{epsg}.vrt").exists()


def test_foreign_output_folder_is_refused(
    tmp_path: Path, region_scene, tiny_model_dir, files_settings, local_client
) -> None:
    from agrostress.batch import BatchError

    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(BatchError, match="not empty"):
        _rerun(tmp_path, region_scene, tiny_model_dir, files_settings, local_client)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
