"""Calibration of a trained model on held-out samples: a softmax temperature, and an
out-of-distribution score for abstention.

* **Temperature**: the single scalar T minimising the negative log-likelihood of
  ``softmax(logits / T)`` on held-out fields (Guo et al., 2017); it leaves every argmax as is.
* **Out-of-distribution score**: how far a pixel's input lies from the training inputs, in
  a principal-component model of the normalised series (judged against the reference when the
  model uses one): the Mahalanobis distance inside the first ``k`` components and the norm of
  the residual outside them, each divided by its 99.5th percentile on held-out training
  samples; the score is the larger of the two, so 1 is the edge of what training covered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

OOD_QUANTILE = 0.995
OOD_COMPONENTS = 12


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """Temperature minimising the NLL of ``softmax(logits / T)`` (grid over 0.25–8, log)."""
    grid = np.exp(np.linspace(np.log(0.25), np.log(8.0), 121))
    z = logits - logits.max(axis=1, keepdims=True)
    best, best_t = np.inf, 1.0
    for t in grid:
        zt = z / t
        nll = -(zt[np.arange(len(y)), y] - np.log(np.exp(zt).sum(axis=1))).mean()
        if nll < best:
            best, best_t = nll, float(t)
    return best_t


@dataclass
class OODScorer:
    """Principal-component distance model of flattened normalised inputs."""

    mean: np.ndarray  # (D,)
    components: np.ndarray  # (k, D)
    scale: np.ndarray  # (k,) standard deviation along each component
    mahalanobis_q: float
    residual_q: float

    @classmethod
    def fit(cls, train: np.ndarray, held_out: np.ndarray, k: int = OOD_COMPONENTS,
            quantile: float = OOD_QUANTILE) -> OODScorer:
        """Fit on ``train`` (N, D); set the thresholds on ``held_out`` (M, D)."""
        mean = train.mean(axis=0)
        _, s, vt = np.linalg.svd(train - mean, full_matrices=False)
        k = min(k, vt.shape[0])
        comp = vt[:k]
        scale = np.maximum(s[:k] / np.sqrt(max(1, len(train) - 1)), 1e-6)
        me = cls(mean.astype(np.float32), comp.astype(np.float32), scale.astype(np.float32),
                 1.0, 1.0)
        m, r = me._parts(held_out)
        me.mahalanobis_q = float(np.quantile(m, quantile))
        me.residual_q = float(np.quantile(r, quantile))
        return me

    def _parts(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c = z.astype(np.float32) - self.mean
        proj = c @ self.components.T
        mahal = np.sqrt(((proj / self.scale) ** 2).sum(axis=1))
        resid = np.linalg.norm(c - proj @ self.components, axis=1)
        return mahal, resid

    def score(self, z: np.ndarray) -> np.ndarray:
        """(N, D) → (N,): 1 is the held-out 99.5th percentile; above it, out of distribution."""
        m, r = self._parts(z)
        return np.maximum(m / self.mahalanobis_q, r / self.residual_q).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.tolist(), "components": self.components.tolist(),
                "scale": self.scale.tolist(), "mahalanobis_q": self.mahalanobis_q,
                "residual_q": self.residual_q, "quantile": OOD_QUANTILE}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OODScorer:
        return cls(np.asarray(d["mean"], np.float32), np.asarray(d["components"], np.float32),
                   np.asarray(d["scale"], np.float32), float(d["mahalanobis_q"]),
                   float(d["residual_q"]))
