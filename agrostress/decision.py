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
* **Too early to tell**: in season (the season cut before ``season_complete_doy``), a call that
  is not confident yet is "too early" — more of the season is to come — rather than
  "uncertain"; an out-of-distribution input stays "uncertain" at any date, and before
  ``earliest_doy`` every call is too early.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from agrostress.cube import CLASS_NAMES, TOO_EARLY, TOO_EARLY_CODE, UNCERTAIN, UNCERTAIN_CODE

DEFAULT_PRIORS: dict[str, float] = {"healthy": 0.70, "nitrogen_deficiency": 0.20,
                                    "yellow_rust": 0.10}
__all__ = ["DEFAULT_PRIORS", "TOO_EARLY", "UNCERTAIN", "DecisionPolicy", "abstentions",
           "apply_priors", "parse_priors", "policy_from", "training_prior", "uncertain_pixels"]


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
    season_complete_doy: float = 170.0
    earliest_doy: float = 90.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_confidence < 1.0:
            raise ValueError("min_confidence must be in [0, 1)")
        if self.max_ood <= 0:
            raise ValueError("max_ood must be > 0")
        if not 0.0 < self.field_max_uncertain_share <= 1.0:
            raise ValueError("field_max_uncertain_share must be in (0, 1]")
        if self.earliest_doy > self.season_complete_doy:
            raise ValueError("earliest_doy must not be after season_complete_doy")

    def in_season(self, horizon_doy: float) -> bool:
        """Whether a season seen up to ``horizon_doy`` is still to come (abstentions are then
        "too early" rather than "uncertain")."""
        return float(horizon_doy) < self.season_complete_doy

    def too_soon(self, horizon_doy: float) -> bool:
        """Whether it is too early for any call at all."""
        return float(horizon_doy) < self.earliest_doy

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
            "season_complete_doy": self.season_complete_doy,
            "earliest_doy": self.earliest_doy,
        }


def policy_from(priors: str | None, min_confidence: float, max_ood: float,
                season_complete_doy: float = 170.0) -> DecisionPolicy:
    """The policy from settings or command-line values (``priors`` as :func:`parse_priors`)."""
    return DecisionPolicy(priors=parse_priors(priors), min_confidence=min_confidence,
                          max_ood=max_ood, season_complete_doy=season_complete_doy)


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
    """(C, H, W) probabilities and (H, W) OOD score → (H, W) pixels that abstain over a whole
    season (see :func:`abstentions`)."""
    return abstentions(proba, ood, policy) > 0


def abstentions(proba: np.ndarray, ood: np.ndarray | None, policy: DecisionPolicy,
                horizon_doy: float | None = None) -> np.ndarray:
    """(C, H, W) probabilities, (H, W) OOD score and the season's horizon → (H, W) uint8:
    0 where a class is called, :data:`~agrostress.cube.UNCERTAIN_CODE` or
    :data:`~agrostress.cube.TOO_EARLY_CODE` where the pixel abstains (``horizon_doy`` None:
    a whole season)."""
    with np.errstate(invalid="ignore"):
        weak = np.nan_to_num(proba, nan=1.0).max(axis=0) < policy.min_confidence
        strange = (np.nan_to_num(ood, nan=0.0) > policy.max_ood if ood is not None
                   else np.zeros(weak.shape, bool))
    out = np.zeros(weak.shape, np.uint8)
    if horizon_doy is not None and policy.too_soon(horizon_doy):
        out[...] = TOO_EARLY_CODE
        return out
    early = horizon_doy is not None and policy.in_season(horizon_doy)
    out[weak] = TOO_EARLY_CODE if early else UNCERTAIN_CODE
    out[strange] = UNCERTAIN_CODE
    return out
