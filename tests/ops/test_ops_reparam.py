"""Re-parameterised (inference) forms equal their training forms in eval mode."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from agrostress.ops import create_op, reparameterize_model
from agrostress.ops.dilated_reparam import UNIREPLKNET_BRANCHES, DilatedReparam
from tests.ops.ops_helpers import randomize_bn


def branch_sum_reference(m: DilatedReparam, x: torch.Tensor) -> torch.Tensor:
    """The training form written out: per-branch dilated depthwise conv + its BN, summed."""
    dims, c, nb = m.dims, m.channels, len(m.branches)
    conv = F.conv1d if dims == 1 else F.conv2d
    bn = m.bn
    out = 0
    for i, ((k, r), w) in enumerate(zip(m.branches, m.weights, strict=True)):
        y = conv(x, w[:, None], padding=r * (k // 2), dilation=r, groups=c)
        sl = slice(i, None, nb)  # stacked BN channel = c * n_branches + branch
        rm, rv = bn.running_mean[sl].clone(), bn.running_var[sl].clone()
        y = F.batch_norm(y, rm, rv, bn.weight[sl], bn.bias[sl], m.training, 0.0, bn.eps)
        out = out + y
    return out


@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("kernel_size", sorted(UNIREPLKNET_BRANCHES))
def test_dilated_reparam_merge_is_exact(dims: int, kernel_size: int) -> None:
    m = create_op("dilated_reparam", channels=6, dims=dims, kernel_size=kernel_size)
    randomize_bn(m)
    x = torch.randn(3, 6, *((29,) if dims == 1 else (9, 11)))
    m.train()
    torch.testing.assert_close(m(x), branch_sum_reference(m, x), rtol=1e-4, atol=1e-5)
    m.eval()
    ref = branch_sum_reference(m, x)
    torch.testing.assert_close(m(x), ref, rtol=1e-5, atol=1e-6)
    m.reparameterize()
    assert m.deployed and not hasattr(m, "bn")
    assert m.merged_weight.shape == (6, *((kernel_size,) * dims))
    torch.testing.assert_close(m(x), ref, rtol=1e-5, atol=1e-6)


def test_dilate_kernel_inserts_zeros() -> None:
    from agrostress.ops.dilated_reparam import dilate_kernel

    w = torch.tensor([[1.0, 2.0, 3.0]])
    assert dilate_kernel(w, 3, 1).tolist() == [[1, 0, 0, 2, 0, 0, 3]]
    w2 = torch.arange(4.0).view(1, 2, 2)
    assert dilate_kernel(w2, 2, 2).tolist() == [[[0, 0, 1], [0, 0, 0], [2, 0, 3]]]


@pytest.mark.parametrize("dims", [1, 2])
def test_weighted_conv_fold(dims: int) -> None:
    m = create_op("weighted_conv", channels=6, dims=dims, kernel_size=5).eval()
    x = torch.randn(2, 6, *((17,) if dims == 1 else (7, 8)))
    before = m(x)
    conv = F.conv1d if dims == 1 else F.conv2d
    ref = conv(x, (m.weight * m.phi())[:, None], m.bias, padding=2, groups=6)
    torch.testing.assert_close(before, ref, rtol=1e-4, atol=1e-5)
    m.reparameterize()
    torch.testing.assert_close(m(x), before, rtol=1e-5, atol=1e-6)
    fresh = create_op("weighted_conv", channels=6, dims=dims, kernel_size=5).eval()
    fresh.load_state_dict(m.state_dict())  # the folded flag travels with the weights
    torch.testing.assert_close(fresh(x), before, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dims", [1, 2])
def test_dcls_dense_kernel_form(dims: int) -> None:
    m = create_op("dcls", channels=6, dims=dims).eval()
    x = torch.randn(2, 6, *((17,) if dims == 1 else (7, 8)))
    before = m(x)
    m.reparameterize()
    assert not hasattr(m, "positions") and m.dense_kernel is not None
    torch.testing.assert_close(m(x), before)


def test_hyperzzw_kernel_cache() -> None:
    m = create_op("hyperzzw", channels=8, length=17).eval()
    x = torch.randn(3, 8, 17)
    before = m(x)
    m.reparameterize()
    assert m.cached_kernel is not None and "cached_kernel" not in m.state_dict()  # derived
    torch.testing.assert_close(m(x), before)
    # other lengths still work through the slow net
    assert m(torch.randn(2, 8, 11)).shape == (2, 8, 11)


def test_reparameterize_model_walks_submodules() -> None:
    model = torch.nn.Sequential(
        create_op("dilated_reparam", channels=8, kernel_size=7),
        create_op("weighted_conv", channels=8),
        create_op(
            "convnext",
            channels=8,
            length=12,
            mixer="dilated_reparam",
            mixer_kwargs={"kernel_size": 5},
            layer_scale_init=1.0,
        ),
    )
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            randomize_bn(m)
    model.eval()
    x = torch.randn(2, 8, 12)
    before = model(x)
    reparameterize_model(model)
    assert all(m.deployed for m in model.modules() if isinstance(m, DilatedReparam))
    torch.testing.assert_close(model(x), before, rtol=1e-4, atol=1e-5)


def test_hyperzzw_learns_again_after_reparameterize() -> None:
    """The cached kernel serves inference only: back in training, the slow net gets gradients."""
    import torch

    from agrostress.ops import create_op

    op = create_op("hyperzzw", channels=4, length=12)
    op.eval()
    op.reparameterize()
    x = torch.randn(2, 4, 12)
    cached = op(x)
    op.train()
    out = op(x)
    torch.testing.assert_close(out, cached)  # same kernel, computed afresh
    out.square().sum().backward()
    grads = [p.grad for p in op.slow.parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)


def test_hyperzzw_state_dict_loads_into_a_fresh_op() -> None:
    import torch

    from agrostress.ops import create_op

    torch.manual_seed(0)
    op = create_op("hyperzzw", channels=4, length=12).eval()
    op.reparameterize()
    fresh = create_op("hyperzzw", channels=4, length=12).eval()
    fresh.load_state_dict(op.state_dict())  # strict: no stray cache entry
    x = torch.randn(2, 4, 12)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), op(x))
