"""Priors and the abstention rule (agrostress.decision)."""

from __future__ import annotations

import numpy as np
import pytest

from agrostress.decision import (
    DEFAULT_PRIORS,
    DecisionPolicy,
    apply_priors,
    parse_priors,
    policy_from,
    uncertain_pixels,
)

NAMES = ["healthy", "nitrogen_deficiency", "yellow_rust"]
BALANCED = dict.fromkeys(NAMES, 1 / 3)


def test_parse_priors_forms():
    assert parse_priors("training") is None
    assert parse_priors(None) is None
    assert parse_priors("default") == DEFAULT_PRIORS
    p = parse_priors("healthy=8, nitrogen_deficiency=1,yellow_rust=1")
    assert p == pytest.approx({"healthy": 0.8, "nitrogen_deficiency": 0.1, "yellow_rust": 0.1})
    assert sum(DEFAULT_PRIORS.values()) == pytest.approx(1.0)


@pytest.mark.parametrize("text, message", [
    ("healthy=0.5,yellow_rust=0.5", "missing"),
    ("healthy=0.5,nitrogen_deficiency=0.3,yellow_rust=0.1,maize=0.1", "unknown"),
    ("healthy=0.5,nitrogen_deficiency=0,yellow_rust=0.5", "positive"),
    ("healthy=a,nitrogen_deficiency=1,yellow_rust=1", "not a number"),
    ("healthy", "class=share"),
])
def test_parse_priors_rejects(text, message):
    with pytest.raises(ValueError, match=message):
        parse_priors(text)


def test_apply_priors_is_bayes_rule():
    p = np.array([[0.4, 0.2], [0.3, 0.2], [0.3, 0.6]], np.float32)  # (C, N)
    out = apply_priors(p, NAMES, {"healthy": 0.7, "nitrogen_deficiency": 0.2,
                                  "yellow_rust": 0.1}, BALANCED)
    want = p * np.array([0.7, 0.2, 0.1])[:, None]
    np.testing.assert_allclose(out, want / want.sum(0), rtol=1e-6)
    np.testing.assert_allclose(out.sum(0), 1.0, rtol=1e-6)
    assert out[0, 0] > p[0, 0]  # a healthy-heavy prior moves probability toward healthy
    assert apply_priors(p, NAMES, None, BALANCED) is p  # training prior: unchanged


def test_apply_priors_keeps_nodata():
    p = np.full((3, 2, 2), np.nan, np.float32)
    p[:, 0, 0] = [0.2, 0.3, 0.5]
    out = apply_priors(p, NAMES, DEFAULT_PRIORS, BALANCED)
    assert np.isnan(out[:, 1, 1]).all() and np.isfinite(out[:, 0, 0]).all()


def test_uncertain_pixels_rule():
    p = np.array([[0.9, 0.5, 0.8], [0.05, 0.3, 0.1], [0.05, 0.2, 0.1]], np.float32)[:, None, :]
    policy = DecisionPolicy(min_confidence=0.6, max_ood=1.0)
    ood = np.array([[0.5, 0.5, 1.5]], np.float32)
    got = uncertain_pixels(p, ood, policy)
    assert got.tolist() == [[False, True, True]]  # confident; weak evidence; out of distribution
    assert uncertain_pixels(p, None, policy).tolist() == [[False, True, False]]


def test_policy_validation_and_description():
    with pytest.raises(ValueError):
        DecisionPolicy(min_confidence=1.0)
    with pytest.raises(ValueError):
        DecisionPolicy(max_ood=0)
    d = policy_from("training", 0.5, 2.0).describe(BALANCED)
    assert d["priors"] == BALANCED and d["min_confidence"] == 0.5 and d["max_ood"] == 2.0
    assert "training prior" in d["priors_source"]
