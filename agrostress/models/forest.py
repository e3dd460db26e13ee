"""Random forest on spectral indices (scikit-learn) — the classical baseline — stored without
pickle: the fitted trees are exported to flat arrays (safetensors) and evaluated in numpy."""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from agrostress.numba_threads import compile_serial_parallel, run_kernel

FOREST_BLOCK = 256
"""Samples that walk the trees together (their inputs stay in cache, one tree at a time)."""


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
        """Mean of the trees' leaf class distributions, (N, n_classes) (compiled: one walk
        per sample and tree; :meth:`predict_proba_np` is the numpy reference)."""
        a = self.arrays
        flat = np.ascontiguousarray(x.reshape(len(x), -1), dtype=np.float32)  # as sklearn
        out = np.zeros((len(flat), self.n_classes))
        run_kernel(_FOREST, flat, a["roots"], a["left"], a["right"], a["feature"],
                    np.ascontiguousarray(a["threshold"], dtype=np.float64),
                    np.ascontiguousarray(a["value"], dtype=np.float64), out)
        return out / len(a["roots"])

    def predict_proba_np(self, x: np.ndarray) -> np.ndarray:
        """:meth:`predict_proba` in numpy, all samples down each tree together."""
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


def _forest_sum(flat: np.ndarray, roots: np.ndarray, left: np.ndarray, right: np.ndarray,
                feature: np.ndarray, threshold: np.ndarray, value: np.ndarray,
                out: np.ndarray) -> None:  # pragma: no cover - compiled
    """``out[i] += value[leaf of sample i in tree t]`` over the trees, in tree order for every
    sample. Samples go in blocks (in parallel where torch runs on several threads), each block
    through one tree after the other, so a tree's nodes stay in cache while the block's
    samples walk it."""
    n = flat.shape[0]
    n_blocks = (n + FOREST_BLOCK - 1) // FOREST_BLOCK
    for b in numba.prange(n_blocks):
        i0 = b * FOREST_BLOCK
        i1 = min(n, i0 + FOREST_BLOCK)
        for t in range(roots.shape[0]):
            for i in range(i0, i1):
                node = roots[t]
                while left[node] >= 0:
                    if np.float64(flat[i, feature[node]]) <= threshold[node]:
                        node = left[node]
                    else:
                        node = right[node]
                for c in range(out.shape[1]):
                    out[i, c] += value[node, c]


_FOREST = compile_serial_parallel(_forest_sum)
