"""In season: the model sees only the steps up to the horizon, on every inference form."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agrostress.models import create_model

CFG = {"channels": 8, "depth": 1, "primary_types": 2, "primary_dim": 4, "class_dim": 4}


@pytest.mark.parametrize("context", [0, 1])
def test_steps_after_the_horizon_cannot_change_a_call(context):
    """Whatever the masked steps hold (filled, invented, or the real future), the logits are
    the same — per sample (training form), per scene (time-major inference) and per image."""
    torch.manual_seed(0)
    m = create_model("ffdnn", n_features=5, n_steps=12, reference=True, absolute=False,
                     season_mask=True, context=context, **CFG).eval()
    shape = (6, 12, 5) if not context else (6, 12, 5, 3, 3)
    x = torch.randn(shape)
    future = x.clone()
    future[:, 7:] = torch.randn(future[:, 7:].shape) * 5
    m.set_reference(torch.randn(12, 5))
    with torch.no_grad():
        per_sample = m(x, horizon=torch.full((6,), 7))
        per_sample_future = m(future, horizon=torch.full((6,), 7))
        m.set_horizon(7)
        scene = m(x)
        scene_future = m(future)
        m.set_horizon(12)
        whole = m(future)
    torch.testing.assert_close(per_sample, per_sample_future, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(scene, scene_future, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(scene, per_sample, atol=1e-5, rtol=1e-4)
    assert (whole - scene_future).abs().max() > 1e-3  # unmasked, the future does count


def test_image_form_masks_too():
    torch.manual_seed(1)
    m = create_model("ffdnn", n_features=4, n_steps=10, reference=True, absolute=False,
                     season_mask=True, context=1, **CFG).eval()
    m.set_reference(torch.randn(10, 4))
    img = torch.randn(1, 10, 4, 9, 11)
    changed = img.clone()
    changed[:, 6:] += 3.0
    m.set_horizon(6)
    with torch.no_grad():
        a, b = m.forward_image(img), m.forward_image(changed)
    torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_horizon_is_checked_and_whole_season_models_refuse_to_mask():
    m = create_model("ffdnn", n_features=4, n_steps=10, season_mask=True, **CFG)
    with pytest.raises(ValueError, match="observed steps"):
        m.set_horizon(0)
    plain = create_model("ffdnn", n_features=4, n_steps=10, **CFG)
    plain.set_horizon(10)
    with pytest.raises(ValueError, match="whole seasons"):
        plain.set_horizon(5)
    assert m.stem[0].in_channels == 4 + 1  # the features and the "observed" flag
    assert np.isclose(m.observed_steps.item(), 10)


@pytest.mark.parametrize("context", [0, 1])
def test_warm_start_from_a_whole_season_model_keeps_its_function(context):
    """A season-mask model warm-started from a whole-season one gives the same logits on a
    whole season (the observed-step channels start at zero weight) and can mask steps."""
    torch.manual_seed(1)
    kw = dict(n_features=5, n_steps=12, reference=True, absolute=False, context=context, **CFG)
    whole = create_model("ffdnn", **kw).eval()
    inseason = create_model("ffdnn", season_mask=True, **kw).eval()
    inseason.warm_start(whole.state_dict())
    x = torch.randn((3, 12, 5) if not context else (3, 12, 5, 3, 3))
    ref = torch.randn(12, 5)
    with torch.no_grad():
        whole.set_reference(ref)
        inseason.set_reference(ref)
        torch.testing.assert_close(inseason(x), whole(x), atol=1e-5, rtol=1e-5)
        inseason.set_horizon(6)
        assert not torch.allclose(inseason(x), whole(x))
    with pytest.raises(ValueError, match="warm-start"):
        create_model("ffdnn", season_mask=True, **{**kw, "n_features": 7}).warm_start(
            whole.state_dict())
