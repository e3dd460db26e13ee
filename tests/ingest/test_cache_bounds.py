"""The bounded ingestion cache: default folder, LRU eviction under a size limit, entries of grid
rectangles shared by nearby requests and cut out exactly as an uncached fetch gives them."""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely
import typer
import xarray as xr
from pyproj import Transformer
from shapely.geometry import Polygon
from typer.testing import CliRunner

from agrostress.cube import write_geotiff_folder
from agrostress.ingest import CoverageError, IngestCache, load_aoi
from agrostress.ingest.cache import disk_usage
from agrostress.ingest.fetch import fetch_cube
from agrostress.ingest.files_source import FilesSource
from agrostress.settings import Settings, get_settings
from tests.ingest.ingest_helpers import make_settings
from tests.ingest.ingest_synth import EPSG, aoi_geojson, make_cube

START, END = "2024-03-01", "2024-04-30"
DESCRIPTION = {"test": True}


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def entry_size(cube: xr.Dataset, tmp_path_factory: pytest.TempPathFactory) -> int:
    """Bytes one entry of ``cube`` takes (every entry below stores the same cube)."""
    cache = IngestCache(tmp_path_factory.mktemp("size"))
    cache.put("probe", cube, DESCRIPTION)
    return cache.usage().bytes


@pytest.fixture
def files_settings(cube: xr.Dataset, tmp_path: Path) -> Settings:
    write_geotiff_folder(_labelled(cube), tmp_path / "in")
    return make_settings(files_dir=tmp_path / "in", data_dir=tmp_path / "data")


@pytest.fixture
def fetches(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, ...]]:
    """The bounds of every grid the files source fetches."""
    calls: list[tuple[float, ...]] = []
    real = FilesSource.fetch

    def counting(self: FilesSource, aoi: Any, *args: Any, **kwargs: Any) -> xr.Dataset:
        calls.append(tuple(aoi.bounds))
        return real(self, aoi, *args, **kwargs)

    monkeypatch.setattr(FilesSource, "fetch", counting)
    return calls


def _labelled(cube: xr.Dataset) -> xr.Dataset:
    out = cube.copy()
    yy, xx = np.mgrid[0 : cube.sizes["y"], 0 : cube.sizes["x"]]
    out["label"] = (("y", "x"), ((yy // 10 + xx // 12) % 4 - 1).astype(np.int8))
    out["field_id"] = (("y", "x"), (yy // 10 * 5 + xx // 12).astype(np.int32))
    return out


def _utm_polygon(points: list[tuple[float, float]]) -> dict[str, Any]:
    """GeoJSON (EPSG:4326) of a polygon given in the synthetic cube's UTM zone."""
    t = Transformer.from_crs(EPSG, 4326, always_xy=True)
    geom = shapely.transform(Polygon(points), t.transform, interleaved=False)
    return json.loads(shapely.to_geojson(geom))


def _moved_vertex(aoi_dict: dict[str, Any], dx_m: float) -> dict[str, Any]:
    """``aoi_dict`` with its first vertex moved ``dx_m`` metres east."""
    to_utm = Transformer.from_crs(4326, EPSG, always_xy=True)
    ring = aoi_dict["features"][0]["geometry"]["coordinates"][0]
    pts = [to_utm.transform(*p) for p in ring]
    pts[0] = pts[-1] = (pts[0][0] + dx_m, pts[0][1])
    return _utm_polygon(pts)


def _keys(root: Path) -> set[str]:
    return {p.stem for p in root.glob("*.zarr") if not p.name.startswith(".")}


def _fetch(aoi: Any, settings: Settings, cache: Path | None = None, **kw: Any) -> xr.Dataset:
    return fetch_cube("files", aoi, START, END, cache_dir=cache, settings=settings, **kw)


# --------------------------------------------------------------------------- settings


def test_default_cache_dir_is_under_data_dir(tmp_path: Path, monkeypatch) -> None:
    s = make_settings(data_dir=tmp_path / "d")
    assert s.cache_dir is None and s.ingest_cache_dir() == tmp_path / "d" / "cache"
    assert s.cache_max_gb == 5.0 and s.ingest_cache_max_bytes() == 5_000_000_000
    assert s.cache_tile_px == 32
    assert make_settings(cache_dir=tmp_path / "c").ingest_cache_dir() == tmp_path / "c"
    monkeypatch.setenv("AGROSTRESS_CACHE_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("AGROSTRESS_CACHE_MAX_GB", "0.5")
    monkeypatch.setenv("AGROSTRESS_CACHE_TILE_PX", "16")
    s = Settings(_env_file=None)
    assert s.ingest_cache_dir() == tmp_path / "env" and s.ingest_cache_max_bytes() == 500_000_000
    assert s.cache_tile_px == 16


def test_cli_caches_under_data_dir_by_default(cube, aoi_dict, tmp_path, monkeypatch) -> None:
    from agrostress.commands import ingest as ingest_cmd

    monkeypatch.delenv("AGROSTRESS_CACHE_DIR", raising=False)
    monkeypatch.setenv("AGROSTRESS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)  # no stray .env file
    write_geotiff_folder(cube, tmp_path / "in")
    (tmp_path / "aoi.geojson").write_text(json.dumps(aoi_dict))
    app = typer.Typer()
    ingest_cmd.register(app)

    @app.command("noop")  # two commands: "ingest" stays a sub-command
    def _noop() -> None:
        pass

    get_settings.cache_clear()
    try:
        r = CliRunner().invoke(app, ["ingest", "--source", "files", "--input", "in", "--aoi",
                                     "aoi.geojson", "--start", START, "--end", END,
                                     "--out", "out.zarr"])  # fmt: skip
    finally:
        get_settings.cache_clear()
    assert r.exit_code == 0, r.output
    assert IngestCache(tmp_path / "data" / "cache").usage().entries == 1


# --------------------------------------------------------------------------- bounds


def test_eviction_is_least_recently_used(cube, entry_size, tmp_path) -> None:
    cache = IngestCache(tmp_path / "c", max_bytes=int(3.5 * entry_size))
    for key in ("a", "b", "c"):
        cache.put(key, cube, DESCRIPTION)
    assert cache.get("a") is not None  # a hit makes "a" the most recent
    cache.put("d", cube, DESCRIPTION)
    assert _keys(cache.root) == {"a", "c", "d"}  # "b" was the least recently used
    cache.put("e", cube, DESCRIPTION)
    assert _keys(cache.root) == {"a", "d", "e"}
    assert cache.usage() == (3 * entry_size, 3)


def test_total_never_exceeds_the_limit(cube, entry_size, tmp_path) -> None:
    limit = int(2.5 * entry_size)
    cache = IngestCache(tmp_path / "c", max_bytes=limit)
    for i in range(5):
        assert cache.put(f"k{i}", cube, DESCRIPTION) == cache.path(f"k{i}")
        used = cache.usage()
        assert used.bytes <= limit and used.entries == min(i + 1, 2)
        on_disk = sum(disk_usage(p) for p in cache.root.iterdir() if p.name != ".lock")
        assert on_disk <= limit  # what the sidecars record covers what is really there
    assert sorted(p.name for p in cache.root.iterdir() if p.name.startswith(".")) == [".lock"]


def test_concurrent_puts_stay_within_the_limit(cube, entry_size, tmp_path) -> None:
    limit = int(2.5 * entry_size)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            cache = IngestCache(tmp_path / "c", max_bytes=limit)  # one object per "request"
            for i in range(3):
                cache.put(f"t{n}-{i}", cube, DESCRIPTION)
                cache.get(f"t{(n + 1) % 3}-{i}")
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    cache = IngestCache(tmp_path / "c", max_bytes=limit)
    assert cache.usage() == (2 * entry_size, 2)
    assert all(cache.get(k) is not None for k in _keys(cache.root))


def _put_three(root: str, limit: int, name: str) -> None:
    """Child process of the test below."""
    cube = make_cube()
    for i in range(3):
        IngestCache(root, max_bytes=limit).put(f"{name}{i}", cube, DESCRIPTION)


@pytest.mark.slow
def test_processes_take_turns_through_the_lock_file(entry_size, tmp_path) -> None:
    import fcntl
    import multiprocessing

    root = tmp_path / "c"
    root.mkdir()
    limit = int(2.5 * entry_size)
    ctx = multiprocessing.get_context("spawn")
    with open(root / ".lock", "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # as another process in the middle of a put
        procs = [ctx.Process(target=_put_three, args=(str(root), limit, n)) for n in "pq"]
        for proc in procs:
            proc.start()
        deadline = time.time() + 60
        while not (list(root.glob(".*.tmp/cube.zarr")) or _keys(root)) and time.time() < deadline:
            time.sleep(0.1)  # until a child has written its cube and waits to commit it
        time.sleep(0.5)
        assert _keys(root) == set()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    assert IngestCache(root, max_bytes=limit).usage() == (2 * entry_size, 2)
    assert sorted(p.name for p in root.iterdir() if p.name.startswith(".")) == [".lock"]


def test_entry_larger_than_the_limit_is_not_stored(cube, entry_size, tmp_path, caplog) -> None:
    cache = IngestCache(tmp_path / "c", max_bytes=entry_size // 2)
    with caplog.at_level(logging.WARNING, logger="agrostress.ingest"):
        assert cache.put("big", cube, DESCRIPTION) is None
    assert "not cached" in caplog.text
    assert cache.usage() == (0, 0) and [p.name for p in cache.root.iterdir()] == [".lock"]
    assert IngestCache(tmp_path / "z", max_bytes=0).put("k", cube, DESCRIPTION) is None


def test_zero_limit_means_no_cache(files_settings, aoi_dict, tmp_path, fetches) -> None:
    settings = files_settings.model_copy(update={"cache_max_gb": 0.0})
    for _ in range(2):
        _fetch(aoi_dict, settings, tmp_path / "c")
    assert len(fetches) == 2 and not (tmp_path / "c").exists()


def test_stale_temporaries_and_old_entries_are_removed(cube, entry_size, tmp_path) -> None:
    root = tmp_path / "c"
    old, fresh = root / ".x.zarr.abc.tmp", root / ".y.zarr.def.tmp"
    for d in (old, fresh):
        (d / "x.zarr").mkdir(parents=True)
        (d / "x.zarr" / "0.0").write_bytes(b"\0" * 10_000)
    two_hours_ago = time.time() - 7200
    for p in (old / "x.zarr" / "0.0", old / "x.zarr", old):
        os.utime(p, (two_hours_ago, two_hours_ago))
    (root / "legacy.zarr").mkdir()  # an entry of cache format 1: its key never matches
    (root / "legacy.json").write_text(json.dumps({"format": 1, "digest": "x"}))
    (root / "orphan.json").write_text("{}")  # a sidecar without its cube
    cache = IngestCache(root, max_bytes=10 * entry_size)
    assert cache.usage().entries == 1  # the legacy entry until the next put; temporaries: never
    cache.put("new", cube, DESCRIPTION)
    assert not old.exists() and fresh.exists()
    assert sorted(p.name for p in root.iterdir()) == [
        ".lock", ".y.zarr.def.tmp", "new.json", "new.zarr"
    ]  # fmt: skip
    assert cache.usage() == (entry_size, 1)


# --------------------------------------------------------------------------- sharing, cutting


def test_moved_vertex_shares_one_entry(files_settings, aoi_dict, tmp_path, fetches) -> None:
    moved = _moved_vertex(aoi_dict, -15.0)
    a, b = load_aoi(aoi_dict), load_aoi(moved)
    assert a.bounds != b.bounds  # different polygons and grids, one 320 m rectangle
    cache = tmp_path / "c"
    got_a = _fetch(aoi_dict, files_settings, cache)
    got_b = _fetch(moved, files_settings, cache)
    assert len(fetches) == 1 and IngestCache(cache).usage().entries == 1  # the second hit
    rect = fetches[0]
    assert all(v % 320 == 0 for v in rect) and rect[0] <= b.bounds[0] and rect[2] >= b.bounds[2]
    assert got_a.identical(_fetch(aoi_dict, files_settings))
    assert got_b.identical(_fetch(moved, files_settings))
    assert fetches[1:] == [a.bounds, b.bounds]  # uncached: the AOIs' own grids


def test_cut_equals_uncached_fetch_for_files(files_settings, aoi_dict, tmp_path) -> None:
    cache = tmp_path / "c"
    cold = _fetch(aoi_dict, files_settings, cache)
    hit = _fetch(aoi_dict, files_settings, cache)
    direct = _fetch(aoi_dict, files_settings)
    assert "label" in direct and "field_id" in direct and "platform" in direct.coords
    assert cold.identical(direct) and hit.identical(direct)
    assert cold.attrs == direct.attrs == hit.attrs


def test_cut_drops_dates_without_data_in_the_polygon(files_settings, tmp_path) -> None:
    # inside the left 24 px, which date 2 lacks; the cached rectangle holds date 2's right part
    x0, y1 = 600000.0, 5000040.0
    aoi = _utm_polygon([(x0 + 33, y1 - 52), (x0 + 201, y1 - 61), (x0 + 187, y1 - 333),
                        (x0 + 41, y1 - 301)])  # fmt: skip
    direct = _fetch(aoi, files_settings)
    assert direct.sizes["time"] == 4
    for _ in range(2):  # fetched, then a hit
        assert _fetch(aoi, files_settings, tmp_path / "c").identical(direct)


def test_coverage_error_as_without_cache(files_settings, aoi_dict, tmp_path) -> None:
    cache = tmp_path / "c"
    _fetch(aoi_dict, files_settings, cache)
    x0, y1 = 600500.0, 5000040.0  # east of the data; its 320 m rectangle holds data
    outside = _utm_polygon([(x0, y1 - 100), (x0 + 100, y1 - 100), (x0 + 100, y1 - 200)])
    with pytest.raises(CoverageError, match="no valid pixel inside the AOI"):
        _fetch(outside, files_settings)
    for _ in range(2):  # fetched (the rectangle is kept for other requests), then a hit
        with pytest.raises(CoverageError, match="no valid pixel inside the AOI"):
            _fetch(outside, files_settings, cache)
    assert IngestCache(cache).usage().entries == 2


def test_cut_equals_uncached_fetch_for_simulated(tmp_path) -> None:
    pytest.importorskip("agrostress.simulate", reason="simulator not available")
    settings = make_settings(data_dir=tmp_path / "data")
    aoi = aoi_geojson(make_cube(), margin_px=(2, 2, 2, 2))
    args = ("simulated", aoi, "2024-04-01", "2024-05-31")
    direct = fetch_cube(*args, settings=settings)
    for _ in range(2):
        assert fetch_cube(*args, cache_dir=tmp_path / "c", settings=settings).identical(direct)
    # the simulated scene depends on the grid: the rectangle is the AOI's own
    (key,) = _keys(tmp_path / "c")
    grid = json.loads((tmp_path / "c" / f"{key}.json").read_text())["grid"]
    assert grid["bounds"] == list(load_aoi(aoi).bounds)


def test_cut_equals_uncached_fetch_for_stac(cube, aoi_dict, tmp_path) -> None:
    from tests.ingest.ingest_stac import write_catalog
    from tests.ingest.test_ingest_stac import SPECS

    write_catalog(cube, tmp_path / "stac", SPECS)
    settings = make_settings(stac_url=str(tmp_path / "stac" / "catalog.json"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the offset warnings of the wrong flags in SPECS
        direct = fetch_cube("stac", aoi_dict, START, END, settings=settings)
        for _ in range(2):
            got = fetch_cube("stac", aoi_dict, START, END, cache_dir=tmp_path / "c",
                             settings=settings)  # fmt: skip
            assert got.identical(direct)


def test_corrupted_entry_is_discarded(files_settings, aoi_dict, tmp_path, fetches) -> None:
    cache = tmp_path / "c"
    first = _fetch(aoi_dict, files_settings, cache)
    (key,) = _keys(cache)
    side = cache / f"{key}.json"
    meta = json.loads(side.read_text())
    side.write_text(json.dumps({**meta, "digest": "0" * 64}))
    assert IngestCache(cache).get(key) is None and _keys(cache) == set()
    assert _fetch(aoi_dict, files_settings, cache).identical(first) and len(fetches) == 2
    shutil.rmtree(cache / f"{key}.zarr" / "scl")
    assert _fetch(aoi_dict, files_settings, cache).identical(first) and len(fetches) == 3
    assert IngestCache(cache).usage().entries == 1
