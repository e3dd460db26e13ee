"""Per-field summaries (calls, confidences, class shares) and scene totals."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from agrostress.cube import (
    NODATA,
    NOT_WHEAT,
    NOT_WHEAT_CODE,
    TOO_EARLY,
    TOO_EARLY_CODE,
    UNCERTAIN,
    UNCERTAIN_CODE,
)
from agrostress.decision import DecisionPolicy


@dataclass
class FieldSummary:
    """One field's answer: its call (a class, "uncertain", "too_early", "not_wheat" or None
    for too little data), the confidence of a stress call, class fractions (shares of its
    pixels with an answer) and mean probabilities (over its valid wheat pixels), its valid
    share, area and pixel counts, the arg-max class even when it abstains, and — when known —
    its true label and polygon area."""

    field_id: Any
    call: str | None
    confidence: float | None
    class_fractions: dict[str, float | None]
    mean_probabilities: dict[str, float | None]
    valid_pixel_share: float
    area_ha: float
    pixels: int
    valid_pixels: int
    leading_class: str | None
    true_label: str | None = None
    polygon_area_ha: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``summary.json``, the API): the optional facts only when known."""
        d = asdict(self)
        for k in ("true_label", "polygon_area_ha"):
            if d[k] is None:
                del d[k]
        return d


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




def field_call(mean_p: np.ndarray, unsure_share: float, early_share: float,
               names: list[str], decision: DecisionPolicy, in_season: bool) -> str:
    """A field's call from its mean probabilities and the shares of its valid pixels that are
    uncertain or too early: its leading class, unless the mean is not confident enough or more
    than ``decision.field_max_uncertain_share`` of its pixels abstain — then "too_early" in
    season (unless the uncertain pixels dominate) or "uncertain"."""
    best = int(np.argmax(mean_p))
    abstain = (float(mean_p[best]) < decision.min_confidence or early_share == 1.0
               or unsure_share + early_share > decision.field_max_uncertain_share)
    if not abstain:
        return names[best]
    return TOO_EARLY if in_season and early_share >= unsure_share else UNCERTAIN


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
    in_season: bool = False,
) -> list[FieldSummary]:
    """Per field: the call (a class, "uncertain", "too_early", "not_wheat" or None for too
    little data), its confidence, class fractions and mean probabilities.

    A field most of whose pixels are not wheat (map code 5) is "not_wheat". The class
    fractions are shares of the pixels with an answer (valid wheat pixels and not-wheat ones),
    so they sum to one; the call reads the wheat pixels alone.

    A field abstains when its mean probability is not confident enough or more than
    ``decision.field_max_uncertain_share`` of its valid pixels abstain: "too_early" while
    ``in_season`` unless most of its abstaining pixels are out of distribution, else
    "uncertain"."""
    if findex is None or not field_ids:
        return []
    n = len(field_ids)
    flat = findex.ravel()
    valid = (classes.ravel() != NODATA) & (classes.ravel() != NOT_WHEAT_CODE)
    npx = np.bincount(flat, minlength=n + 1)
    nval = np.bincount(flat[valid], minlength=n + 1)
    cls_counts = np.stack(
        [np.bincount(flat[valid & (classes.ravel() == k)], minlength=n + 1) for k in range(len(names))]
    )
    n_unsure = np.bincount(flat[classes.ravel() == UNCERTAIN_CODE], minlength=n + 1)
    n_early = np.bincount(flat[classes.ravel() == TOO_EARLY_CODE], minlength=n + 1)
    n_other = np.bincount(flat[classes.ravel() == NOT_WHEAT_CODE], minlength=n + 1)
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
    rows: list[FieldSummary] = []
    for i, fid in enumerate(field_ids, start=1):
        nv = int(nval[i])
        share = nv / npx[i] if npx[i] else 0.0
        mean_p = psum[:, i] / nv if nv else np.full(len(names), np.nan)
        best = int(np.argmax(mean_p)) if nv else None
        called = best is not None and share >= min_valid_share
        unsure_share = float(n_unsure[i] / nv) if nv else 0.0
        early_share = float(n_early[i] / nv) if nv else 0.0
        nall = nv + int(n_other[i])  # pixels with an answer: the fractions' denominator
        if npx[i] and n_other[i] / npx[i] > 0.5:
            call = NOT_WHEAT
        elif called:
            call = field_call(mean_p, unsure_share, early_share, names, decision, in_season)
        else:
            call = None
        true_label = None
        if truth is not None and truth[:, i].sum() > 0:
            true_label = names[int(np.argmax(truth[:, i]))]
        elif gdf is not None and "class_name" in gdf.columns:
            v = gdf["class_name"].iloc[i - 1]
            if isinstance(v, str) and v in names:
                true_label = v
        rows.append(FieldSummary(
            field_id=fid,
            call=call,
            confidence=float(mean_p[best]) if called and call != NOT_WHEAT else None,
            class_fractions={
                **{nm: (float(cls_counts[k, i] / nall) if nv else None)
                   for k, nm in enumerate(names)},
                UNCERTAIN: float(n_unsure[i] / nall) if nv else None,
                TOO_EARLY: float(n_early[i] / nall) if nv else None,
                NOT_WHEAT: float(n_other[i] / nall) if nall else 0.0,
            },
            mean_probabilities={
                nm: (float(mean_p[k]) if nv else None) for k, nm in enumerate(names)
            },
            valid_pixel_share=float(share),
            area_ha=float(npx[i] * area_m2 / 1e4),
            pixels=int(npx[i]),
            valid_pixels=nv,
            leading_class=names[best] if best is not None else None,
            true_label=true_label,
            polygon_area_ha=None if poly_ha is None else float(poly_ha[i - 1]),
        ))
    return rows


def scene_totals(classes: np.ndarray, names: list[str], area_m2: float, approx: bool) -> dict[str, Any]:
    counts = {nm: int((classes == k).sum()) for k, nm in enumerate(names)}
    counts[UNCERTAIN] = int((classes == UNCERTAIN_CODE).sum())
    counts[TOO_EARLY] = int((classes == TOO_EARLY_CODE).sum())
    counts[NOT_WHEAT] = int((classes == NOT_WHEAT_CODE).sum())
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
