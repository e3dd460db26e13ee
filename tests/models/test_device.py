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
