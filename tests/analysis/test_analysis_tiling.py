"""Streaming: a cube larger than one tile (or chunked with dask) gives single-pass results."""

from __future__ import annotations

import numpy as np
import pytest

from agrostress.analysis import analyse
from tests.analysis.analysis_helpers import untrained_model


def _same(a, b) -> None:
    np.testing.assert_array_equal(a.classes.values, b.classes.values)
    np.testing.assert_array_equal(a.probabilities.values, b.probabilities.values)
    np.testing.assert_array_equal(a.confidence.values, b.confidence.values)
    np.testing.assert_array_equal(a.insufficient.values, b.insufficient.values)
    assert a.fields == b.fields
    assert a.totals == b.totals
    # trajectory means are sums over tiles: equal up to floating-point summation order
    for key in ("fields", "references"):
        assert _flat(a.trajectories[key]) == pytest.approx(_flat(b.trajectories[key]), rel=1e-12)


def _flat(obj) -> list[float]:
    if isinstance(obj, dict):
        return [v for k in sorted(obj) for v in _flat(obj[k])]
    if isinstance(obj, list):
        return [v for item in obj for v in _flat(item)]
    return [obj] if isinstance(obj, float) else []


def test_tiles_give_identical_results_to_a_single_pass(cube, model):
    single = analyse(cube, model, tile=256, explain=True, explain_pixels=6)
    calls = []
    tiled = analyse(cube, model, tile=16, explain=True, explain_pixels=6,
                    progress=lambda d, n: calls.append((d, n)))
    assert single.meta["tiles"] == 1 and tiled.meta["tiles"] == 9
    assert calls[-1] == (10, 10) and [d for d, _ in calls] == list(range(1, 11))
    _same(single, tiled)
    a, b = single.attributions, tiled.attributions
    # the explained pixels depend on position and seed only, not on the tiling
    np.testing.assert_array_equal(a.pixels.rows, b.pixels.rows)
    np.testing.assert_array_equal(a.pixels.cols, b.pixels.cols)
    np.testing.assert_array_equal(a.pixels.attributions, b.pixels.attributions)
    np.testing.assert_array_equal(a.evidence.values, b.evidence.values)


def test_dask_backed_cube_is_streamed_in_pieces(cube, model):
    lazy = cube.chunk({"time": -1, "band": -1, "y": 13, "x": 17})
    assert lazy["reflectance"].chunks is not None
    single = analyse(cube, model, tile=256)
    streamed = analyse(lazy, model, tile=20)
    assert streamed.meta["tiles"] == 4
    _same(single, streamed)


def test_spatial_model_explains_centre_pixels_of_patches(cube):
    small = cube.isel(y=slice(0, 24), x=slice(0, 24))
    m = untrained_model(small, "spatiotemporal", context=1, channels=8, spatial_op="dwconv")
    r = analyse(small, m, tile=12, explain=True, explain_pixels=2, trajectory_features=None)
    att = r.attributions
    assert att.spatial_model is True
    T, F = len(att.doys), len(att.features)
    assert att.pixels.attributions.shape[1:] == (T, F, 3, 3)
    assert np.asarray(att.fields[0]["heatmap"]).shape == (T, F)
    assert att.completeness["passed"] is True
    assert r.meta["halo"] >= 1
