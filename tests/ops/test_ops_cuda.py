"""The operators and the shipped model on a CUDA device (skipped without one; run on a lent
GPU with ``python -m pytest tests/ops/test_ops_cuda.py``).

Every registered operator must compute on the GPU what it computes on the CPU, in training
and eval mode, and the Fourier unit's dense (matmul) and fft (cuFFT) paths must agree there.
TF32 is switched off so that float32 matmuls and convolutions are comparable to the CPU.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from agrostress.ops import FourierConv1d, fourier_reference
from tests.ops.ops_helpers import ALL_OPS, make, randomize_bn, rel_err, sample

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
]
CUDA = torch.device("cuda")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _no_tf32() -> Iterator[None]:
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@pytest.mark.parametrize(("name", "dims"), ALL_OPS)
@pytest.mark.parametrize("train", [True, False])
def test_op_on_cuda_matches_cpu(name: str, dims: int, train: bool) -> None:
    op = make(name, dims).train(train)
    randomize_bn(op)
    x = sample(dims, batch=4)
    with torch.no_grad():
        ref = op(x)
        gpu = make(name, dims)
        gpu.load_state_dict(op.state_dict())
        out = gpu.to(CUDA).train(train)(x.to(CUDA))
    assert out.device.type == "cuda" and out.shape == ref.shape
    assert rel_err(out.cpu(), ref) <= 1e-4, name


@pytest.mark.parametrize("length", [7, 29, 64, 97])
def test_fourier_paths_agree_on_cuda(length: int) -> None:
    m = FourierConv1d(16).to(CUDA)
    randomize_bn(m)
    x = torch.randn(8, 16, length, device=CUDA)
    for train in (True, False):
        m.train(train)
        for grad in (True, False):
            with torch.set_grad_enabled(grad):
                m.path = "dense"
                dense = m(x)
                m.path = "fft"
                fft = m(x)
                ref = fourier_reference(m, x)
            assert rel_err(dense, ref) <= 1e-5 and rel_err(fft, ref) <= 1e-5


def test_shipped_model_image_path_on_cuda_matches_cpu() -> None:
    """The shipped architecture and weights (read as in ``bench/inference.py``, which also
    works where the geospatial stack is not installed)."""
    sys.path.insert(0, str(ROOT / "bench"))
    from inference import shipped_model

    _, module, t, f = shipped_model(str(ROOT / "models" / "ffdnn"))
    module.eval()
    img = torch.randn(1, t, f, 24, 40)
    with torch.inference_mode():
        cpu = module.forward_image(img)
    module.to(CUDA)  # outside inference mode: the parameters must stay usable by autograd
    with torch.inference_mode():
        gpu = module.forward_image(img.to(CUDA)).cpu()  # time-major path
    with torch.enable_grad():  # the channels-first (training-form) path on the GPU
        gpu_cf = module.forward_image(img.to(CUDA)).detach().cpu()
    module.cpu()
    assert rel_err(gpu, cpu) <= 1e-4 and rel_err(gpu_cf, cpu) <= 1e-4
    assert (gpu.argmax(1) == cpu.argmax(1)).float().mean() >= 0.999
