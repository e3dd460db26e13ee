"""The cube contract: validation messages and Zarr / GeoTIFF round trips."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from agrostress import cube


def make(t: int = 4, h: int = 5, w: int = 6, **kw) -> xr.Dataset:
    rng = np.random.default_rng(0)
    refl = rng.uniform(-0.01, 0.6, (t, 10, h, w)).astype(np.float32)
    refl[0, 0, 0, 0] = np.nan
    return cube.build_cube(
        refl,
        rng.integers(0, 12, (t, h, w)),
        pd.date_range("2024-03-01", periods=t, freq="3D"),
        5_300_000 - 5 - 10 * np.arange(h),
        400_005 + 10 * np.arange(w),
        32631,
        platform=(["S2A", "S2B"] * t)[:t],
        label=rng.integers(-1, 3, (h, w)),
        field_id=rng.integers(0, 4, (h, w)),
        **kw,
    )


def test_valid_cube_passes():
    ds = make()
    assert cube.problems(ds) == []
    assert cube.validate(ds) is ds
    assert cube.cube_crs(ds).to_epsg() == 32631
    assert cube.pixel_size(ds) == (10.0, -10.0)


@pytest.mark.parametrize(
    ("breaker", "message"),
    [
        (lambda ds: ds.sel(band=[b for b in cube.BANDS if b != "B05"]), "missing band(s) B05"),
        (lambda ds: ds.assign(reflectance=ds.reflectance.transpose("band", "time", "y", "x")),
         "'reflectance' has dims ('band', 'time', 'y', 'x')"),
        (lambda ds: ds.assign(reflectance=ds.reflectance.astype("float64")),
         "'reflectance' has dtype float64, expected float32"),
        (lambda ds: ds.assign(scl=ds.scl.astype("int16")), "'scl' has dtype int16, expected uint8"),
        (lambda ds: ds.drop_vars("scl"), "missing variable 'scl'"),
        (lambda ds: ds.drop_vars("reflectance"), "missing variable 'reflectance'"),
        (lambda ds: ds.isel(time=[1, 0, 2, 3]), "'time' is not strictly increasing"),
        (lambda ds: ds.isel(time=[0, 0, 1, 2]), "'time' is not strictly increasing"),
        (lambda ds: ds.drop_vars("spatial_ref"), "no CRS"),
        (lambda ds: ds.assign(label=ds.label.where(ds.label != 2, 7).astype("int8")),
         "label code(s) [7] out of range"),
        (lambda ds: ds.assign(label=ds.label.astype("int32")), "'label' has dtype int32"),
        (lambda ds: ds.assign(field_id=ds.field_id - 5), "'field_id' has negative values"),
        (lambda ds: ds.assign_coords(platform=("time", ["S2A", "L8", "S2B", "S2A"])),
         "unknown platform(s) ['L8']"),
        (lambda ds: ds.isel(time=slice(0, 0)), "empty time series"),
        (lambda ds: ds.rename(band="bands"), "missing dimension 'band'"),
        (lambda ds: ds.isel(x=[0, 2, 1, 3, 4, 5]), "coordinate 'x' is not monotonic"),
    ],
)
def test_validate_names_the_problem(breaker, message):
    bad = breaker(make())
    with pytest.raises(cube.CubeError) as err:
        cube.validate(bad)
    assert any(message in p for p in err.value.problems), err.value.problems


def test_validate_requires_labels_only_when_asked():
    ds = make().drop_vars("label")
    cube.validate(ds)
    with pytest.raises(cube.CubeError, match="missing variable 'label'"):
        cube.validate(ds, require_labels=True)


def test_validate_rejects_non_dataset():
    with pytest.raises(cube.CubeError, match="expected an xarray.Dataset"):
        cube.validate(np.zeros(3))


def test_zarr_round_trip_is_identical(tmp_path):
    ds = make()
    cube.write_zarr(ds, tmp_path / "c.zarr")
    back = cube.read_zarr(tmp_path / "c.zarr").load()
    xr.testing.assert_identical(ds, back)
    plain = xr.open_zarr(tmp_path / "c.zarr")
    assert plain.reflectance.dtype == np.float32 and plain.sizes["band"] == 10


def test_zarr_lazy_open_keeps_time_whole(tmp_path):
    ds = make(t=6, h=8, w=8)
    cube.write_zarr(ds, tmp_path / "c.zarr")
    lazy = cube.read_zarr(tmp_path / "c.zarr", chunks={"time": -1, "y": 4, "x": 4})
    assert lazy.reflectance.chunks[0] == (6,)
    np.testing.assert_array_equal(lazy.reflectance.values, ds.reflectance.values)


def test_geotiff_folder_round_trip(tmp_path):
    ds = make()
    cube.write_geotiff_folder(ds, tmp_path / "tifs")
    files = sorted(p.name for p in (tmp_path / "tifs").glob("*.tif"))
    assert "static.tif" in files and len(files) == ds.sizes["time"] + 1
    back = cube.open_cube(tmp_path / "tifs")
    xr.testing.assert_identical(ds, back)


def test_geotiff_files_are_cogs_with_band_names(tmp_path):
    import rasterio
    from rio_cogeo.cogeo import cog_validate

    ds = make(h=40, w=40)
    cube.write_geotiff_folder(ds, tmp_path / "tifs")
    first = next(p for p in sorted((tmp_path / "tifs").glob("S2*.tif")))
    valid, errors, _ = cog_validate(first)
    assert valid, errors
    with rasterio.open(first) as src:
        assert src.descriptions == (*cube.BANDS, "SCL")
        assert src.tags()["ACQUISITION_DATETIME"].startswith("2024-03-01")


def test_failed_write_leaves_nothing(tmp_path):
    ds = make().drop_vars("scl")
    with pytest.raises(cube.CubeError):
        cube.write_zarr(ds, tmp_path / "bad.zarr")
    assert list(tmp_path.iterdir()) == []


def test_overwrite_replaces_atomically(tmp_path):
    cube.write_zarr(make(t=3), tmp_path / "c.zarr")
    cube.write_zarr(make(t=5), tmp_path / "c.zarr")
    assert cube.read_zarr(tmp_path / "c.zarr").sizes["time"] == 5
    assert [p.name for p in tmp_path.iterdir()] == ["c.zarr"]


def test_open_missing_or_corrupt(tmp_path):
    with pytest.raises(FileNotFoundError):
        cube.open_cube(tmp_path / "nope.zarr")
    (tmp_path / "junk.zarr").mkdir()
    (tmp_path / "junk.zarr" / ".zgroup").write_text("{not json")
    with pytest.raises(cube.CubeError, match="cannot open"):
        cube.read_zarr(tmp_path / "junk.zarr")


def test_dn_conversion_round_trip():
    refl = np.array([-0.05, 0.0, 0.1234, 0.9, np.nan], dtype=np.float32)
    dn = cube.reflectance_to_dn(refl)
    assert dn.tolist() == [500, 1000, 2234, 10000, 0]
    back = cube.dn_to_reflectance(dn)
    np.testing.assert_allclose(back[:4], refl[:4], atol=5e-5)
    assert np.isnan(back[4])


@pytest.mark.parametrize("shape", [(1, 1), (5, 1), (1, 5), (2, 3)])
def test_write_cog_handles_one_pixel_wide_rasters(tmp_path, shape):
    import rasterio
    from affine import Affine

    from agrostress.outputs.cog import validate_cog, write_cog

    data = np.arange(np.prod(shape), dtype=np.uint8).reshape(shape)
    out = write_cog(tmp_path / "c.tif", data, crs="EPSG:32631", nodata=255, band_names=["class"],
                    transform=Affine(10, 0, 500000, 0, -10, 5320000))
    assert validate_cog(out)[0]
    with rasterio.open(out) as src:
        np.testing.assert_array_equal(src.read(1), data)
