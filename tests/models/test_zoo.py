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


def test_ffdnn_context_image_path_equals_reflect_padded_patches():
    """FFDNN with a neighbourhood: centre/mean/std of the patch; the image path (box filters,
    reflect padding) equals the patch path for every pixel, border ones included."""
    import numpy as np

    from agrostress.training.data import patches

    torch.manual_seed(0)
    m = create_model("ffdnn", n_features=3, n_steps=12, context=2, channels=8).eval()
    img = torch.randn(1, 12, 3, 9, 11)
    rows, cols = np.meshgrid(np.arange(9), np.arange(11), indexing="ij")
    pt = torch.from_numpy(patches(img[0].numpy(), rows.ravel(), cols.ravel(), 2))
    with torch.no_grad():
        full = m.forward_image(img)[0].reshape(3, -1).T
        assert torch.allclose(m(pt), full, atol=1e-5)
    # images smaller than the patch reflect repeatedly, as the patches do
    small = img[..., :2, :3]
    rows, cols = np.meshgrid(np.arange(2), np.arange(3), indexing="ij")
    pt_small = torch.from_numpy(patches(small[0].numpy(), rows.ravel(), cols.ravel(), 2))
    with torch.no_grad():
        assert torch.allclose(m(pt_small), m.forward_image(small)[0].reshape(3, -1).T, atol=1e-5)
    # the neighbourhood matters: a patch with the same centre but another surround differs
    other = pt.clone()
    other[..., 0, :] += 1.0
    with torch.no_grad():
        assert not torch.allclose(m(other), m(pt), atol=1e-4)
    with pytest.raises(ValueError, match="needs patches"):
        m(torch.randn(4, 12, 3))


def test_ffdnn_chunked_inference_equals_one_pass():
    torch.manual_seed(0)
    m = create_model("ffdnn", n_features=4, n_steps=29).eval()
    x = torch.randn(700, 29, 4)
    with torch.no_grad():
        m.time_major_chunk = 10_000
        whole = m(x)
        m.time_major_chunk = 64
        chunked = m(x)
    assert torch.allclose(whole, chunked, atol=1e-6)
