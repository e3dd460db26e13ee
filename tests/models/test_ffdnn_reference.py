"""FFDNN judged against a reference: what the scene shares cannot change the call."""

from __future__ import annotations

import pytest
import torch

from agrostress.models import create_model

CFG = {"channels": 8, "depth": 1, "primary_types": 2, "primary_dim": 4, "class_dim": 4}


@pytest.mark.parametrize("context", [0, 1])
def test_relative_only_is_blind_to_what_the_scene_shares(context):
    """absolute=False: an offset or a season shift common to the pixel and its reference (a dry
    year, a processing-baseline change) leaves the logits exactly as they were."""
    torch.manual_seed(0)
    m = create_model("ffdnn", n_features=5, n_steps=12, reference=True, absolute=False,
                     context=context, **CFG).eval()
    shape = (4, 12, 5) if not context else (4, 12, 5, 3, 3)
    x = torch.randn(shape)
    ref = torch.randn(12, 5)
    shared = torch.randn(12, 5)
    expand = shared if not context else shared[..., None, None]
    with torch.no_grad():
        m.set_reference(ref)
        a = m(x)
        m.set_reference(ref + shared)
        b = m(x + expand)
        per_sample = m(x + expand, ref=(ref + shared).expand(4, 12, 5))
        m.set_reference(ref)
        control = m(x + expand)  # the pixel alone moved: the answer moves
    torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(a, per_sample, atol=1e-6, rtol=1e-5)
    assert (a - control).abs().max() > 100 * (a - b).abs().max()
    torch.testing.assert_close(m.with_reference(x + expand, ref + shared),
                               m.with_reference(x, ref), atol=1e-6, rtol=1e-5)


def test_with_absolute_input_the_model_sees_both():
    m = create_model("ffdnn", n_features=5, n_steps=12, reference=True, **CFG).eval()
    x, ref = torch.randn(4, 12, 5), torch.randn(12, 5)
    m.set_reference(ref)
    both = m.with_reference(x)
    assert m.stem[0].in_channels == 10  # the pixel beside its deviation
    torch.testing.assert_close(both, torch.cat([x, x - ref], dim=2))
    plain = create_model("ffdnn", n_features=5, n_steps=12, **CFG)
    assert plain.with_reference(x) is x and plain.stem[0].in_channels == 5


def test_reference_shape_is_checked():
    m = create_model("ffdnn", n_features=5, n_steps=12, reference=True, **CFG)
    with pytest.raises(ValueError, match="reference must be"):
        m.set_reference(torch.zeros(11, 5))
