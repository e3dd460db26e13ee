"""The built-in not-wheat detector: which pixels are not winter wheat, when the request has no
parcel layer that says so.

A small model of its own (``models/not_wheat``: a random forest stored as arrays, no pickle)
reads each pixel's season so far — the steps after the horizon set to :data:`MASKED` — and
gives p(not wheat); pixels at or above the card's threshold (chosen on validation scenes so
that nearly all wheat is kept) are "not wheat" (map code 5). Trained by
``python -m pipelines.train_not_wheat`` on the simulator's land covers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agrostress.models import LoadedModel, load

#: normalised value of the grid steps after the season's horizon (outside the clipped range
#: of every feature, so the trees can tell "not seen yet" from any observed value)
MASKED = -8.0
CLASS_NAMES = ("wheat", "not_wheat")


@dataclass
class NotWheatDetector:
    """A loaded detector: its checkpoint and its decision threshold on p(not wheat)."""

    model: LoadedModel
    threshold: float

    @classmethod
    def load(cls, path: str | Path) -> NotWheatDetector:
        model = load(path)
        if tuple(model.card.class_names) != CLASS_NAMES:
            raise ValueError(f"{path} is not a not-wheat detector (classes "
                             f"{model.card.class_names}, expected {list(CLASS_NAMES)})")
        return cls(model, float(model.card.calibration.get("not_wheat_threshold", 0.5)))

    @property
    def features(self) -> list[str]:
        return list(self.model.card.feature_spec)

    def inputs(self, x: np.ndarray, steps: np.ndarray | int) -> np.ndarray:
        """Raw series (N, T, F) in the detector's feature order → normalised, flattened model
        inputs with the steps at or after ``steps`` (per sample, or one horizon) masked."""
        xn = self.model.normalise(x)
        t = np.arange(xn.shape[1])[None, :]
        xn[np.broadcast_to(t >= np.reshape(steps, (-1, 1)), xn.shape[:2])] = MASKED
        return xn

    def probability(self, x: np.ndarray, steps: np.ndarray | int) -> np.ndarray:
        """p(not wheat) per sample of raw series (N, T, F)."""
        if not len(x):
            return np.zeros(0, np.float32)
        return self.model.module.predict_proba(self.inputs(x, steps))[:, 1].astype(np.float32)

    @classmethod
    def from_settings(cls, settings: Any, enabled: bool = True) -> NotWheatDetector | None:
        """The detector at ``settings.not_wheat_model_dir`` (None when disabled or unset;
        a folder that is set but missing is an error)."""
        path = settings.not_wheat_model_dir
        if not enabled or path is None or str(path) == "":
            return None
        if not Path(path).is_dir():
            raise FileNotFoundError(f"not-wheat detector {path} not found (set "
                                    "AGROSTRESS_NOT_WHEAT_MODEL_DIR, or --no-not-wheat)")
        return cls.load(path)

    def not_wheat(self, features: np.ndarray, steps: int) -> np.ndarray:
        """Boolean (H, W): not wheat, for a feature image (T, F, H, W) in the detector's
        feature order seen up to ``steps`` grid steps."""
        t, f, h, w = features.shape
        x = np.moveaxis(features, (2, 3), (0, 1)).reshape(h * w, t, f)
        return (self.probability(x, steps) >= self.threshold).reshape(h, w)
