"""Local files: GeoTIFF folders in several layouts, reprojected/cropped onto the AOI grid."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine

from agrostress.cube import BANDS, reflectance_to_dn, write_geotiff_folder
from agrostress.ingest import EmptyCatalogueError, SourceConfigError, UpstreamError, get_source
from agrostress.ingest.harmonise import OffsetWarning
from tests.ingest.ingest_helpers import make_settings
from tests.ingest.ingest_synth import expected_on_aoi

START, END = dt.date(2024, 3, 1), dt.date(2024, 4, 30)


def _fetch(folder: Path, aoi, **kw):
    return get_source("files", make_settings(files_dir=folder, **kw)).fetch(aoi, START, END)


def _write(path: Path, data: np.ndarray, transform, *, epsg: int = 32631, tags=None, names=None):
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=data.shape[2],
        height=data.shape[1],
        count=data.shape[0],
        dtype=data.dtype.name,
        crs=f"EPSG:{epsg}",
        transform=transform,
        nodata=0,
    ) as dst:
        dst.write(data)
        if tags:
            dst.update_tags(**tags)
        for i, n in enumerate(names or [], start=1):
            dst.set_band_description(i, n)


def _transform(cube, shift: float = 0.0) -> Affine:
    return Affine(10, 0, float(cube.x[0]) - 5 + shift, 0, -10, float(cube.y[0]) + 5)


def _assert_exact(ds, cube, aoi) -> None:
    times, refl, scl = expected_on_aoi(cube, aoi)
    np.testing.assert_array_equal(ds["time"].values, times)
    np.testing.assert_array_equal(ds["reflectance"].values, refl)
    np.testing.assert_array_equal(ds["scl"].values, scl)


def test_geotiff_folder_round_trip(cube, aoi, tmp_path) -> None:
    labelled = cube.copy()
    yy, xx = np.mgrid[0 : cube.sizes["y"], 0 : cube.sizes["x"]]
    labelled["label"] = (("y", "x"), ((yy // 10 + xx // 12) % 4 - 1).astype(np.int8))
    labelled["field_id"] = (("y", "x"), (yy // 10 * 5 + xx // 12).astype(np.int32))
    write_geotiff_folder(labelled, tmp_path / "folder")
    ds = _fetch(tmp_path / "folder", aoi)
    _assert_exact(ds, cube, aoi)
    assert list(ds["platform"].values) == list(cube["platform"].values)
    inside = aoi.mask()
    sub = labelled.sel(x=aoi.x, y=aoi.y)
    np.testing.assert_array_equal(ds["label"].values, np.where(inside, sub["label"].values, -1))
    np.testing.assert_array_equal(
        ds["field_id"].values, np.where(inside, sub["field_id"].values, 0)
    )


def test_multiband_dn_with_separate_scl(cube, aoi, tmp_path) -> None:
    tr = _transform(cube)
    for i, t in enumerate(pd.DatetimeIndex(cube.time.values)):
        stem = f"S2B_MSIL2A_{t:%Y%m%dT%H%M%S}"
        dn = reflectance_to_dn(cube.reflectance.values[i])  # with the PB 04.00 offset
        tags = {"PROCESSING_BASELINE": "05.10"} if i % 2 else None  # else: date rule
        _write(tmp_path / f"{stem}.tif", dn, tr, tags=tags)
        _write(tmp_path / f"{stem}_SCL.tif", cube.scl.values[i][None], tr)
    ds = _fetch(tmp_path, aoi)
    _assert_exact(ds, cube, aoi)
    assert ds.attrs["boa_offsets"] == [-1000.0] * ds.sizes["time"]
    assert set(ds["platform"].values) == {"S2B"}


def test_per_band_files_with_20m_bands(cube, aoi, tmp_path) -> None:
    tr10, tr20 = _transform(cube), Affine(20, 0, float(cube.x[0]) - 5, 0, -20, float(cube.y[0]) + 5)
    for i, t in enumerate(pd.DatetimeIndex(cube.time.values)):
        for b, band in enumerate(BANDS):
            layer = cube.reflectance.values[i, b]
            if band in ("B02", "B03", "B04", "B08"):
                _write(
                    tmp_path / f"{t:%Y%m%d}_{band}.tif",
                    reflectance_to_dn(layer, offset=0)[None],
                    tr10,
                    tags={"BOA_ADD_OFFSET": "0"},
                )
            else:
                coarse = layer[::2, ::2]
                _write(
                    tmp_path / f"{t:%Y%m%d}_{band}_20m.tif",
                    reflectance_to_dn(coarse, offset=0)[None],
                    tr20,
                )
        _write(tmp_path / f"{t:%Y%m%d}_SCL.tif", cube.scl.values[i][::2, ::2][None], tr20)
    ds = _fetch(tmp_path, aoi)
    times, refl, scl = expected_on_aoi(cube, aoi)
    assert (ds.time.values.astype("datetime64[D]") == times.astype("datetime64[D]")).all()
    np.testing.assert_array_equal(ds["scl"].values, scl)
    ten = [BANDS.index(b) for b in ("B02", "B03", "B04", "B08")]
    np.testing.assert_array_equal(ds["reflectance"].values[:, ten], refl[:, ten])
    twenty = [i for i in range(10) if i not in ten]
    err = np.abs(ds["reflectance"].values[:, twenty] - refl[:, twenty])
    assert np.nanmax(err) < 0.03


def test_unaligned_grid_is_reprojected(cube, aoi, tmp_path) -> None:
    tr = _transform(cube, shift=5.0)  # half a pixel east: bilinear / nearest resampling
    for i, t in enumerate(pd.DatetimeIndex(cube.time.values)):
        data = np.concatenate(
            [reflectance_to_dn(cube.reflectance.values[i]), cube.scl.values[i][None]]
        )
        _write(tmp_path / f"scene_{t:%Y-%m-%d}.tif", data, tr, names=[*BANDS, "SCL"])
    ds = _fetch(tmp_path, aoi)
    _, refl, _ = expected_on_aoi(cube, aoi)
    assert ds.sizes["time"] == len(refl)
    err = np.abs(ds["reflectance"].values - refl)
    assert np.nanmean(err) < 0.004 and np.nanmax(err) < 0.05


def test_wrongly_tagged_dn_are_corrected(cube, aoi, tmp_path) -> None:
    tr = _transform(cube)
    t = pd.Timestamp(cube.time.values[0])
    dn = reflectance_to_dn(cube.reflectance.values[0], offset=0)  # no offset in the data...
    data = np.concatenate([dn, cube.scl.values[0][None]])
    _write(tmp_path / f"{t:%Y%m%dT%H%M%S}.tif", data, tr, tags={"PROCESSING_BASELINE": "04.00"})
    with pytest.warns(OffsetWarning, match="do not carry"):
        ds = get_source("files", make_settings(files_dir=tmp_path)).fetch(
            aoi, START, dt.date(2024, 3, 6)
        )
    _, refl, _ = expected_on_aoi(cube.isel(time=[0]), aoi)
    np.testing.assert_array_equal(ds["reflectance"].values, refl)


def test_folder_errors(cube, aoi, tmp_path) -> None:
    with pytest.raises(SourceConfigError, match="no input folder"):
        get_source("files", make_settings()).fetch(aoi, START, END)
    with pytest.raises(SourceConfigError, match="does not exist"):
        _fetch(tmp_path / "missing", aoi)
    (tmp_path / "empty").mkdir()
    with pytest.raises(EmptyCatalogueError, match="no GeoTIFF"):
        _fetch(tmp_path / "empty", aoi)
    tr = _transform(cube)
    dn = reflectance_to_dn(cube.reflectance.values[0])
    (tmp_path / "noscl").mkdir()
    _write(tmp_path / "noscl" / "20240305.tif", dn, tr)
    with pytest.raises(SourceConfigError, match="no SCL"):
        _fetch(tmp_path / "noscl", aoi)
    (tmp_path / "nodate").mkdir()
    _write(tmp_path / "nodate" / "scene.tif", dn, tr)
    with pytest.raises(SourceConfigError, match="no acquisition date"):
        _fetch(tmp_path / "nodate", aoi)
    (tmp_path / "partial").mkdir()
    _write(tmp_path / "partial" / "20240305_B02.tif", dn[:1], tr)
    with pytest.raises(SourceConfigError, match="missing per-band"):
        _fetch(tmp_path / "partial", aoi)
    with pytest.raises(EmptyCatalogueError, match="between"):
        get_source("files", make_settings(files_dir=tmp_path / "noscl")).fetch(
            aoi, dt.date(2020, 1, 1), dt.date(2020, 2, 1)
        )


def test_unreadable_file(aoi, tmp_path) -> None:
    (tmp_path / "20240305.tif").write_bytes(b"II*\x00 not really a tiff")
    with pytest.raises(UpstreamError, match="cannot read 20240305"):
        _fetch(tmp_path, aoi)
