"""The photochemical filter: parameters, inversion behaviour, and agreement with truth."""

from __future__ import annotations

import json

import numpy as np
import pytest

from agrostress.cube import BANDS
from agrostress.preprocess.calibrate import evaluate, fit, samples
from agrostress.preprocess.photochemical import (
    PARAMS_FILE,
    PhotochemicalFilter,
    PhotochemicalParams,
)


def test_shipped_params_are_versioned_and_calibrated():
    p = PhotochemicalParams.load()
    raw = json.loads(PARAMS_FILE.read_text())
    assert raw["version"] == p.version and not p.version.startswith("0")
    assert 0.8 < p.soil_line_slope < 2 and p.alpha > 0 and p.wdvi_inf > 0
    for k in ("lai_r", "lai_rmse", "lcc_r", "lcc_rmse", "seeds", "command"):
        assert k in p.fit


def test_params_roundtrip_and_validation(tmp_path):
    p = PhotochemicalParams.load()
    q = PhotochemicalParams.load(p.save(tmp_path / "p.json"))
    assert q == p
    with pytest.raises(ValueError):
        PhotochemicalParams("x", 1.2, -0.1, 0.5, 1.0, 0.0)
    with pytest.raises(ValueError):
        PhotochemicalParams("x", 1.2, 0.3, 0.5, 1.0, 0.0, lcc_index="NOPE")


def test_lai_inverts_clair_and_is_clipped():
    p = PhotochemicalParams("t", 1.2, 0.4, 0.5, -30.0, -18.0, lcc_index="TCARIOSAVI")
    f = PhotochemicalFilter(p)
    lai = np.array([0.0, 0.5, 1.0, 3.0, 6.0], dtype=np.float32)
    wdvi = p.wdvi_inf * (1 - np.exp(-p.alpha * lai))
    red = np.full_like(lai, 0.05)
    bands = {"B04": red, "B08": (wdvi + p.soil_line_slope * red).astype(np.float32)}
    np.testing.assert_allclose(f.lai(bands), lai, atol=2e-4)
    extreme = {
        "B04": np.array([0.05, 0.3, np.nan], np.float32),
        "B08": np.array([0.9, 0.0, 0.4], np.float32),
    }
    out = f.lai(extreme)
    assert out[0] == pytest.approx(p.lai_max, rel=1e-4) and out[1] == 0 and np.isnan(out[2])


def test_lcc_is_clipped_and_finite_or_nan():
    f = PhotochemicalFilter()
    rng = np.random.default_rng(0)
    b = {k: rng.uniform(-0.02, 0.6, 500).astype(np.float32) for k in BANDS}
    out = f(b)
    for v in out.values():
        assert not np.isinf(v).any() and v.dtype == np.float32
    lcc = out["LCC"][np.isfinite(out["LCC"])]
    assert lcc.min() >= 0 and lcc.max() <= f.params.lcc_max


@pytest.mark.slow
def test_filter_tracks_truth_on_unseen_scene(small_scene):
    """Shipped parameters on a scene not used for calibration (seed 7): r ≥ 0.8."""
    ds, _ = small_scene
    data = samples(ds)
    stats = evaluate(PhotochemicalParams.load(), data)
    assert stats["lai_r"] >= 0.8, stats
    assert stats["lcc_r"] >= 0.8, stats
    assert stats["n_lai"] > 1000 and stats["n_lcc"] > 1000


@pytest.mark.slow
def test_calibration_recovers_constants(small_scene):
    ds, _ = small_scene
    params, per = fit(samples(ds))
    assert set(per) == {"TCARIOSAVI", "TCARIOSAVI705", "MCARIOSAVI705"}
    shipped = PhotochemicalParams.load()
    assert params.soil_line_slope == pytest.approx(shipped.soil_line_slope, rel=0.1)
    assert evaluate(params, samples(ds))["lai_r"] >= 0.8
