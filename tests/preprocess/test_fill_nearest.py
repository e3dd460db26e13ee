"""The compiled nearest-value fill equals its numpy reference on strided views."""

from __future__ import annotations

import numpy as np

from agrostress.preprocess.features import _fill_nearest_np, fill_nearest


def test_ties_take_the_earlier_value_and_empty_series_stay_nan() -> None:
    x = np.array([[np.nan, 1.0, np.nan], [2.0, np.nan, np.nan], [np.nan, np.nan, np.nan],
                  [4.0, 3.0, np.nan]], dtype=np.float32)[:, None, :]  # (G=4, F=1, P=3)
    fill_nearest(x)
    np.testing.assert_array_equal(x[:, 0, 0], [2.0, 2.0, 2.0, 4.0])  # tie at g=2 → earlier
    np.testing.assert_array_equal(x[:, 0, 1], [1.0, 1.0, 3.0, 3.0])  # nearer the later
    assert np.isnan(x[:, 0, 2]).all()


def test_compiled_equals_reference_on_views() -> None:
    rng = np.random.default_rng(0)
    for trial in range(40):
        g, f, p = (int(v) for v in rng.integers(1, 30, size=3))
        base = rng.normal(size=(g, f, p + 20)).astype(np.float32 if trial % 2 else np.float64)
        base[rng.random(base.shape) < rng.random()] = np.nan
        a, b = base.copy(), base.copy()
        fill_nearest(a[..., 5:5 + p])  # a strided view, filled in place
        _fill_nearest_np(b[..., 5:5 + p])
        np.testing.assert_array_equal(a, b)
    flat = np.array([np.nan, 1.0, np.nan])  # other shapes: the numpy path
    np.testing.assert_array_equal(fill_nearest(flat), [1.0, 1.0, 1.0])
