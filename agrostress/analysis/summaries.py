"""Per-field summaries (calls, confidences, class shares) and scene totals."""

from __future__ import annotations

from typing import Any

import numpy as np

from agrostress.cube import NODATA, UNCERTAIN_CODE
from agrostress.decision import (
    UNCERTAIN,
    DecisionPolicy,
)


def pretty_name(name: str) -> str:
    """``nitrogen_deficiency`` → ``nitrogen deficiency``."""
    return str(name).replace("_", " ")


def plain_value(v: Any) -> Any:
    """numpy scalar → Python scalar (field ids may be ints or strings)."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v




def field_summaries(
    findex: np.ndarray | None,
    field_ids: list[Any],
    proba: np.ndarray,
    classes: np.ndarray,
    labels: np.ndarray | None,
    names: list[str],
    area_m2: float,
    min_valid_share: float,
    gdf: Any,
    decision: DecisionPolicy,
) -> list[dict[str, Any]]:
    """Per field: the call (a class, "uncertain" or None for too little data), its
    confidence, class fractions and mean probabilities."""
    if findex is None or not field_ids:
        return []
    n = len(field_ids)
    flat = findex.ravel()
    valid = classes.ravel() != NODATA
    npx = np.bincount(flat, minlength=n + 1)
    nval = np.bincount(flat[valid], minlength=n + 1)
    cls_counts = np.stack(
        [np.bincount(flat[valid & (classes.ravel() == k)], minlength=n + 1) for k in range(len(names))]
    )
    n_unsure = np.bincount(flat[classes.ravel() == UNCERTAIN_CODE], minlength=n + 1)
    psum = np.stack(
        [np.bincount(flat[valid], weights=proba[k].ravel()[valid], minlength=n + 1)
         for k in range(len(names))]
    )
    truth = None
    if labels is not None:
        lab = labels.ravel()
        known = lab >= 0
        truth = np.stack(
            [np.bincount(flat[known & (lab == k)], minlength=n + 1) for k in range(len(names))]
        )
    poly_ha = None
    if gdf is not None:
        try:
            poly_ha = (gdf.geometry.area / 1e4).to_numpy() if not gdf.crs.is_geographic else None
        except Exception:  # pragma: no cover - unusual CRS units
            poly_ha = None
    rows: list[dict[str, Any]] = []
    for i, fid in enumerate(field_ids, start=1):
        nv = int(nval[i])
        share = nv / npx[i] if npx[i] else 0.0
        mean_p = psum[:, i] / nv if nv else np.full(len(names), np.nan)
        best = int(np.argmax(mean_p)) if nv else None
        called = best is not None and share >= min_valid_share
        unsure_share = float(n_unsure[i] / nv) if nv else 0.0
        unsure = called and (float(mean_p[best]) < decision.min_confidence
                             or unsure_share > decision.field_max_uncertain_share)
        row: dict[str, Any] = {
            "field_id": fid,
            "call": (UNCERTAIN if unsure else names[best]) if called else None,
            "confidence": float(mean_p[best]) if called else None,
            "class_fractions": {
                **{nm: (float(cls_counts[k, i] / nv) if nv else None)
                   for k, nm in enumerate(names)},
                UNCERTAIN: unsure_share if nv else None,
            },
            "mean_probabilities": {
                nm: (float(mean_p[k]) if nv else None) for k, nm in enumerate(names)
            },
            "valid_pixel_share": float(share),
            "area_ha": float(npx[i] * area_m2 / 1e4),
            "pixels": int(npx[i]),
            "valid_pixels": nv,
            "leading_class": names[best] if best is not None else None,
        }
        if truth is not None and truth[:, i].sum() > 0:
            row["true_label"] = names[int(np.argmax(truth[:, i]))]
        elif gdf is not None and "class_name" in gdf.columns:
            v = gdf["class_name"].iloc[i - 1]
            if isinstance(v, str) and v in names:
                row["true_label"] = v
        if poly_ha is not None:
            row["polygon_area_ha"] = float(poly_ha[i - 1])
        rows.append(row)
    return rows


def scene_totals(classes: np.ndarray, names: list[str], area_m2: float, approx: bool) -> dict[str, Any]:
    counts = {nm: int((classes == k).sum()) for k, nm in enumerate(names)}
    counts[UNCERTAIN] = int((classes == UNCERTAIN_CODE).sum())
    counts["nodata"] = int((classes == NODATA).sum())
    counts["total"] = int(classes.size)
    ha = {k: v * area_m2 / 1e4 for k, v in counts.items()}
    return {
        "hectares": ha,
        "pixels": counts,
        "pixel_area_m2": area_m2,
        "area_approximate": approx,
        **{f"{k}_ha": v for k, v in ha.items()},
    }
