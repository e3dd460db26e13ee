"""The Fourier unit's compiled inference epilogues equal their torch formulation."""

from __future__ import annotations

import pytest
import torch

from agrostress.numba_threads import run_kernel
from agrostress.ops import FourierConv1d, fourier_reference
from agrostress.ops._epilogues import (
    _BIAS_RELU,
    _RELU_LOCAL_GLOBAL,
    bias_relu_,
    relu_local_global,
    supported,
)
from tests.ops.ops_helpers import randomize_bn, rel_err


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bias_relu_matches_torch_and_keeps_nan(dtype: torch.dtype) -> None:
    a = torch.randn(5, 7, 13, dtype=dtype)
    a[1, 2, 3] = float("nan")
    bias = torch.randn(7, dtype=dtype)
    want = torch.relu(a + bias[:, None])
    got = bias_relu_(a.clone(), bias)
    torch.testing.assert_close(got, want, equal_nan=True, rtol=0, atol=0)
    assert torch.isnan(got[1, 2, 3])


@pytest.mark.parametrize(("c_l", "c_g"), [(7, 1), (3, 5), (0, 8), (4, 0)])
def test_relu_local_global_matches_torch(c_l: int, c_g: int) -> None:
    local_l, local_g, g = torch.randn(4, c_l, 11), torch.randn(4, c_g, 11), torch.randn(4, c_g, 11)
    if c_g:
        local_g[0, -1, 0] = float("nan")
    want = torch.cat([local_l, local_g + g], dim=1).relu()
    out = torch.full((4, c_l + c_g, 11), 7.0)
    assert relu_local_global(local_l, local_g, g, out) is out
    torch.testing.assert_close(out, want, equal_nan=True, rtol=0, atol=0)
    if c_g:
        assert torch.isnan(out[0, -1, 0])


def test_serial_and_parallel_builds_agree() -> None:
    a, bias = torch.randn(33, 6, 29), torch.randn(6)
    local_l, local_g, g = torch.randn(33, 3, 29), torch.randn(33, 3, 29), torch.randn(33, 3, 29)
    res = []
    for build in (0, 1):
        b = a.clone()
        _BIAS_RELU[build](b.numpy(), bias.numpy())
        out = torch.empty(33, 6, 29)
        _RELU_LOCAL_GLOBAL[build](local_l.numpy(), local_g.numpy(), g.numpy(), out.numpy())
        res.append((b, out))
    for x, y in zip(*res, strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=0)
    run_kernel(_BIAS_RELU, a.clone().numpy(), bias.numpy())  # the dispatcher takes either


def test_shape_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="bias_relu_"):
        bias_relu_(torch.randn(2, 3, 4), torch.randn(4))
    with pytest.raises(ValueError, match="relu_local_global"):
        relu_local_global(torch.randn(2, 3, 4), torch.randn(2, 4, 4), torch.randn(2, 4, 4),
                          torch.empty(2, 3, 4))
    with pytest.raises(ValueError, match="relu_local_global"):
        relu_local_global(torch.randn(2, 3, 4), torch.randn(2, 1, 4), torch.randn(2, 2, 4),
                          torch.empty(2, 4, 4))


def test_supported_only_for_plain_cpu_float_tensors() -> None:
    a = torch.randn(2, 3, 4)
    assert supported(a, torch.randn(3))
    assert not supported(a, torch.randn(3, dtype=torch.float64))  # mixed dtypes
    assert not supported(a.to(torch.bfloat16))
    assert not supported(a.transpose(1, 2))
    assert not supported(a.requires_grad_())


@pytest.mark.parametrize("act", ["relu", None, "gelu"])
@pytest.mark.parametrize("ratio", [0.5, 1.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_inference_path_with_each_epilogue_matches_definition(
    act: str | None, ratio: float, dtype: torch.dtype
) -> None:
    """ReLU takes the compiled epilogues, other activations and dtypes the torch ones; the
    output is written into the result in every case."""
    m = FourierConv1d(10, ratio_global=ratio, act=act).eval().to(dtype)
    randomize_bn(m)
    x = torch.randn(7, 10, 29, dtype=dtype)
    with torch.no_grad():
        fast, ref = m(x), fourier_reference(m, x)
    assert fast.dtype == dtype
    assert rel_err(fast, ref) <= (1e-12 if dtype == torch.float64 else 1e-5)


def test_inference_path_on_a_strided_input() -> None:
    m = FourierConv1d(8).eval()
    randomize_bn(m)
    x = torch.randn(29, 8, 6).permute(2, 1, 0)  # (6, 8, 29), not contiguous
    with torch.no_grad():
        assert rel_err(m(x), fourier_reference(m, x)) <= 1e-5


@pytest.mark.parametrize("act", ["relu", None, "gelu"])
@pytest.mark.parametrize("ratio", [0.5, 1.0])
def test_chunked_inference_fills_every_chunk(
    act: str | None, ratio: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks finished into the output, by the compiled or the torch epilogue (a ragged
    last chunk included)."""
    import agrostress.ops.fourier as fourier

    m = FourierConv1d(10, ratio_global=ratio, act=act).eval()
    randomize_bn(m)
    monkeypatch.setattr(fourier, "INFERENCE_CHUNK_BYTES", 10 * 13 * 4 * 8)  # 8 samples
    x = torch.randn(21, 10, 13)
    with torch.no_grad():
        fast, ref = m(x), fourier_reference(m, x)
    assert rel_err(fast, ref) <= 1e-5
