"""Random forest on spectral indices (scikit-learn) — the classical baseline — stored without
pickle: the fitted trees are exported to flat arrays (safetensors) and evaluated in numpy."""

from __future__ import annotations

from typing import Any

import numpy as np


class ForestModel:
    """A fitted random forest as arrays: per tree ``left``, ``right``, ``feature``,
    ``threshold`` and leaf class ``value`` (normalised), concatenated with ``offsets``."""

    context = 0
    name = "random_forest"

    def __init__(self, arrays: dict[str, np.ndarray], n_classes: int):
        self.arrays = {k: np.asarray(v) for k, v in arrays.items()}
        self.n_classes = n_classes

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, *, n_estimators: int = 200, max_depth: int = 16,
            seed: int = 0, class_weight: str | None = "balanced", n_jobs: int = 2) -> ForestModel:
        """Fit on flattened series ``x`` (N, T, F) and export the trees."""
        from sklearn.ensemble import RandomForestClassifier

        rf = RandomForestClassifier(n_estimators=n_estimators, max_depth=max_depth,
                                    random_state=seed, class_weight=class_weight, n_jobs=n_jobs,
                                    min_samples_leaf=2)
        rf.fit(x.reshape(len(x), -1), y)
        n_classes = int(y.max()) + 1
        parts: dict[str, list[np.ndarray]] = {k: [] for k in ("left", "right", "feature",
                                                              "threshold", "value")}
        offsets = [0]
        for est in rf.estimators_:
            t = est.tree_
            base = offsets[-1]
            left = np.where(t.children_left >= 0, t.children_left + base, -1)
            right = np.where(t.children_right >= 0, t.children_right + base, -1)
            value = np.zeros((t.node_count, n_classes))
            value[:, rf.classes_.astype(int)] = t.value[:, 0, :]
            value /= np.maximum(value.sum(axis=1, keepdims=True), 1e-12)
            for k, v in (("left", left), ("right", right), ("feature", t.feature),
                         ("threshold", t.threshold), ("value", value)):
                parts[k].append(v)
            offsets.append(base + t.node_count)
        arrays = {k: np.concatenate(v) for k, v in parts.items()}
        arrays["roots"] = np.array(offsets[:-1], dtype=np.int64)
        arrays["left"] = arrays["left"].astype(np.int64)
        arrays["right"] = arrays["right"].astype(np.int64)
        arrays["feature"] = arrays["feature"].astype(np.int64)
        return cls(arrays, n_classes)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Mean of the trees' leaf class distributions, (N, n_classes)."""
        a = self.arrays
        flat = x.reshape(len(x), -1).astype(np.float32)  # sklearn compares in float32
        rows = np.arange(len(flat))
        out = np.zeros((len(flat), self.n_classes))
        for root in a["roots"]:
            node = np.full(len(flat), root, dtype=np.int64)
            while True:
                left = a["left"][node]
                inner = left >= 0
                if not inner.any():
                    break
                go_left = flat[rows, np.maximum(a["feature"][node], 0)] <= a["threshold"][node]
                node = np.where(inner, np.where(go_left, left, a["right"][node]), node)
            out += a["value"][node]
        return out / len(a["roots"])

    def state(self) -> dict[str, Any]:
        return dict(self.arrays)
