"""Sentinel Hub through the real sentinelhub-py client against the stub server on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agrostress.ingest import (
    AOI,
    CoverageError,
    CredentialsError,
    EmptyCatalogueError,
    UpstreamError,
    get_source,
    load_aoi,
)
from agrostress.ingest.fetch import ingest
from agrostress.ingest.sentinelhub_source import resolve_urls, split_grid
from tests.ingest import stub_sentinelhub as shs
from tests.ingest.ingest_helpers import make_settings, sh_settings
from tests.ingest.ingest_synth import expected_on_aoi

pytestmark = pytest.mark.network

START, END = dt.date(2024, 3, 1), dt.date(2024, 4, 30)


def _fetch(stub: shs.StubSentinelHub, aoi: AOI, **kw: Any) -> Any:
    return get_source("sentinelhub", sh_settings(stub, **kw)).fetch(aoi, START, END)


def _assert_no_output(out: Path) -> None:
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]


def test_tiles_are_requested_and_remosaicked_exactly(stub, cube, aoi) -> None:
    ds = _fetch(stub, aoi, sh_max_px=16)
    times, refl, scl = expected_on_aoi(cube, aoi)
    np.testing.assert_array_equal(ds["time"].values, times)
    np.testing.assert_array_equal(ds["reflectance"].values, refl)  # NaN == NaN here
    np.testing.assert_array_equal(ds["scl"].values, scl)
    assert list(ds["platform"].values) == list(cube["platform"].values)
    tiles = split_grid(aoi.width, aoi.height, 16)
    assert len(tiles) == 6
    assert stub.count("process") == len(tiles) * cube.sizes["time"]
    for _, body in (c for c in stub.calls if c[0] == "process"):
        assert body["output"]["width"] <= 16 and body["output"]["height"] <= 16
        assert body["input"]["data"][0]["processing"] == {"harmonizeValues": True}
    assert stub.count("search") == 3  # 5 scenes, pages of 2: catalogue paging followed
    assert stub.count("token") == 1


def test_split_grid_covers_exactly() -> None:
    tiles = split_grid(5001, 2600, 2500)
    assert len(tiles) == 6 and max(max(h, w) for _, _, h, w in tiles) <= 2500
    cover = np.zeros((2600, 5001), dtype=np.uint8)
    for r, c, h, w in tiles:
        cover[r : r + h, c : c + w] += 1
    assert (cover == 1).all()


def test_rate_limit_429_then_success(stub, cube, aoi) -> None:
    stub.fail("process", shs.too_many_requests(20), shs.too_many_requests(20))
    stub.fail("search", shs.too_many_requests(20))
    ds = _fetch(stub, aoi)
    assert ds.sizes["time"] == cube.sizes["time"]
    assert stub.count("process") == cube.sizes["time"] + 2


def test_rate_limit_forever_gives_up_and_leaves_nothing(stub, aoi_dict, tmp_path) -> None:
    stub.persistent["process"] = shs.too_many_requests(5)
    out = tmp_path / "cube.zarr"
    settings = sh_settings(stub, sh_rate_limit_retries=3)
    with pytest.raises(UpstreamError, match="429"):
        ingest(
            "sentinelhub",
            aoi_dict,
            START,
            END,
            out,
            cache_dir=tmp_path / "cache",
            settings=settings,
        )
    _assert_no_output(out)
    assert not list((tmp_path / "cache").glob("*.zarr")) if (tmp_path / "cache").exists() else True


def test_server_errors_are_retried(stub, cube, aoi) -> None:
    stub.fail("token", shs.status(503))
    stub.fail("process", shs.status(500), shs.status(502))
    ds = _fetch(stub, aoi)
    assert ds.sizes["time"] == cube.sizes["time"]


def test_repeated_500_fails_after_max_attempts(stub, aoi_dict, tmp_path) -> None:
    stub.persistent["process"] = shs.status(500)
    out = tmp_path / "cube.zarr"
    settings = sh_settings(stub, sh_max_attempts=2, sh_max_threads=1)
    with pytest.raises(UpstreamError, match="HTTP 500"):
        ingest("sentinelhub", aoi_dict, START, END, out, settings=settings)
    # 2 attempts per request; only the first batch (2 x max_threads requests) is tried
    assert stub.count("process") == 4
    _assert_no_output(out)


def test_forbidden_on_process_api_is_a_credentials_error(stub, aoi) -> None:
    stub.fail("process", shs.status(403))
    with pytest.raises(CredentialsError, match="403.*stub answered 403"):  # the service's words
        _fetch(stub, aoi, sh_max_threads=1)


def test_quota_exceeded_keeps_the_service_message(stub, aoi) -> None:
    """A 403 about the account's allowance is not a credentials problem."""
    stub.fail("process", shs.status(403, {"error": {
        "status": 403, "reason": "Forbidden",
        "message": "Your processing units quota has been exceeded"}}))
    with pytest.raises(UpstreamError, match="quota has been exceeded") as err:
        _fetch(stub, aoi, sh_max_threads=1)
    assert not isinstance(err.value, CredentialsError)
    assert "credentials" not in str(err.value)


def test_token_revoked_mid_run_reauthenticates_once(stub, cube, aoi) -> None:
    """A 401 in the middle of the downloads: one new token, then the run goes on."""
    stub.fail("process", shs.status(401))
    ds = _fetch(stub, aoi, sh_max_threads=1)
    times, refl, _ = expected_on_aoi(cube, aoi)
    np.testing.assert_array_equal(ds["reflectance"].values, refl)
    assert stub.count("token") == 2


def test_persistent_401_is_a_credentials_error(stub, aoi) -> None:
    stub.persistent["process"] = shs.status(401)
    with pytest.raises(CredentialsError, match="401"):
        _fetch(stub, aoi, sh_max_threads=1)
    assert stub.count("token") == 2  # re-authenticated once, not in a loop


def test_valid_dark_pixels_stay_data(cube, aoi, insecure_oauth) -> None:
    """Harmonised DN 0 with dataMask 1 (water, deep shadow) is reflectance 0, not no data."""
    dark = cube.copy(deep=True)
    refl = dark["reflectance"].values
    valid = dark["scl"].values != 0
    r = int(np.searchsorted(-dark["y"].values, -aoi.y[len(aoi.y) // 2]))
    c = int(np.searchsorted(dark["x"].values, aoi.x[len(aoi.x) // 2]))
    rows, cols = slice(r - 1, r + 2), slice(c - 1, c + 2)  # the middle of the AOI
    block = (slice(None), slice(None), rows, cols)
    refl[block] = np.where(valid[:, None, rows, cols], 0.0, refl[block])
    dark["reflectance"] = (dark["reflectance"].dims, refl)
    with shs.running(dark) as server:
        ds = _fetch(server, aoi, sh_max_threads=1)
    _, want, _ = expected_on_aoi(dark, aoi)
    got = ds["reflectance"].values
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))  # no data where none is
    assert (got[np.isfinite(want) & (want == 0)] == 0).all() and (want == 0).any()


def test_coverage_probe_sends_a_datetime(stub, aoi) -> None:
    """The published Catalogue API requires ``datetime``: the any-time probe sends one too."""
    stub.cloud_cover = [100.0] * len(stub.cloud_cover)
    with pytest.raises(EmptyCatalogueError):
        _fetch(stub, aoi, ingest_max_cloud_cover=5)
    bodies = [body for endpoint, body in stub.calls if endpoint == "search"]
    assert len(bodies) >= 2 and all(b.get("datetime") for b in bodies)


def test_bad_secret_is_a_credentials_error(stub, aoi_dict, tmp_path) -> None:
    out = tmp_path / "cube.zarr"
    settings = sh_settings(stub, sh_client_secret="wrong")
    with pytest.raises(CredentialsError, match="invalid_client"):
        ingest("sentinelhub", aoi_dict, START, END, out, settings=settings)
    assert stub.count("search") == 0 and stub.count("process") == 0
    _assert_no_output(out)


def test_missing_credentials_fail_before_any_request(stub, aoi) -> None:
    with pytest.raises(CredentialsError, match="AGROSTRESS_SH_CLIENT_ID"):
        _fetch(stub, aoi, sh_client_id="", sh_client_secret="")
    assert stub.calls == []


def test_truncated_and_corrupt_tiffs_are_refetched(stub, cube, aoi) -> None:
    stub.fail("process", shs.truncate(), shs.corrupt())
    ds = _fetch(stub, aoi, sh_max_threads=1)
    times, refl, _ = expected_on_aoi(cube, aoi)
    np.testing.assert_array_equal(ds["reflectance"].values, refl)
    assert stub.count("process") == cube.sizes["time"] + 2


def test_always_corrupt_tiff_fails_and_leaves_nothing(stub, aoi_dict, tmp_path) -> None:
    stub.persistent["process"] = shs.corrupt()
    out = tmp_path / "cube.zarr"
    with pytest.raises(UpstreamError, match="unreadable response"):
        ingest(
            "sentinelhub", aoi_dict, START, END, out, settings=sh_settings(stub, sh_max_attempts=2)
        )
    _assert_no_output(out)


def test_timeout_is_retried(stub, cube, aoi) -> None:
    stub.fail("process", shs.delay(1.0))
    ds = _fetch(stub, aoi, sh_timeout_s=0.3, sh_max_threads=1)
    assert ds.sizes["time"] == cube.sizes["time"]


def test_timeout_forever_fails(stub, aoi) -> None:
    stub.persistent["search"] = shs.delay(0.6)
    with pytest.raises(UpstreamError, match="timed out"):
        _fetch(stub, aoi, sh_timeout_s=0.2, sh_max_attempts=2)


def test_empty_catalogue(stub, aoi) -> None:
    src = get_source("sentinelhub", sh_settings(stub))
    with pytest.raises(EmptyCatalogueError, match="2023-03-01"):
        src.fetch(aoi, dt.date(2023, 3, 1), dt.date(2023, 4, 1))
    assert stub.count("process") == 0


def test_cloud_cover_filter_can_empty_the_catalogue(stub, aoi) -> None:
    stub.cloud_cover = [50.0] * len(stub.cloud_cover)
    with pytest.raises(EmptyCatalogueError, match="cloud cover"):
        _fetch(stub, aoi, ingest_max_cloud_cover=20)


def test_geometry_outside_coverage(stub) -> None:
    far = load_aoi(
        {
            "type": "Polygon",
            "coordinates": [[[3.50, 45.0], [3.51, 45.0], [3.51, 45.01], [3.50, 45.0]]],
        }
    )
    with pytest.raises(CoverageError, match="outside the coverage"):
        _fetch(stub, far)


def test_no_valid_pixel_is_a_coverage_error(stub, aoi) -> None:
    stub.cube = stub.cube.copy(deep=True)
    stub.cube["scl"][:] = 0
    with pytest.raises(CoverageError, match="no valid pixel"):
        _fetch(stub, aoi)


def test_profiles() -> None:
    assert resolve_urls(make_settings())[0] == "https://services.sentinel-hub.com"
    base, token = resolve_urls(make_settings(sh_profile="cdse"))
    assert base == "https://sh.dataspace.copernicus.eu"
    assert token.startswith("https://identity.dataspace.copernicus.eu/")
    assert resolve_urls(make_settings(sh_profile="cdse", sh_base_url="http://x/"))[0] == "http://x"
    src = get_source(
        "sentinelhub", make_settings(sh_profile="cdse", sh_client_id="a", sh_client_secret="b")
    )
    cfg = src.config()
    assert cfg.sh_base_url == base and cfg.sh_token_url == token
    assert src.collection().service_url == base
