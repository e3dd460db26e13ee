"""``--device``: where inference runs; a device that does not exist is a clear error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from agrostress.cli import app
from agrostress.models import load
from agrostress.models.device import DeviceError, resolve_device

NO_CUDA = not torch.cuda.is_available()


def test_resolve_device() -> None:
    assert resolve_device(None) == torch.device("cpu")
    assert resolve_device("CPU") == torch.device("cpu")
    for bad in ("tpu", "gpu", "cuda:x"):
        with pytest.raises(DeviceError, match="device"):
            resolve_device(bad)


@pytest.mark.skipif(not NO_CUDA, reason="a CUDA device is present")
def test_missing_cuda_is_a_clear_error() -> None:
    with pytest.raises(DeviceError, match="no CUDA device here"):
        resolve_device("cuda")


def test_model_on_cpu_device_gives_the_same_answer(tiny_model_dir: Path) -> None:
    a, b = load(tiny_model_dir), load(tiny_model_dir).to("cpu")
    x = np.random.default_rng(0).normal(size=(64, a.card.n_steps, a.card.n_features))
    x = x.astype(np.float32)
    assert b.device == "cpu" and b.cpu_module() is b.module
    np.testing.assert_array_equal(a.predict_proba(x), b.predict_proba(x))


@pytest.mark.skipif(NO_CUDA, reason="no CUDA device")
def test_model_on_cuda_matches_cpu(tiny_model_dir: Path) -> None:  # pragma: no cover - GPU
    a, b = load(tiny_model_dir), load(tiny_model_dir).to("cuda")
    x = np.random.default_rng(0).normal(size=(64, a.card.n_steps, a.card.n_features))
    x = x.astype(np.float32)
    np.testing.assert_allclose(a.predict_proba(x), b.predict_proba(x), atol=1e-5)
    assert next(b.cpu_module().parameters()).device.type == "cpu"


@pytest.mark.skipif(not NO_CUDA, reason="a CUDA device is present")
def test_cli_refuses_a_missing_device(tiny_model_dir: Path, small_scene: object,
                                      tmp_path: Path) -> None:
    from agrostress.cube import write_zarr

    cube = write_zarr(small_scene[0], tmp_path / "cube.zarr")  # type: ignore[index]
    res = CliRunner().invoke(app, ["predict", "--model", str(tiny_model_dir), "--cube",
                                   str(cube), "--out", str(tmp_path / "out"), "--device",
                                   "cuda"])
    assert res.exit_code == 2, res.output
    assert "no CUDA device here" in res.output
    assert not (tmp_path / "out").exists()
    ok = CliRunner().invoke(app, ["predict", "--model", str(tiny_model_dir), "--cube",
                                  str(cube), "--out", str(tmp_path / "out"), "--device", "cpu",
                                  "--no-plots", "--no-not-wheat"])
    assert ok.exit_code == 0, ok.output


def test_ood_score_in_row_blocks_equals_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """The out-of-distribution score is computed in blocks of rows; it is each pixel's own,
    so any block size gives the same map up to float rounding in the projection (BLAS picks
    its kernel by block size); the probabilities do not change at all."""
    from agrostress.models import checkpoint
    from agrostress.settings import REPO_ROOT

    m = load(REPO_ROOT / "models" / "ffdnn")
    t, f = m.card.n_steps, m.card.n_features
    rng = np.random.default_rng(3)
    mean, std = np.asarray(m.norm.mean, np.float32), np.asarray(m.norm.std, np.float32)
    x = (mean[None, :, None, None] + std[None, :, None, None]
         * rng.normal(size=(t, f, 37, 29)).astype(np.float32))
    m.set_reference(np.repeat(mean[None], t, axis=0))
    monkeypatch.setattr(checkpoint, "OOD_ROW_PIXELS", 10**9)
    p1, one = m.predict_image(x)
    monkeypatch.setattr(checkpoint, "OOD_ROW_PIXELS", 60)  # blocks of 2 rows
    p2, blocks = m.predict_image(x)
    np.testing.assert_allclose(one, blocks, rtol=1e-6)
    np.testing.assert_array_equal(p1, p2)
