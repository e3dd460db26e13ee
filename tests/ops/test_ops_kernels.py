"""Every kernel-based op equals a direct ``F.conv1d`` built from its materialised kernel,
on every execution path."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from agrostress.ops import create_op
from agrostress.ops._common import causal_to_corr, dw_conv1d, long_conv1d, toeplitz
from agrostress.ops.hyperzzw import hyper_conv1d
from tests.ops.ops_helpers import rel_err

PATHS = ["dense", "direct", "fft"]


def conv1d_ref(x: torch.Tensor, w: torch.Tensor, pad_left: int, dilation: int = 1) -> torch.Tensor:
    """Depthwise cross-correlation with explicit zero padding (the definition)."""
    k_eff = dilation * (w.shape[-1] - 1) + 1
    xp = F.pad(x, (pad_left, k_eff - 1 - pad_left))
    return F.conv1d(xp, w[:, None], dilation=dilation, groups=w.shape[0])


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    ("k", "dilation", "pad_left"), [(7, 1, 3), (3, 3, 3), (5, 2, 0), (4, 1, 3)]
)
@pytest.mark.parametrize("length", [4, 13, 29])
def test_dw_conv1d_paths(path: str, k: int, dilation: int, pad_left: int, length: int) -> None:
    x, w, b = torch.randn(3, 6, length), torch.randn(6, k), torch.randn(6)
    y = dw_conv1d(x, w, b, pad_left, dilation, path)
    torch.testing.assert_close(
        y, conv1d_ref(x, w, pad_left, dilation) + b[:, None], rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("length", [5, 16, 29])
def test_long_kernels_up_to_2l_minus_1(path: str, length: int) -> None:
    x = torch.randn(2, 4, length)
    k0, k1 = torch.randn(4, length), torch.randn(4, length)
    for w, pad in (causal_to_corr(k0), causal_to_corr(k0, k1)):
        torch.testing.assert_close(
            long_conv1d(x, w, pad, path), conv1d_ref(x, w, pad), rtol=1e-4, atol=1e-5
        )
    # causal semantics: y[t] = sum_j k0[j] x[t - j]
    w, pad = causal_to_corr(k0)
    y = long_conv1d(x, w, pad, path)
    t = length - 1
    want = sum(k0[:, j] * x[:, :, t - j] for j in range(length))
    torch.testing.assert_close(y[:, :, t], want, rtol=1e-4, atol=1e-5)


def test_toeplitz_matrix_is_the_convolution() -> None:
    w = torch.randn(3, 5)
    mats = toeplitz(w, 9, 2, 1)
    x = torch.randn(2, 3, 9)
    torch.testing.assert_close(torch.einsum("cts,bcs->bct", mats, x), conv1d_ref(x, w, 2))


@pytest.mark.parametrize("name", ["sgconv", "long_conv"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("path", PATHS)
def test_global_conv_ops_equal_conv1d_with_materialised_kernel(
    name: str, bidirectional: bool, path: str
) -> None:
    length = 29
    op = create_op(name, channels=8, length=length, bidirectional=bidirectional, path=path)
    x = torch.randn(3, 8, length)
    w, pad = op.kernel(length)
    assert w.shape == (8, 2 * length - 1 if bidirectional else length)
    ref = op.output(conv1d_ref(x, w, pad) + op.D[:, None] * x)
    assert rel_err(op(x), ref) < 1e-5


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dims", [1])
def test_local_kernel_ops_equal_conv1d(path: str, dims: int) -> None:
    x = torch.randn(3, 16, 23)
    # depthwise conv
    op = create_op("dwconv", channels=16, path=path)
    torch.testing.assert_close(
        op(x), conv1d_ref(x, op.weight, 3) + op.bias[:, None], rtol=1e-4, atol=1e-5
    )
    # weighted conv: W * Phi
    op = create_op("weighted_conv", channels=16, path=path)
    k = op.weight * op.phi()
    torch.testing.assert_close(op(x), conv1d_ref(x, k, 2) + op.bias[:, None], rtol=1e-4, atol=1e-5)
    # DCLS: Gaussian-interpolated kernel
    op = create_op("dcls", channels=16, path=path)
    torch.testing.assert_close(
        op(x), conv1d_ref(x, op.kernel(), 6) + op.bias[:, None], rtol=1e-4, atol=1e-5
    )
    # CP conv: the materialised full kernel
    op = create_op("cp_conv", channels=16, path=path)
    torch.testing.assert_close(
        op(x), F.conv1d(x, op.dense_weight(), op.bias, padding=3), rtol=1e-4, atol=1e-5
    )
    # LKA: DW5 -> DW7 dilation 3 -> 1x1 -> gate
    op = create_op("lka", channels=16, path=path)
    a = F.conv1d(x, op.w0[:, None], op.b0, padding=2, groups=16)
    a = F.conv1d(a, op.w_sp[:, None], op.b_sp, padding=9, dilation=3, groups=16)
    a = F.conv1d(a, op.w1[..., None], op.b1)
    torch.testing.assert_close(op(x), x * a, rtol=1e-4, atol=1e-5)
    # Inception DW: identity / k=3 / k=11
    op = create_op("inception_dw", channels=16, path=path)
    g = op.g
    ref = torch.cat(
        [
            x[:, : 16 - 2 * g],
            F.conv1d(x[:, 16 - 2 * g : 16 - g], op.w_sq[:, None], op.bias[:g], padding=1, groups=g),
            F.conv1d(x[:, 16 - g :], op.w_band[:, None], op.bias[g:], padding=5, groups=g),
        ],
        1,
    )
    torch.testing.assert_close(op(x), ref, rtol=1e-4, atol=1e-5)


def test_dcls_gaussian_kernel_definition() -> None:
    op = create_op("dcls", channels=2, kernel_count=3, dilated_kernel_size=7)
    k = op.kernel()
    lim, s = 3, op.sigma[0].abs() + op.sigma_min
    for c in range(2):
        for j in range(7):
            want = 0.0
            for i in range(3):
                g = torch.exp(
                    -0.5 * ((torch.arange(7.0) - (op.positions[c, i] + lim)) / s[c, i]) ** 2
                )
                want = want + op.weight[c, i] * g[j] / (g.sum() + 1e-7)
            torch.testing.assert_close(k[c, j], want)


@pytest.mark.parametrize("path", ["dense", "fft"])
@pytest.mark.parametrize("length", [6, 13, 29])
def test_hyperzzw_equals_per_sample_conv1d(path: str, length: int) -> None:
    op = create_op("hyperzzw", channels=4, length=length, path=path)
    z = torch.randn(3, 4, length)
    k = op.context_kernel(z)
    torch.testing.assert_close(k, z * op.hyper_kernel((length,)))
    pad = (length - 1) // 2
    ref = F.conv1d(
        F.pad(z.reshape(1, 12, length), (pad, length - 1 - pad)),
        k.reshape(12, 1, length),
        groups=12,
    )
    ref = ref.view(3, 4, length)
    torch.testing.assert_close(hyper_conv1d(z, k, path), ref, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(op(z), op.output(ref / length), rtol=1e-4, atol=1e-5)
