"""Operator-specific definitions: SKA, AFF, FDConv, local attention, SGConv, long conv."""

from __future__ import annotations

import itertools
import math
import warnings

import pytest
import torch
import torch.nn.functional as F

from agrostress.ops import create_op, optim_param_groups
from agrostress.ops.lsconv import ska
from tests.ops.ops_helpers import rel_err


@pytest.mark.parametrize("dims", [1, 2])
def test_ska_matches_explicit_loops(dims: int) -> None:
    bsz, c, g, k = 2, 6, 3, 3
    spatial = (7,) if dims == 1 else (4, 5)
    x = torch.randn(bsz, c, *spatial)
    w = torch.randn(bsz, g, k**dims, *spatial)
    y = ska(x, w)
    want = torch.zeros_like(x)
    for b, ch in itertools.product(range(bsz), range(c)):
        for pos in itertools.product(*[range(n) for n in spatial]):
            acc = 0.0
            for t, offs in enumerate(itertools.product(range(k), repeat=dims)):
                src = tuple(p + o - k // 2 for p, o in zip(pos, offs, strict=True))
                if all(0 <= s < n for s, n in zip(src, spatial, strict=True)):
                    acc += x[(b, ch, *src)] * w[(b, ch % g, t, *pos)]
            want[(b, ch, *pos)] = acc
    torch.testing.assert_close(y, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("length", [7, 12, 29])
@pytest.mark.parametrize("padding", ["circular", "linear"])
def test_aff_paths_agree_and_zero_mask_is_identity(length: int, padding: str) -> None:
    op = create_op("aff", channels=16, padding=padding)
    x = torch.randn(3, 16, length)
    op.path = "dense"
    dense = op(x)
    op.path = "fft"
    assert rel_err(dense, op(x)) < 1e-5
    with torch.no_grad():
        for p in op.parameters():
            p.zero_()
    torch.testing.assert_close(op(x), x)


def test_aff_is_a_global_filter_when_the_mask_is_constant() -> None:
    """With an input-independent mask the AFF output is x + a circular depthwise conv."""
    op = create_op("aff", channels=8, num_blocks=1)
    with torch.no_grad():
        op.w1.zero_()
        op.b1.zero_()
        op.w2.zero_()
        op.b2.normal_(0, 1)
    x = torch.randn(2, 8, 10)
    y = op(x) - x
    m = torch.complex(op.b2[0, 0], op.b2[1, 0])
    m = F.softshrink(m.real, 0.01) + 1j * F.softshrink(m.imag, 0.01)
    want = torch.fft.irfft(torch.fft.rfft(x, norm="ortho") * m[:, None], n=10, norm="ortho")
    torch.testing.assert_close(y, want, rtol=1e-4, atol=1e-5)


def test_fdconv_starts_as_its_base_convolution() -> None:
    op = create_op("fdconv", channels=8, dims=2, kernel_num=4)
    x = torch.randn(2, 8, 12, 12)
    base = op.group_kernels().sum(0) / op.kernel_num
    ref = F.conv2d(x, base, op.bias, padding=1)
    assert rel_err(op(x), ref) < 1e-4


def test_fdconv_kernels_are_dynamic_and_groups_disjoint() -> None:
    op = create_op("fdconv", channels=8, dims=2)
    masks = op.group_masks
    torch.testing.assert_close(masks.sum(0), torch.ones_like(masks[0]))  # disjoint cover
    with torch.no_grad():
        for fc in (op.fc_channel, op.fc_kernel, op.fc_spatial):
            fc.weight.normal_(0, 0.5)
    kernels = op.sample_kernels(torch.randn(2, 8, 6, 6))
    assert rel_err(kernels[0], kernels[1]) > 1e-3


def test_fdconv_small_channels_are_explicit() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        op = create_op("fdconv", channels=8, dims=2)  # default: full FDConv, no warning
    assert op.dynamic
    with pytest.warns(UserWarning, match="plain convolution"):
        plain = create_op("fdconv", channels=8, dims=2, plain_conv_max_channels=16)
    assert not plain.dynamic
    x = torch.randn(1, 8, 5, 5)
    torch.testing.assert_close(plain(x), F.conv2d(x, plain.weight, plain.bias, padding=1))
    assert create_op("fdconv", channels=32, dims=2, plain_conv_max_channels=16).dynamic


def _attention_reference(op, x: torch.Tensor) -> torch.Tensor:
    bsz, c, length = x.shape
    h, r = op.heads, op.radius
    t = x.transpose(1, 2)
    q, k, v = op.qkv(t).chunk(3, dim=-1)
    out = torch.zeros(bsz, length, c)
    d = c // h
    for b, head, i in itertools.product(range(bsz), range(h), range(length)):
        sl = slice(head * d, (head + 1) * d)
        js = [j for j in range(length) if abs(j - i) <= r]
        scores = torch.stack(
            [q[b, i, sl] @ k[b, j, sl] / math.sqrt(d) + op.rpb[head, j - i + r] for j in js]
        )
        a = torch.softmax(scores, 0)
        out[b, i, sl] = sum(a[n] * v[b, j, sl] for n, j in enumerate(js))
    return op.proj(out).transpose(1, 2)


def test_local_attention_matches_definition_and_is_local() -> None:
    op = create_op("local_attention", channels=8, heads=2, window=5)
    x = torch.randn(2, 8, 9)
    torch.testing.assert_close(op(x), _attention_reference(op, x), rtol=1e-4, atol=1e-5)
    x2 = x.clone()
    x2[:, :, 8] += 10.0  # outside the window of positions 0..5
    torch.testing.assert_close(op(x2)[..., :6], op(x)[..., :6])
    assert not torch.allclose(op(x2)[..., 6:], op(x)[..., 6:])


def test_linear_attention_matches_its_definition() -> None:
    """TransNormer's NormAttention: φ(Q)(φ(K)ᵀV) per head with φ = 1 + elu, no softmax and no
    scaling, then LayerNorm and the output projection; the linear and dense orders agree."""
    import torch.nn.functional as F

    torch.manual_seed(0)
    x = torch.randn(2, 8, 13)
    lin = create_op("linear_attention", channels=8, heads=2, path="linear")
    dense = create_op("linear_attention", channels=8, heads=2, path="dense")
    dense.load_state_dict(lin.state_dict())
    torch.testing.assert_close(lin(x), dense(x), atol=1e-4, rtol=1e-4)
    t = x.transpose(1, 2)  # (B, N, C)
    q, k, v = lin.qkv(t).chunk(3, dim=-1)
    heads = []
    for h in range(2):
        sl = slice(4 * h, 4 * h + 4)
        a = (F.elu(q[..., sl]) + 1) @ (F.elu(k[..., sl]) + 1).transpose(1, 2)  # no softmax
        heads.append(a @ v[..., sl])
    want = lin.proj(lin.norm(torch.cat(heads, dim=-1))).transpose(1, 2)
    torch.testing.assert_close(lin(x), want, atol=1e-4, rtol=1e-4)
    two = create_op("linear_attention", channels=8, dims=2)
    assert two(torch.randn(2, 8, 5, 6)).shape == (2, 8, 5, 6)
    with pytest.raises(ValueError, match="path"):
        create_op("linear_attention", channels=8, path="fft")


def test_local_attention_2d_window() -> None:
    op = create_op("local_attention", channels=8, dims=2, window=3)
    x = torch.randn(1, 8, 6, 6)
    x2 = x.clone()
    x2[:, :, 5, 5] += 10.0
    y, y2 = op(x), op(x2)
    torch.testing.assert_close(y2[..., :4, :], y[..., :4, :])  # rows beyond radius 1
    assert not torch.allclose(y2[..., 4:, 4:], y[..., 4:, 4:])


def test_sgconv_scales_and_fixed_kernel_norm() -> None:
    op = create_op("sgconv", channels=4, length=29, kernel_dim=8)
    assert op.n_scales == 3 and len(op.kernels) == 3
    assert "kernel_norm" in op.state_dict()
    full = op._raw_kernel() / op.kernel_norm
    torch.testing.assert_close(full.norm(dim=-1), torch.ones(4))
    norm = op.kernel_norm.clone()
    with torch.no_grad():
        op.kernels[0].mul_(3)
    torch.testing.assert_close(op.kernel_norm, norm)  # fixed at initialisation
    # the decay makes later scales smaller (decay 2 per scale)
    k = op.causal_kernels(64)
    assert k[:, :8].abs().mean() > k[:, 16:32].abs().mean()


def test_long_conv_squash_smooth_and_param_groups() -> None:
    op = create_op("long_conv", channels=4, length=20, lam=0.5, smooth=False)
    with torch.no_grad():
        op.kernel_param.copy_(torch.linspace(-1, 1, 20).expand(4, 20))
    k = op.causal_kernels(20)
    raw = op.kernel_param
    torch.testing.assert_close(k, torch.sign(raw) * (raw.abs() - 0.5).clamp_min(0))
    op_s = create_op("long_conv", channels=4, length=20, lam=0.0, smooth=True)
    ks = op_s.causal_kernels(20)
    assert ks.diff(dim=-1).abs().mean() < op_s.kernel_param.diff(dim=-1).abs().mean()
    groups = optim_param_groups(op, lr=1e-2, weight_decay=0.05)
    special = [g for g in groups if any(p is op.kernel_param for p in g["params"])]
    assert special and special[0]["lr"] == 1e-3 and special[0]["weight_decay"] == 0.0
    assert sum(len(g["params"]) for g in groups) == len(list(op.parameters()))


def test_long_conv_smooths_then_squashes() -> None:
    """The reference order (safari LongConvKernel): moving average first, then the squash —
    so a lone spike spreads to its neighbours before the threshold, and the squash sets the
    final sparsity (every surviving tap exceeds nothing below ``lam`` after smoothing)."""
    import torch.nn.functional as F

    op = create_op("long_conv", channels=1, length=20, lam=0.001, smooth=True)
    with torch.no_grad():
        op.kernel_param.zero_()
        op.kernel_param[0, 10] = 0.014  # one spike
    k = op.causal_kernels(20)
    smooth = F.avg_pool1d(op.kernel_param[:, None], 7, stride=1, padding=3,
                          count_include_pad=False)[:, 0]
    want = torch.sign(smooth) * (smooth.abs() - 0.001).clamp_min(0)
    torch.testing.assert_close(k, want)
    assert float(k[0, 10]) == pytest.approx(0.014 / 7 - 0.001)  # squash first: 0.013 / 7


def test_convnext_takes_any_mixer() -> None:
    x = torch.randn(2, 16, 29)
    for mixer in ("dwconv", "fourier", "lka", "sgconv"):
        block = create_op("convnext", channels=16, length=29, mixer=mixer)
        y = block(x)
        assert y.shape == x.shape
        assert (y - x).abs().max() < 1e-3  # layer scale 1e-6 at init


def test_spartan_requires_even_channels() -> None:
    with pytest.raises(ValueError, match="even"):
        create_op("spartan", channels=9)


def test_gradients_work_after_inference_mode_calls():
    """Cached constants built under inference_mode must not break a later backward pass."""
    import torch

    from agrostress.ops import create_op

    for name in ("fourier", "long_conv", "dwconv"):
        op = create_op(name, channels=4, length=13)
        x = torch.randn(2, 4, 13)
        with torch.inference_mode():
            op(x)
        y = op(x.clone().requires_grad_(True))
        y.sum().backward()
