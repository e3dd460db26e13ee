"""Cloud-mask policy: classes, dilation, NaN handling, dask equality."""

from __future__ import annotations

import numpy as np
import pytest

from agrostress.preprocess.mask import (
    DEFAULT_DROP,
    CloudMaskPolicy,
    apply_mask,
    dilate,
    scl_valid,
    valid_mask,
)
from tests.preprocess.pp_synth import make_cube


def test_policy_defaults_parse_and_settings():
    p = CloudMaskPolicy()
    assert p.drop == DEFAULT_DROP == (0, 1, 3, 8, 9, 10, 11) and p.dilation == 1
    assert CloudMaskPolicy.parse("9, 8,3", dilation=2).drop == (3, 8, 9)
    from agrostress.settings import Settings

    s = Settings(scl_drop=(0, 9), cloud_dilation_px=3)
    assert CloudMaskPolicy.from_settings(s) == CloudMaskPolicy(drop=(0, 9), dilation=3)
    with pytest.raises(ValueError):
        CloudMaskPolicy(drop=(12,))
    with pytest.raises(ValueError):
        CloudMaskPolicy.parse("a,b")


def test_dilation_grows_clouds_not_other_dropped_classes():
    scl = np.full((1, 7, 7), 4, dtype=np.uint8)
    scl[0, 3, 3] = 9  # cloud: grown
    scl[0, 0, 6] = 11  # snow: dropped but not grown
    ok = scl_valid(scl, CloudMaskPolicy(dilation=1))[0]
    assert not ok[2:5, 2:5].any() and ok[1, 1] and ok[5, 5]
    assert not ok[0, 6] and ok[0, 5] and ok[1, 6]
    assert scl_valid(scl, CloudMaskPolicy(dilation=0))[0].sum() == 47
    assert dilate(np.eye(3, dtype=bool)[None], 2).all()


def test_valid_mask_and_apply_mask(cube):
    cube["scl"][2, 1, 1] = 8
    cube["reflectance"][5, 3, 4, 4] = np.nan  # one NaN band invalidates the observation
    ok = valid_mask(cube, CloudMaskPolicy(dilation=0))
    assert not ok[2, 1, 1] and not ok[5, 4, 4] and int((~ok).sum()) == 2
    masked = apply_mask(cube, CloudMaskPolicy(dilation=0))
    assert masked.isel(time=2, y=1, x=1).isnull().all()
    assert masked.isel(time=5, y=4, x=4).isnull().all()


def test_dask_mask_equals_numpy_across_chunk_borders():
    c = make_cube(ny=12, nx=10)
    rng = np.random.default_rng(0)
    c["scl"].values[:] = rng.choice([4, 4, 4, 4, 9, 3, 8, 5], size=c["scl"].shape)
    policy = CloudMaskPolicy(dilation=2)
    a = valid_mask(c, policy).values
    b = valid_mask(c.chunk({"y": 5, "x": 3}), policy).compute().values
    np.testing.assert_array_equal(a, b)
