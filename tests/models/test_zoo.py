"""Every model of the zoo: same input contract, gradients, FFDNN size."""

from __future__ import annotations

import pytest
import torch

from agrostress.models import create_model, list_models


@pytest.mark.parametrize("name", list_models())
def test_forward_shape_and_gradients(name):
    torch.manual_seed(0)
    m = create_model(name, n_features=7, n_steps=29)
    x = torch.randn(6, 29, 7, 5, 5) if name == "spatiotemporal" else torch.randn(6, 29, 7)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    out = m(x)
    assert out.shape == (6, 3) and torch.isfinite(out).all()
    m.training_loss(x, y).backward()
    dead = [n for n, p in m.named_parameters() if p.requires_grad and p.grad is None]
    assert not dead, dead


def test_ffdnn_is_small_and_has_capsules():
    m = create_model("ffdnn", n_features=7, n_steps=29)
    assert sum(p.numel() for p in m.parameters()) < 100_000
    v, c = m.capsules(torch.randn(3, 29, 7))
    assert v.shape == (3, 3, 16) and c.shape[0] == 3


@pytest.mark.parametrize("steps", [12, 29, 48])
def test_ffdnn_any_length(steps):
    m = create_model("ffdnn", n_features=4, n_steps=steps).eval()
    assert m(torch.randn(2, steps, 4)).shape == (2, 3)


def test_spatiotemporal_image_path_equals_patch_path():
    torch.manual_seed(0)
    m = create_model("spatiotemporal", n_features=3, n_steps=12, context=1)
    m.eval()
    img = torch.randn(1, 12, 3, 6, 7)
    full = m.forward_image(img)  # (1, 3, 6, 7)
    for r, c in [(2, 3), (1, 1), (4, 5)]:
        patch = img[:, :, :, r - 1 : r + 2, c - 1 : c + 2]  # 3×3 patch centred on (r, c)
        assert torch.allclose(m(patch)[0], full[0, :, r, c], atol=1e-5)


def test_unknown_model():
    with pytest.raises(KeyError, match="unknown model"):
        create_model("nope", n_features=3, n_steps=10)
