"""Indices come from spyndex formulas and are robust to zeros and negatives."""

from __future__ import annotations

import numpy as np
import pytest
import spyndex

from agrostress.cube import BANDS
from agrostress.preprocess.indices import (
    DEFAULT_INDICES,
    SYMBOL_TO_BAND,
    available_indices,
    compute_index,
    compute_indices,
    default_constants,
    index_def,
)


@pytest.fixture
def sample():
    rng = np.random.default_rng(42)
    return {b: rng.uniform(0.02, 0.5, 64).astype(np.float32) for b in BANDS}


def test_default_indices_equal_spyndex(sample):
    spy = [n for n in DEFAULT_INDICES if n != "CCCI"]
    params = {s: sample[b].astype(np.float64) for s, b in SYMBOL_TO_BAND.items()}
    params["sla"] = 1.3
    ref = spyndex.computeIndex(index=spy, params=params)
    ours = compute_indices(spy, sample, {"sla": 1.3})
    for i, name in enumerate(spy):
        assert ours[name].dtype == np.float32
        np.testing.assert_allclose(ours[name], ref[i], rtol=2e-4, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("name", ["EVI", "SAVI", "IRECI", "GNDVI", "MSI", "NDCI", "MCARIOSAVI705"])
def test_other_spyndex_indices_with_default_constants(sample, name):
    params = {s: sample[b].astype(np.float64) for s, b in SYMBOL_TO_BAND.items()}
    params.update(
        {k: v for k, v in default_constants().items() if k in spyndex.indices[name].bands}
    )
    ref = spyndex.computeIndex(index=name, params=params)
    np.testing.assert_allclose(compute_index(name, sample), ref, rtol=2e-4, atol=1e-5)


def test_ccci_is_ndre_over_ndvi(sample):
    r = compute_indices(["CCCI", "NDREI", "NDVI"], sample)
    np.testing.assert_allclose(r["CCCI"], r["NDREI"] / r["NDVI"], rtol=1e-5)


def test_zero_and_negative_reflectance_give_nan_not_inf():
    b = {k: np.array([0.0, -0.01, 0.0, 0.2], dtype=np.float32) for k in BANDS}
    out = compute_indices([*DEFAULT_INDICES, "TCARIOSAVI705", "MCARIOSAVI705"], b)
    for name, v in out.items():
        assert not np.isinf(v).any(), name
        assert v.dtype == np.float32


def test_names_and_errors():
    assert set(DEFAULT_INDICES) <= set(available_indices())
    assert index_def("ndvi").name == "NDVI"
    assert index_def("NDREI").bands == ("B05", "B08")
    with pytest.raises(ValueError, match="unknown index"):
        index_def("NOPE")
    with pytest.raises(ValueError, match="cannot be computed"):
        index_def("NDVIT")  # needs thermal
