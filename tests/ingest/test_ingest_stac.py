"""STAC: static catalogue and STAC API on 127.0.0.1, read through pystac-client + odc-stac."""

from __future__ import annotations

import datetime as dt
import socket
import warnings
from pathlib import Path

import numpy as np
import pytest

from agrostress.cube import BANDS
from agrostress.ingest import EmptyCatalogueError, UpstreamError, get_source
from agrostress.ingest.harmonise import OffsetWarning
from tests.ingest.ingest_helpers import make_settings
from tests.ingest.ingest_stac import ItemSpec, serve, serve_api, write_catalog
from tests.ingest.ingest_synth import expected_on_aoi, make_cube

pytestmark = pytest.mark.network

START, END = dt.date(2024, 3, 1), dt.date(2024, 4, 30)
TEN_M = [BANDS.index(b) for b in ("B02", "B03", "B04", "B08")]
TWENTY_M = [i for i in range(len(BANDS)) if i not in TEN_M]

# baseline 03.xx vs 04.00+, and the known wrong flags (earth-search #66/#71, cirrus #33)
SPECS = [
    ItemSpec("03.01", None, data_has_offset=False, raster_offset=None),
    ItemSpec("04.00", False, data_has_offset=True),
    ItemSpec("05.10", False, data_has_offset=False),  # flag wrong: offset already removed
    ItemSpec("04.00", True, data_has_offset=False, raster_offset=None),
    ItemSpec("05.10", True, data_has_offset=True),  # flag wrong: offset still in the DN
]


@pytest.fixture(scope="module")
def catalog_dir(cube, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("stac")
    write_catalog(cube, root, SPECS)
    return root


def _check_cube(ds, cube, aoi) -> None:
    times, refl, scl = expected_on_aoi(cube, aoi)
    np.testing.assert_array_equal(ds["time"].values, times)
    np.testing.assert_array_equal(ds["scl"].values, scl)
    got = ds["reflectance"].values
    np.testing.assert_array_equal(got[:, TEN_M], refl[:, TEN_M])  # 10 m: exact
    both = np.isfinite(got[:, TWENTY_M]) & np.isfinite(refl[:, TWENTY_M])
    assert (np.isnan(got[:, TWENTY_M]) == np.isnan(refl[:, TWENTY_M])).mean() > 0.99
    err = np.abs(got[:, TWENTY_M] - refl[:, TWENTY_M])[both]
    assert err.max() < 0.03 and err.mean() < 0.006  # bilinear from 2x2 means of noisy truth


def test_static_catalogue_over_http_with_offset_harmonisation(catalog_dir, cube, aoi) -> None:
    with serve(catalog_dir) as url:
        src = get_source("stac", make_settings(stac_url=f"{url}/catalog.json"))
        src.load_chunk = 2  # several odc-stac loads
        with pytest.warns(OffsetWarning) as caught:
            ds = src.fetch(aoi, START, END)
    assert len([w for w in caught if issubclass(w.category, OffsetWarning)]) == 2
    _check_cube(ds, cube, aoi)
    ids = ds.attrs["scene_ids"]
    assert ds.attrs["boa_offsets_corrected"] == [ids[2], ids[4]]
    assert ds.attrs["boa_offsets"] == ["0", "-1000", "0", "0", "-1000"]
    assert list(ds["platform"].values) == list(cube["platform"].values)


def test_without_the_pixel_check_wrong_flags_shift_reflectance(catalog_dir, cube, aoi) -> None:
    with serve(catalog_dir) as url:
        src = get_source(
            "stac", make_settings(stac_url=f"{url}/catalog.json", ingest_offset_check=False)
        )
        with warnings.catch_warnings():
            warnings.simplefilter("error", OffsetWarning)
            ds = src.fetch(aoi, START, END)
    _, refl, _ = expected_on_aoi(cube, aoi)
    red = BANDS.index("B04")
    diff = ds["reflectance"].values[:, red] - refl[:, red]
    assert np.nanmax(np.abs(diff[[0, 1, 3]])) == 0
    assert np.nanmean(diff[2]) == pytest.approx(-0.1, abs=1e-4)  # offset removed twice
    assert np.nanmean(diff[4]) == pytest.approx(0.1, abs=1e-4)  # offset never removed


def test_stac_api_search(catalog_dir, cube, aoi) -> None:
    with serve_api(catalog_dir) as (url, searches):
        src = get_source("stac", make_settings(stac_url=url))
        with pytest.warns(OffsetWarning):
            ds = src.fetch(aoi, START, END)
        with pytest.raises(EmptyCatalogueError, match="no item"):
            src.fetch(aoi, dt.date(2023, 1, 1), dt.date(2023, 2, 1))
    _check_cube(ds, cube, aoi)
    assert searches and searches[0]["collections"] == ["sentinel-2-l2a"]
    assert searches[0]["intersects"]["type"] == "Polygon"
    assert searches[0]["datetime"].startswith("2024-03-01T00:00:00Z/2024-04-30")


def test_static_catalogue_from_a_local_path(catalog_dir, cube, aoi) -> None:
    src = get_source("stac", make_settings(stac_url=str(catalog_dir / "catalog.json")))
    with pytest.warns(OffsetWarning):
        ds = src.fetch(aoi, dt.date(2024, 3, 10), dt.date(2024, 3, 31))
    assert ds.sizes["time"] == 2


def test_empty_period_and_cloud_filter(catalog_dir, aoi) -> None:
    with serve(catalog_dir) as url:
        src = get_source("stac", make_settings(stac_url=f"{url}/catalog.json"))
        with pytest.raises(EmptyCatalogueError, match="2022-01-01"):
            src.fetch(aoi, dt.date(2022, 1, 1), dt.date(2022, 12, 31))
        strict = get_source(
            "stac", make_settings(stac_url=f"{url}/catalog.json", ingest_max_cloud_cover=5)
        )
        items = strict.find_items(aoi, START, END)
    assert [it.properties["eo:cloud_cover"] for it in items] == [0.0, 0.0]


def test_unreachable_catalogue(aoi) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    src = get_source("stac", make_settings(stac_url=f"http://127.0.0.1:{port}/catalog.json"))
    with pytest.raises(UpstreamError, match="STAC"):
        src.fetch(aoi, START, END)


def test_same_day_items_are_mosaicked(aoi, tmp_path) -> None:
    # two scenes of the same overpass (adjacent tiles); the less cloudy one has a no-data edge
    cube = make_cube(
        dates=["2024-03-05T10:50:31", "2024-03-05T10:50:40", "2024-03-15T10:50:29"],
        seed=5,
        nodata_date=0,
    )
    write_catalog(cube, tmp_path, [ItemSpec() for _ in range(3)])
    ds = get_source("stac", make_settings(stac_url=str(tmp_path / "catalog.json"))).fetch(
        aoi, START, END
    )
    assert ds.sizes["time"] == 2
    assert str(ds["time"].values[0]).startswith("2024-03-05T10:50:31")
    first = cube.isel(time=[0])
    second = cube.isel(time=[1])
    _, r0, s0 = expected_on_aoi(first, aoi)
    _, r1, s1 = expected_on_aoi(second, aoi)
    take0 = s0[0] != 0
    exp_scl = np.where(take0, s0[0], s1[0])
    np.testing.assert_array_equal(ds["scl"].values[0], exp_scl)
    red = BANDS.index("B04")
    np.testing.assert_array_equal(
        ds["reflectance"].values[0, red], np.where(take0, r0[0, red], r1[0, red])
    )
    assert ds.attrs["scene_ids"][0] == "S2A_31TCJ_20240305_0_L2A,S2B_31TCJ_20240305_1_L2A"
