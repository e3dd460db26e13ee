"""The ingest pipeline: atomic output, content-addressed cache, bit-for-bit reproducibility."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest

from agrostress.cube import read_zarr, write_geotiff_folder
from agrostress.ingest import AOIError, cache_key, get_source, load_aoi, request_description
from agrostress.ingest.fetch import fetch_cube, ingest
from tests.ingest.ingest_helpers import make_settings, sh_settings

START, END = "2024-03-01", "2024-04-30"


def _bytes(ds) -> tuple[bytes, bytes, bytes]:
    return (
        ds["reflectance"].values.tobytes(),
        ds["scl"].values.tobytes(),
        ds["time"].values.tobytes(),
    )


@pytest.mark.network
def test_cold_cached_and_uncached_runs_are_bit_identical(stub, aoi_dict, tmp_path) -> None:
    settings = sh_settings(stub)
    cache = tmp_path / "cache"
    steps: list[tuple[str, int, int]] = []
    p1 = ingest(
        "sentinelhub",
        aoi_dict,
        START,
        END,
        tmp_path / "a.zarr",
        cache_dir=cache,
        settings=settings,
        progress=lambda *a: steps.append(a),
    )
    calls = stub.count("process")
    assert calls > 0 and ("download", calls, calls) in steps and steps[-1] == ("write", 1, 1)
    assert len(list(cache.glob("*.zarr"))) == 1 and len(list(cache.glob("*.json"))) == 1
    p2 = ingest(
        "sentinelhub", aoi_dict, START, END, tmp_path / "b.zarr", cache_dir=cache, settings=settings
    )
    assert stub.count("process") == calls  # served from the cache: nothing downloaded
    p3 = ingest("sentinelhub", aoi_dict, START, END, tmp_path / "c.zarr", settings=settings)
    assert stub.count("process") == 2 * calls  # no cache: downloaded again
    a, b, c = (read_zarr(p) for p in (p1, p2, p3))
    assert _bytes(a) == _bytes(b) == _bytes(c)
    assert a.attrs["scene_ids"] == b.attrs["scene_ids"]


def test_files_source_reproducible_and_cached(cube, aoi_dict, tmp_path) -> None:
    write_geotiff_folder(cube, tmp_path / "in")
    settings = make_settings(files_dir=tmp_path / "in")
    runs = [
        fetch_cube("files", aoi_dict, START, END, cache_dir=tmp_path / "cache", settings=settings)
        for _ in range(2)
    ]
    runs.append(fetch_cube("files", aoi_dict, START, END, settings=settings))
    assert _bytes(runs[0]) == _bytes(runs[1]) == _bytes(runs[2])


def test_cache_key_depends_on_everything_that_matters(aoi, tmp_path) -> None:
    s1 = make_settings(stac_url="http://127.0.0.1:1/a")
    src = get_source("stac", s1)
    d0, d1 = dt.date(2024, 3, 1), dt.date(2024, 4, 30)
    base = cache_key(request_description("stac", src.identity(), aoi, d0, d1))
    assert base == cache_key(request_description("stac", src.identity(), aoi, d0, d1))
    other_url = get_source("stac", make_settings(stac_url="http://127.0.0.1:1/b")).identity()
    assert cache_key(request_description("stac", other_url, aoi, d0, d1)) != base
    assert (
        cache_key(request_description("stac", src.identity(), aoi, d0, dt.date(2024, 5, 1))) != base
    )
    other_aoi = load_aoi(aoi.geometry_utm.buffer(-15), crs="EPSG:32631")
    assert cache_key(request_description("stac", src.identity(), other_aoi, d0, d1)) != base
    s2 = make_settings(stac_url="http://127.0.0.1:1/a", ingest_max_cloud_cover=30)
    assert (
        cache_key(request_description("stac", get_source("stac", s2).identity(), aoi, d0, d1))
        != base
    )


def test_corrupt_cache_entry_is_refetched(cube, aoi_dict, tmp_path) -> None:
    write_geotiff_folder(cube, tmp_path / "in")
    settings = make_settings(files_dir=tmp_path / "in")
    ds = fetch_cube("files", aoi_dict, START, END, cache_dir=tmp_path / "cache", settings=settings)
    entry = next((tmp_path / "cache").glob("*.zarr"))
    shutil.rmtree(entry / "reflectance")
    again = fetch_cube(
        "files", aoi_dict, START, END, cache_dir=tmp_path / "cache", settings=settings
    )
    assert _bytes(ds) == _bytes(again)


def test_output_is_atomic_and_not_overwritten_by_default(cube, aoi_dict, tmp_path) -> None:
    write_geotiff_folder(cube, tmp_path / "in")
    settings = make_settings(files_dir=tmp_path / "in")
    out = tmp_path / "cube.zarr"
    ingest("files", aoi_dict, START, END, out, settings=settings)
    assert read_zarr(out).sizes["time"] > 0
    with pytest.raises(FileExistsError):
        ingest("files", aoi_dict, START, END, out, settings=settings)
    ingest("files", aoi_dict, "2024-03-01", "2024-03-10", out, settings=settings, overwrite=True)
    assert read_zarr(out).sizes["time"] == 1
    # a failing request (bad AOI) leaves the existing cube untouched
    with pytest.raises(AOIError):
        ingest(
            "files",
            {"type": "Point", "coordinates": [0, 0]},
            START,
            END,
            out,
            settings=settings,
            overwrite=True,
        )
    assert read_zarr(out).sizes["time"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cube.zarr", "in"]


def test_bad_period(aoi_dict, tmp_path) -> None:
    with pytest.raises(ValueError, match="after end"):
        fetch_cube("simulated", aoi_dict, "2024-05-01", "2024-03-01", settings=make_settings())


def test_tests_cannot_leave_localhost() -> None:
    import socket

    with pytest.raises(OSError, match="only 127.0.0.1"):
        socket.create_connection(("192.0.2.1", 80), timeout=0.1)  # TEST-NET-1, never routed
