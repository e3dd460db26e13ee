"""float64 gradcheck on tiny sizes for the custom computations."""

from __future__ import annotations

import pytest
import torch
from torch.autograd import gradcheck

from agrostress.ops import create_op
from agrostress.ops._common import dw_conv1d, irfft_real, rfft_real
from agrostress.ops.hyperzzw import hyper_conv1d
from agrostress.ops.lsconv import ska

D = torch.float64


def _x(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, dtype=D, requires_grad=True)


@pytest.mark.parametrize("path", ["dense", "fft", "direct"])
def test_depthwise_conv_paths(path: str) -> None:
    x, w = _x(2, 3, 6), _x(3, 4)
    assert gradcheck(lambda x, w: dw_conv1d(x, w, None, 1, 2, path), (x, w))


@pytest.mark.parametrize("path", ["dense", "fft"])
def test_real_dft_pair(path: str) -> None:
    x = _x(2, 3, 7)
    assert gradcheck(lambda x: irfft_real(torch.tanh(rfft_real(x, 14, path)), 7, 14, path), (x,))


@pytest.mark.parametrize("path", ["dense", "fft"])
def test_hyper_conv(path: str) -> None:
    z, k = _x(2, 2, 5), _x(2, 2, 5)
    assert gradcheck(lambda z, k: hyper_conv1d(z, k, path), (z, k))


def test_ska() -> None:
    x, w = _x(1, 4, 5), _x(1, 2, 3, 5)
    assert gradcheck(ska, (x, w))


@pytest.mark.parametrize(
    ("name", "kw"),
    [
        ("fourier", {"path": "dense"}),
        ("fourier", {"path": "fft", "padding": "linear"}),
        ("aff", {"path": "dense"}),
        ("dcls", {}),
        ("dilated_reparam", {"kernel_size": 5}),
        ("lka", {}),
        ("hyperzzw", {"path": "dense"}),
        ("sgconv", {"path": "dense", "bidirectional": True}),
    ],
)
@pytest.mark.parametrize("train", [True, False])
def test_whole_ops(name: str, kw: dict, train: bool) -> None:
    op = create_op(name, channels=4, length=5, **kw).double().train(train)
    x = _x(2, 4, 5)
    assert gradcheck(op, (x,), eps=1e-6, atol=1e-5)
