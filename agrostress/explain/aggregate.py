"""Aggregating per-pixel attributions: (time step × feature) heatmaps per group, their key
numbers, and the exact per-pixel evidence maps that follow from IG's completeness."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

RED_EDGE_PIGMENT: tuple[str, ...] = (
    "LCC", "NDREI", "MTCI", "S2REP", "REDSI", "PSRI", "CIRE", "IRECI", "MCARI", "ARI", "ARI2",
    "CRI550", "CRI700", "B05", "B06", "B07",
)
"""Features driven by chlorophyll, red-edge position and leaf pigments."""

SWIR: tuple[str, ...] = ("B11", "B12", "NDMI", "MSI")
"""Features driven by short-wave infrared (canopy water, soil)."""


def to_series(attr: np.ndarray) -> np.ndarray:
    """(N, T, F) or (N, T, F, P, P) → (N, T, F): patch attributions summed over space."""
    a = np.asarray(attr)
    return a.reshape(*a.shape[:3], -1).sum(axis=-1) if a.ndim > 3 else a


def group_means(attr: np.ndarray, groups: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean (T, F) heatmap per group 0..n_groups-1 and the pixel count of each group.

    Groups without pixels get a zero heatmap and count 0.
    """
    a = to_series(attr).astype(np.float64)
    groups = np.asarray(groups, dtype=np.int64)
    n, t, f = a.shape
    sums = np.zeros((n_groups, t * f))
    np.add.at(sums, groups, a.reshape(n, t * f))
    counts = np.bincount(groups, minlength=n_groups)[:n_groups]
    means = sums / np.maximum(counts, 1)[:, None]
    return means.reshape(n_groups, t, f).astype(np.float32), counts


def heatmap_summary(
    heatmap: np.ndarray, doys: Sequence[float], features: Sequence[str], *, top: int = 5
) -> dict[str, Any]:
    """Key numbers of one (T, F) heatmap: top supporting/opposing cells, shares of |mass|."""
    h = np.asarray(heatmap, dtype=np.float64)
    total_abs = float(np.abs(h).sum())
    order = np.argsort(h, axis=None)
    cell = lambda k: {  # noqa: E731
        "doy": float(doys[k // h.shape[1]]),
        "feature": str(features[k % h.shape[1]]),
        "attribution": float(h.flat[k]),
    }
    return {
        "total": float(h.sum()),
        "total_abs": total_abs,
        "top_supporting": [cell(int(k)) for k in order[::-1][:top] if h.flat[k] > 0],
        "top_opposing": [cell(int(k)) for k in order[:top] if h.flat[k] < 0],
        "feature_share": {
            str(n): (float(np.abs(h[:, j]).sum()) / total_abs if total_abs else 0.0)
            for j, n in enumerate(features)
        },
        "date_share": [
            (float(np.abs(h[i]).sum()) / total_abs if total_abs else 0.0) for i in range(h.shape[0])
        ],
    }


def temporal_mass(
    heatmap: np.ndarray, doys: Sequence[float], split_doy: float, *, positive: bool = True
) -> tuple[float, float]:
    """(mass before, mass on/after ``split_doy``) of a (T, F) heatmap.

    ``positive``: only evidence *for* the target class counts; else absolute values.
    """
    h = np.asarray(heatmap, dtype=np.float64)
    h = np.clip(h, 0, None) if positive else np.abs(h)
    after = np.asarray(doys, dtype=float) >= split_doy
    return float(h[~after].sum()), float(h[after].sum())


def feature_group_mass(
    heatmap: np.ndarray, features: Sequence[str], group: Sequence[str], *, per_feature: bool = True
) -> float:
    """|mass| of the features in ``group`` (mean per feature when ``per_feature``)."""
    h = np.abs(np.asarray(heatmap, dtype=np.float64))
    cols = [j for j, n in enumerate(features) if n in set(group)]
    if not cols:
        return float("nan")
    m = float(h[:, cols].sum())
    return m / len(cols) if per_feature else m


def evidence_maps(
    probabilities: np.ndarray,
    classes: np.ndarray,
    baseline: np.ndarray,
    *,
    nodata: int = 255,
    contrast: tuple[int, int] = (2, 1),
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel total IG attribution, exact by completeness, for every pixel.

    Returns ``(evidence, contrast_evidence)`` float32 (y, x), NaN where ``classes == nodata``:

    * ``evidence = p_c(x) − p_c(baseline)`` for the pixel's predicted class ``c`` — the sum of
      the pixel's IG attributions toward its own call: how strongly its series supports the
      call compared with the training-mean series;
    * ``contrast_evidence = [p_a(x) − p_b(x)] − [p_a(b) − p_b(b)]`` with ``(a, b) = contrast``
      (default yellow rust vs nitrogen deficiency): positive where the evidence favours rust
      over N deficiency.
    """
    p = np.asarray(probabilities, dtype=np.float32)
    cls = np.asarray(classes)
    base = np.asarray(baseline, dtype=np.float32)
    valid = cls != nodata
    c = np.where(valid, cls, 0).astype(np.int64)
    own = np.take_along_axis(p, c[None], axis=0)[0]
    ev = np.where(valid, own - base[c], np.nan).astype(np.float32)
    a, b = contrast
    con = (p[a] - p[b]) - (base[a] - base[b])
    con = np.where(valid, con, np.nan).astype(np.float32)
    return ev, con
