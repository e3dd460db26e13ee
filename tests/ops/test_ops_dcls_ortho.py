"""DCLS position clamping and the orthogonality regulariser."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from agrostress.ops import create_op, orthogonality_loss, register_clamp_hook
from agrostress.ops.orthogonality import conv_orthogonality


@pytest.mark.parametrize("dims", [1, 2])
def test_dcls_positions_stay_clamped(dims: int) -> None:
    op = create_op("dcls", channels=8, dims=dims, dilated_kernel_size=7)
    lim = op.lim
    opt = torch.optim.SGD(op.parameters(), lr=1e3)  # absurd steps push positions out
    handle = register_clamp_hook(opt, op)
    x = torch.randn(4, 8, *((20,) if dims == 1 else (6, 7)))
    for _ in range(3):
        opt.zero_grad()
        (op(x) * torch.randn(4, 8, *x.shape[2:])).sum().backward()
        opt.step()
        assert op.positions.abs().max() <= lim + 1e-6
    handle.remove()
    # without the hook a step leaves the window, the forward still uses clamped positions
    with torch.no_grad():
        op.positions.mul_(10)
    assert op.positions.abs().max() > lim
    clamped = create_op("dcls", channels=8, dims=dims, dilated_kernel_size=7)
    clamped.load_state_dict(op.state_dict())
    clamped.clamp_parameters()
    assert clamped.positions.abs().max() <= lim
    torch.testing.assert_close(op(x), clamped(x))


def test_dcls_positions_learn_inside_window() -> None:
    op = create_op("dcls", channels=4, dilated_kernel_size=9)
    x = torch.randn(3, 4, 16)
    (op(x) ** 2).sum().backward()
    assert op.positions.grad.abs().sum() > 0 and op.sigma.grad.abs().sum() > 0


def test_orthogonal_kernels_have_zero_loss() -> None:
    q, _ = torch.linalg.qr(torch.randn(6, 6))
    assert conv_orthogonality(q[..., None]) < 1e-10  # orthogonal 1x1 conv
    delta = torch.zeros(5, 7)
    delta[:, 3] = torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0])
    assert conv_orthogonality(delta) < 1e-12  # depthwise all-pass (+-delta)
    haar = torch.tensor([[[1.0, 1.0]], [[1.0, -1.0]]]) / 2**0.5  # 1 -> 2 channels, stride 2 ...
    # ... at stride 1 the Haar pair is not orthogonal: the regulariser must see that
    assert conv_orthogonality(haar, depthwise=False) > 0.1
    shift = torch.zeros(1, 1, 3)
    shift[0, 0, 0] = 1.0  # a pure delay is orthogonal too
    assert conv_orthogonality(shift) < 1e-12


def test_orthogonality_loss_on_modules_and_descent() -> None:
    model = nn.Sequential(
        nn.Conv1d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1), nn.Conv1d(4, 4, 1)
    )
    loss = orthogonality_loss(model)
    assert loss > 0
    parts = conv_orthogonality(model[0].weight) + conv_orthogonality(model[1].weight)
    torch.testing.assert_close(loss, parts)  # 1x1 convs are skipped (k = 1)
    w = torch.randn(3, 5, requires_grad=True)
    opt = torch.optim.Adam([w], lr=0.1)
    first = orthogonality_loss(w).item()
    for _ in range(60):
        opt.zero_grad()
        orthogonality_loss(w).backward()
        opt.step()
    assert orthogonality_loss(w).item() < 0.1 * first


def test_orthogonality_loss_collects_package_kernels() -> None:
    op = create_op("dwconv", channels=4)
    torch.testing.assert_close(orthogonality_loss(op), conv_orthogonality(op.weight))
    with pytest.raises(ValueError, match="no convolution kernels"):
        orthogonality_loss(nn.Linear(3, 3))
