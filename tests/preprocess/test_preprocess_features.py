"""Feature stacks: layout, exactness, flags, numpy/dask identity, errors, persistence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from agrostress.cube import BANDS, cube_crs
from agrostress.preprocess import (
    CloudMaskPolicy,
    FeatureSpec,
    NormStats,
    Regularisation,
    TemporalGrid,
    compute_index,
    feature_stack,
    fill_nearest,
    open_features,
    pixel_dataarray,
    to_pixel_array,
    write_features,
)
from tests.preprocess.pp_synth import linear_series, make_cube


def cloudy_cube(ny=16, nx=12, seed=0):
    c = make_cube(ny=ny, nx=nx)
    rng = np.random.default_rng(seed)
    scl = rng.choice([4, 4, 4, 5, 8, 9, 3, 10, 2], size=c["scl"].shape).astype(np.uint8)
    c["scl"].values[:] = scl
    c["scl"].values[:, 0, 0] = 9  # an all-cloud pixel
    c["reflectance"].values[4, 2, 3, 3] = np.nan
    return c


def test_spec_parsing():
    assert FeatureSpec.parse("ffdnn").names[:2] == ("LAI", "LCC")
    assert FeatureSpec.parse("lai, ndvi,B04").names == ("LAI", "NDVI", "B04")
    assert FeatureSpec.parse("bands,CCCI").names == (*BANDS, "CCCI")
    assert len(FeatureSpec.parse("all")) == 10 + 15 + 2
    assert FeatureSpec.parse("NDVI").bands_needed() == ("B04", "B08")
    with pytest.raises(ValueError, match="unknown feature 'FOO'"):
        FeatureSpec.parse("NDVI,FOO")
    with pytest.raises(ValueError, match="duplicate"):
        FeatureSpec(("NDVI", "ndvi"))


def test_clear_cube_bands_and_indices_exact(cube):
    fs = feature_stack(cube, "B04,B08,NDVI,REDSI", "60:200:5")
    assert fs["features"].dims == ("doy", "feature", "y", "x")
    assert fs["features"].dtype == np.float32 and fs.sizes["doy"] == 29
    g = TemporalGrid().doys.astype(float)
    b4 = np.stack([linear_series(g, 2, 3, BANDS.index("B04"))])[0]
    np.testing.assert_allclose(fs["features"].sel(feature="B04").values[:, 2, 3], b4, atol=1e-6)
    bands = {b: fs["features"].sel(feature=b).values for b in ("B04", "B08")}
    np.testing.assert_array_equal(
        fs["features"].sel(feature="NDVI").values, compute_index("NDVI", bands)
    )
    assert fs["step_valid"].all() and not fs["insufficient_data"].any()
    assert (fs["valid_count"] == 30).all()  # dates within 60−15 … 200+15
    assert fs["label"].dtype == np.int8 and cube_crs(fs) == cube_crs(cube)
    assert fs.attrs["grid"] == "60:200:5" and fs.attrs["features"] == [
        "B04",
        "B08",
        "NDVI",
        "REDSI",
    ]


def test_all_cloud_pixel_flagged_and_not_invented():
    fs = feature_stack(cloudy_cube(), "ffdnn", None, CloudMaskPolicy(dilation=0))
    assert bool(fs["insufficient_data"][0, 0]) and int(fs["valid_count"][0, 0]) == 0
    assert np.isnan(fs["features"].values[:, :, 0, 0]).all()
    assert not fs["step_valid"].values[:, 0, 0].any()
    others = fs["features"].values[:, :, 1:, 1:]
    assert np.isfinite(others).all()  # residual gaps are filled for the rest


def test_masked_dates_never_leak_into_features():
    c = cloudy_cube()
    bad = np.isin(c["scl"].values, (3, 8, 9, 10))
    c["reflectance"].values[np.broadcast_to(bad[:, None], c["reflectance"].shape)] = 5.0
    fs = feature_stack(c, "bands", None, CloudMaskPolicy(dilation=0))
    assert np.nanmax(fs["features"].values) < 1.0


@pytest.mark.parametrize("smoother", [None, "whittaker"])
def test_dask_and_numpy_identical(smoother):
    c = cloudy_cube(ny=20, nx=18, seed=3)
    policy = CloudMaskPolicy(dilation=1)
    reg = Regularisation(max_gap=25, smoother=smoother)
    a = feature_stack(c, "all", "60:200:5", policy, regularisation=reg, block=37)
    b = feature_stack(c.chunk({"y": 7, "x": 5}), "all", "60:200:5", policy, regularisation=reg)
    assert b["features"].chunks is not None
    b = b.compute()
    for v in ("features", "step_valid", "valid_count", "longest_gap", "insufficient_data"):
        np.testing.assert_array_equal(a[v].values, b[v].values, err_msg=v)
    c2 = feature_stack(c, "all", "60:200:5", policy, regularisation=reg, workers=2)
    np.testing.assert_array_equal(a["features"].values, c2["features"].values)


def test_fill_nearest_and_step_valid():
    x = np.array([[np.nan, 1.0], [2.0, np.nan], [np.nan, np.nan], [np.nan, np.nan], [5.0, 3.0]])
    fill_nearest(x)
    np.testing.assert_array_equal(x[:, 0], [2, 2, 2, 5, 5])  # ties go to the earlier step
    np.testing.assert_array_equal(x[:, 1], [1, 1, 1, 3, 3])


def test_gap_beyond_max_gap_is_flagged_and_filled():
    c = make_cube()
    d = c["time"].dt.dayofyear.values
    c["scl"].values[(d > 95) & (d < 150)] = 9  # valid DOY 95 → 150: a 55-day hole
    fs = feature_stack(c, "NDVI", None, CloudMaskPolicy(dilation=0))
    sv = fs["step_valid"].values[:, 0, 0]
    g = fs["doy"].values
    np.testing.assert_array_equal(sv, (g <= 95) | (g >= 150))
    assert np.isfinite(fs["features"].values).all()  # filled from the nearest valid step
    ndvi = fs["features"].sel(feature="NDVI").values[:, 0, 0]
    assert ndvi[g == 120][0] == ndvi[g == 95][0] and ndvi[g == 125][0] == ndvi[g == 150][0]
    assert float(fs["longest_gap"][0, 0]) == 55
    assert fs["insufficient_data"].values.all()  # 10 of 29 steps missing > 1/3
    relaxed = Regularisation(max_missing_fraction=0.5)
    fs2 = feature_stack(c, "NDVI", None, CloudMaskPolicy(dilation=0), regularisation=relaxed)
    assert not fs2["insufficient_data"].values.any()


def test_same_day_acquisitions_and_other_years():
    c = make_cube()
    t = c["time"].values.copy()
    t[4] = t[3] + np.timedelta64(2, "h")  # two acquisitions on DOY 60
    c = c.assign_coords(time=t)
    fs = feature_stack(c, "B04", None)
    assert np.isfinite(fs["features"].values).all()
    c3 = make_cube(year=2023)
    assert feature_stack(c3, "NDVI").attrs["year"] == 2023


def test_errors():
    c = make_cube()
    with pytest.raises(ValueError, match="unknown feature"):
        feature_stack(c, "NDVI,NOTANINDEX")
    with pytest.raises(ValueError, match="outside the data's season"):
        feature_stack(c, "NDVI", "250:330:5")
    c["scl"].values[:] = 9
    with pytest.raises(ValueError, match="no valid observation"):
        feature_stack(c, "NDVI")
    with pytest.raises(ValueError, match="no valid observation"):
        feature_stack(c.chunk({"y": 3}), "NDVI")
    c = make_cube()
    c["reflectance"].values[:] = np.nan
    with pytest.raises(ValueError, match="no valid observation"):
        feature_stack(c, "NDVI")


def test_model_access_and_norm_stats(tmp_path):
    fs = feature_stack(cloudy_cube(), "ffdnn", None, CloudMaskPolicy(dilation=0))
    x, idx = to_pixel_array(fs)
    n_ok = int((~fs["insufficient_data"]).sum())
    assert x.shape == (n_ok, 29, 7) and x.dtype == np.float32 and idx.shape == (n_ok,)
    y, xx = np.unravel_index(idx[0], fs["insufficient_data"].shape)
    np.testing.assert_array_equal(x[0], fs["features"].values[:, :, y, xx])
    pa = pixel_dataarray(fs)
    assert pa.dims == ("pixel", "doy", "feature") and pa.shape[0] == 16 * 12
    stats = NormStats.fit(fs)
    z = stats.apply(x)
    assert np.isfinite(z).all() and abs(float(z.mean())) < 0.5
    again = NormStats.load(stats.save(tmp_path / "norm.json"))
    np.testing.assert_array_equal(again.apply(x), z)
    zd = stats.apply(fs["features"])  # DataArray, aligned by feature name
    assert zd.dims == fs["features"].dims and np.isfinite(zd.values).all()
    with pytest.raises(ValueError):
        NormStats.fit(x, ["LAI"])


def test_write_and_open_roundtrip(tmp_path):
    fs = feature_stack(cloudy_cube(), "ffdnn", None)
    path = write_features(fs, tmp_path / "f.zarr")
    back = open_features(path)
    np.testing.assert_array_equal(back["features"].values, fs["features"].values)
    assert list(back["feature"].values) == list(fs["feature"].values)
    assert cube_crs(back) == cube_crs(fs)
    assert back.attrs["grid"] == "60:200:5"
    with pytest.raises(FileNotFoundError):
        open_features(tmp_path / "missing.zarr")
    assert pd.Index(back["doy"].values).is_monotonic_increasing
