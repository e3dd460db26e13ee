"""Classification metrics at pixel and field level, and calibration (ECE)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import cohen_kappa_score, confusion_matrix, precision_recall_fscore_support


def expected_calibration_error(proba: np.ndarray, y: np.ndarray, bins: int = 15) -> float:
    """ECE over equal-width confidence bins of the top-class probability."""
    if len(y) == 0:
        return float("nan")
    conf = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y
    edges = np.linspace(0, 1, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            ece += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(ece)


def classification_report(
    y: np.ndarray, pred: np.ndarray, proba: np.ndarray | None, class_names: list[str]
) -> dict[str, Any]:
    """OA, Cohen's kappa, macro-F1, per-class P/R/F1/support, confusion (rows = truth), ECE."""
    labels = list(range(len(class_names)))
    if len(y) == 0:
        return {"n": 0, "overall_accuracy": float("nan"), "kappa": float("nan"),
                "macro_f1": float("nan"), "per_class": {}, "confusion": [], "ece": float("nan")}
    p, r, f, s = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    present = s > 0
    kappa = cohen_kappa_score(y, pred, labels=labels) if len(np.unique(np.r_[y, pred])) > 1 else 1.0
    return {
        "n": int(len(y)),
        "overall_accuracy": float((y == pred).mean()),
        "kappa": float(kappa),
        "macro_f1": float(f[present].mean()) if present.any() else float("nan"),
        "per_class": {
            name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                   "support": int(s[i])}
            for i, name in enumerate(class_names)
        },
        "confusion": confusion_matrix(y, pred, labels=labels).tolist(),
        "ece": expected_calibration_error(proba, y) if proba is not None else float("nan"),
    }


def field_aggregate(
    field_keys: np.ndarray, y: np.ndarray, proba: np.ndarray, how: str = "mean_probability"
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per field: (keys, true label, call, mean probabilities). ``how``: mean_probability|majority."""
    keys, inv = np.unique(field_keys, return_inverse=True)
    n, c = len(keys), proba.shape[1]
    counts = np.bincount(inv, minlength=n).astype(float)
    mean_p = np.stack([np.bincount(inv, weights=proba[:, k], minlength=n) for k in range(c)], 1)
    mean_p /= np.maximum(counts, 1)[:, None]
    truth = np.array([np.bincount(y[inv == i], minlength=c).argmax() for i in range(n)])
    if how == "majority":
        votes = np.stack([np.bincount(inv, weights=(proba.argmax(1) == k).astype(float),
                                      minlength=n) for k in range(c)], 1)
        call = votes.argmax(1)
    elif how == "mean_probability":
        call = mean_p.argmax(1)
    else:
        raise ValueError(f"unknown field aggregation {how!r}")
    return keys, truth, call, mean_p
