"""From model probabilities to an answer: class priors and abstention ("uncertain").

* **Priors**: the model is trained class-balanced (one third of each class in effect); a real
  region's wheat is mostly healthy, and rust is rare outside epidemic years. Probabilities are
  moved to the user's priors by Bayes' rule, ``p'(c) ∝ p(c) · π_user(c) / π_train(c)``.
  The default, :data:`DEFAULT_PRIORS`, is an assumption for an ordinary (non-epidemic) season
  in western Europe — see ``docs/models.md`` ("Robust detection", priors) for its basis; set your region's
  figures, or ``training`` to keep the balanced training prior.
* **Abstention**: a pixel is *uncertain* when its highest probability is below
  ``min_confidence`` or its input lies outside what training covered (the card's
  out-of-distribution score above ``max_ood``); a field is *uncertain* when its mean
  probabilities are not confident enough or most of its valid pixels are uncertain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from agrostress.cube import CLASS_NAMES

DEFAULT_PRIORS: dict[str, float] = {"healthy": 0.70, "nitrogen_deficiency": 0.20,
                                    "yellow_rust": 0.10}
UNCERTAIN = "uncertain"


def parse_priors(text: str | Mapping[str, float] | None,
                 names: Sequence[str] = CLASS_NAMES) -> dict[str, float] | None:
    """``"healthy=0.7,nitrogen_deficiency=0.2,yellow_rust=0.1"`` (or a mapping) → normalised
    priors; ``"training"``/None → None (keep the training prior); ``"default"`` → the default."""
    if text is None or (isinstance(text, str) and text.strip().lower() == "training"):
        return None
    if isinstance(text, str) and text.strip().lower() == "default":
        return dict(DEFAULT_PRIORS)
    if isinstance(text, str):
        pairs: dict[str, float] = {}
        for part in text.split(","):
            if "=" not in part:
                raise ValueError(f"priors: expected class=share, got {part!r}")
            k, v = part.split("=", 1)
            try:
                pairs[k.strip()] = float(v)
            except ValueError:
                raise ValueError(f"priors: {v.strip()!r} is not a number") from None
    else:
        pairs = {str(k): float(v) for k, v in text.items()}
    unknown = sorted(set(pairs) - set(names))
    missing = sorted(set(names) - set(pairs))
    if unknown or missing:
        raise ValueError(f"priors must name exactly the classes {list(names)}"
                         + (f"; unknown {unknown}" if unknown else "")
                         + (f"; missing {missing}" if missing else ""))
    if any(not np.isfinite(v) or v <= 0 for v in pairs.values()):
        raise ValueError("priors must be positive numbers")
    total = sum(pairs.values())
    return {k: pairs[k] / total for k in names}


@dataclass(frozen=True)
class DecisionPolicy:
    """Priors and abstention thresholds applied to every analysis."""

    priors: dict[str, float] | None = field(default_factory=lambda: dict(DEFAULT_PRIORS))
    min_confidence: float = 0.6
    max_ood: float = 1.0
    field_max_uncertain_share: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_confidence < 1.0:
            raise ValueError("min_confidence must be in [0, 1)")
        if self.max_ood <= 0:
            raise ValueError("max_ood must be > 0")
        if not 0.0 < self.field_max_uncertain_share <= 1.0:
            raise ValueError("field_max_uncertain_share must be in (0, 1]")

    def describe(self, training_prior: Mapping[str, float] | None) -> dict[str, object]:
        """JSON-friendly record of the decision rule, for summaries."""
        return {
            "priors": dict(self.priors) if self.priors else dict(training_prior or {}),
            "priors_source": "user setting or default (see docs/models.md, Priors)"
            if self.priors else "the model's training prior",
            "training_prior": dict(training_prior or {}),
            "min_confidence": self.min_confidence,
            "max_ood": self.max_ood,
            "field_max_uncertain_share": self.field_max_uncertain_share,
        }


def policy_from(priors: str | None, min_confidence: float, max_ood: float) -> DecisionPolicy:
    """The policy from settings or command-line values (``priors`` as :func:`parse_priors`)."""
    return DecisionPolicy(priors=parse_priors(priors), min_confidence=min_confidence,
                          max_ood=max_ood)


def training_prior(calibration: Mapping[str, object], names: Sequence[str]) -> dict[str, float]:
    """The class prior the model's probabilities carry (balanced unless the card says)."""
    prior = calibration.get("training_prior") if calibration else None
    if isinstance(prior, Mapping):
        return {n: float(prior[n]) for n in names}
    return {n: 1.0 / len(names) for n in names}


def apply_priors(proba: np.ndarray, names: Sequence[str], priors: Mapping[str, float] | None,
                 trained: Mapping[str, float]) -> np.ndarray:
    """Probabilities (C, …) under the training prior → under ``priors`` (None: unchanged).
    NaN (no data) stays NaN."""
    if not priors:
        return proba
    w = np.array([priors[n] / trained[n] for n in names], dtype=np.float64)
    w = w.reshape(-1, *([1] * (proba.ndim - 1)))
    out = proba.astype(np.float64) * w
    with np.errstate(invalid="ignore", divide="ignore"):
        out = out / out.sum(axis=0, keepdims=True)
    return out.astype(proba.dtype)


def uncertain_pixels(proba: np.ndarray, ood: np.ndarray | None,
                     policy: DecisionPolicy) -> np.ndarray:
    """(C, H, W) probabilities and (H, W) OOD score → (H, W) pixels to call uncertain."""
    with np.errstate(invalid="ignore"):
        weak = np.nan_to_num(proba, nan=1.0).max(axis=0) < policy.min_confidence
        if ood is not None:
            weak |= np.nan_to_num(ood, nan=0.0) > policy.max_ood
    return weak
