"""Capsule layers and the margin loss."""

from __future__ import annotations

import pytest
import torch

from agrostress.models.capsules import PrimaryCapsules, RoutingCapsules, margin_loss, squash


def test_squash_keeps_direction_and_bounds_length():
    s = torch.tensor([[3.0, 4.0], [0.0, 0.0], [0.3, 0.4]])
    v = squash(s)
    lengths = v.norm(dim=-1)
    assert torch.allclose(lengths[0], torch.tensor(25 / 26), atol=1e-6)
    assert lengths[1] == 0
    assert torch.allclose(lengths[2], torch.tensor(0.25 / 1.25), atol=1e-6)
    assert torch.allclose(v[0] / lengths[0], torch.tensor([0.6, 0.8]), atol=1e-6)


@pytest.mark.parametrize("iterations", [1, 3, 5])
def test_routing_shapes_and_couplings(iterations):
    torch.manual_seed(0)
    prim = PrimaryCapsules(channels=16, n_types=4, dim=8, positions=3)
    route = RoutingCapsules(n_in=12, dim_in=8, n_out=3, dim_out=16, iterations=iterations)
    u = prim(torch.randn(5, 16, 29))
    assert u.shape == (5, 12, 8)
    assert (u.norm(dim=-1) < 1).all()
    v, c = route(u)
    assert v.shape == (5, 3, 16) and c.shape == (5, 12, 3)
    assert torch.allclose(c.sum(dim=2), torch.ones(5, 12), atol=1e-6)
    assert (v.norm(dim=-1) < 1).all()


def test_routing_agreement_sharpens_couplings():
    torch.manual_seed(1)
    route1 = RoutingCapsules(n_in=12, dim_in=8, n_out=3, dim_out=16, iterations=1)
    route3 = RoutingCapsules(n_in=12, dim_in=8, n_out=3, dim_out=16, iterations=3)
    route3.load_state_dict(route1.state_dict())
    u = squash(torch.randn(4, 12, 8))
    _, c1 = route1(u)
    _, c3 = route3(u)
    assert torch.allclose(c1, torch.full_like(c1, 1 / 3))  # uniform before any agreement
    assert (c3.max(dim=2).values > 1 / 3 + 1e-4).any()


def test_routing_rejects_zero_iterations():
    with pytest.raises(ValueError, match="at least one iteration"):
        RoutingCapsules(4, 8, 3, 16, iterations=0)


def test_margin_loss_hand_computed():
    # target 0: present capsule long enough; absent ones: 0.05 (< m-) and 0.2 (> m-)
    a = margin_loss(torch.tensor([[0.95, 0.05, 0.2]]), torch.tensor([0]))
    assert a.item() == pytest.approx(0.5 * 0.1**2)
    # target 1 with length 0.6: (0.9-0.6)^2 + 0.5 (0.5-0.1)^2
    b = margin_loss(torch.tensor([[0.5, 0.6, 0.0]]), torch.tensor([1]))
    assert b.item() == pytest.approx(0.09 + 0.08)
    both = margin_loss(torch.tensor([[0.95, 0.05, 0.2], [0.5, 0.6, 0.0]]), torch.tensor([0, 1]))
    assert both.item() == pytest.approx((0.005 + 0.17) / 2)
    w = torch.tensor([1.0, 3.0, 1.0])
    weighted = margin_loss(torch.tensor([[0.95, 0.05, 0.2], [0.5, 0.6, 0.0]]),
                           torch.tensor([0, 1]), weight=w)
    assert weighted.item() == pytest.approx((0.005 * 1 + 0.17 * 3) / 4)
