"""Explanations of the sampled pixels: captum attributions toward each field's call,
aggregated per field and class, with the completeness check."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from agrostress.analysis.sampling import Candidates
from agrostress.analysis.summaries import FieldSummary
from agrostress.cube import NODATA
from agrostress.explain import (
    BASELINE,
    ExplainConfig,
    attribute,
    baseline_probabilities,
    completeness,
    evidence_maps,
    explained_module,
    group_means,
    heatmap_summary,
    to_series,
)

REFINE_ROUNDS = 2  # IG completeness: re-integrate missed pixels with 4×, then 16× the steps


@dataclass
class ExplainedPixels:
    """The explained pixels: grid row/column, group (field position or class), target class,
    field id (with fields), attributions (N, T, F) and, once placed, map coordinates."""

    rows: np.ndarray
    cols: np.ndarray
    group: np.ndarray
    target: np.ndarray
    field_id: list[Any] | None
    attributions: np.ndarray
    x: np.ndarray | None = None
    y: np.ndarray | None = None

    def __len__(self) -> int:
        return int(len(self.target))

    def within(self, row: int, col: int, height: int, width: int) -> ExplainedPixels:
        """The pixels inside a window of the grid, re-indexed to it."""
        keep = ((self.rows >= row) & (self.rows < row + height)
                & (self.cols >= col) & (self.cols < col + width))
        return ExplainedPixels(
            rows=self.rows[keep] - row, cols=self.cols[keep] - col, group=self.group[keep],
            target=self.target[keep],
            field_id=None if self.field_id is None
            else [v for v, ok in zip(self.field_id, keep, strict=True) if ok],
            attributions=self.attributions[keep],
            x=None if self.x is None else self.x[keep],
            y=None if self.y is None else self.y[keep])


@dataclass
class Attributions:
    """What the explanations found: the method and its completeness check, heatmaps
    ([time step][feature], Δ probability) per field and per class (JSON-ready dicts), the
    baseline, the explained pixels and the two evidence maps (y, x)."""

    method: str
    target: str
    doys: list[int]
    dates: list[str]
    features: list[str]
    fields: list[dict[str, Any]]
    classes: dict[str, dict[str, Any]]
    completeness: dict[str, Any]
    baseline_probabilities: dict[str, float]
    config: dict[str, Any]
    pixels: ExplainedPixels
    evidence: Any  # (y, x): numpy from the explainer, a DataArray in an AnalysisResult
    evidence_rust_vs_n: Any
    spatial_model: bool
    baseline: str = BASELINE
    output: str = "probability of the target class (calibrated, under the priors)"

    def to_dict(self) -> dict[str, Any]:
        """The aggregated JSON form (``attributions.json``): no per-pixel arrays, no maps."""
        return {
            "method": self.method, "baseline": self.baseline, "output": self.output,
            "target": self.target, "doys": self.doys, "dates": self.dates,
            "features": self.features, "fields": self.fields, "classes": self.classes,
            "completeness": self.completeness,
            "baseline_probabilities": self.baseline_probabilities, "config": self.config,
            "spatial_model": self.spatial_model,
            "heatmap_layout": "[time step][feature]: dates × features, Δ probability",
            "explained_pixels": len(self.pixels),
        }


def explain_candidates(model: Any, cand: Candidates | None, cfg: ExplainConfig, field_ids: list[Any],
             field_rows: list[FieldSummary], proba: np.ndarray, classes: np.ndarray,
             names: list[str], dates: list[str], n_fields: int,
             class_shift: np.ndarray | None) -> Attributions:
    module = model.cpu_module()  # attributions run on the CPU
    f = explained_module(module, float64=cfg.float64, temperature=model.temperature,
                         class_shift=class_shift)
    doys = [int(d) for d in model.grid.doys]
    feats = list(model.spec.names)
    T, F = len(doys), len(feats)
    shape = (T, F) if not model.context else (T, F, 2 * model.context + 1, 2 * model.context + 1)
    base_p = baseline_probabilities(f, shape, cfg)
    leading = np.where(classes == NODATA, NODATA, np.nan_to_num(proba).argmax(axis=0))
    evidence, contrast = evidence_maps(proba, leading, base_p)  # uncertain: its leading class
    if cand is None or cand.x is None or cand.group.size == 0:
        x = np.zeros((0, *shape), np.float32)
        groups = np.zeros(0, np.int64)
        rows = cols = np.zeros(0, np.int64)
    else:
        x = model.normalise(np.moveaxis(cand.x, 2, -1))
        x = np.moveaxis(x, -1, 2) if model.context else x
        groups, rows, cols = cand.group, cand.rows, cand.cols
    if n_fields:  # explain toward the field's call (its leading class when too little data)
        lead = [names.index(r.leading_class) if r.leading_class else 0 for r in field_rows]
        target = np.asarray(lead, dtype=np.int64)[groups] if groups.size else groups
    else:
        target = groups.copy()
    attr = attribute(module, x, target, cfg, prepared=f)
    comp: dict[str, Any] = {"method": cfg.method, "tolerance": cfg.tolerance}
    if cfg.method == "ig" and len(x):
        delta = completeness(f, x, target, attr, cfg)
        refined = np.flatnonzero(np.abs(delta) > cfg.tolerance)
        todo, steps = refined, cfg.ig_steps
        for _ in range(REFINE_ROUNDS):  # a steep path: integrate again with 4× the steps
            if not todo.size:
                break
            steps *= 4
            fine = ExplainConfig(**{**cfg.__dict__, "ig_steps": steps})
            attr[todo] = attribute(module, x[todo], target[todo], fine, prepared=f)
            delta[todo] = completeness(f, x[todo], target[todo], attr[todo], fine)
            todo = todo[np.abs(delta[todo]) > cfg.tolerance]
        comp.update(
            max_abs_delta=float(np.abs(delta).max()),
            mean_abs_delta=float(np.abs(delta).mean()),
            pixels=int(len(delta)),
            refined_pixels=int(refined.size),
            passed=bool(np.abs(delta).max() <= cfg.tolerance),
            statement=(
                "per pixel, the IG attributions sum to p_target(x) − p_target(baseline) within "
                f"{cfg.tolerance} (probability units); {cfg.ig_steps} Gauss–Legendre steps, "
                f"4× more (up to {cfg.ig_steps * 4 ** REFINE_ROUNDS}) for pixels that missed it"
            ),
        )
    else:
        comp.update(passed=None, statement="completeness applies to Integrated Gradients only")

    series = to_series(attr)
    out_fields: list[dict[str, Any]] = []
    if n_fields:
        means, counts = group_means(series, groups, n_fields)
        for i, r in enumerate(field_rows):
            if counts[i] == 0:
                continue
            out_fields.append({
                "field_id": r.field_id,
                "target": r.leading_class,
                "call": r.call,
                "true_label": r.true_label,
                "pixels": int(counts[i]),
                "heatmap": means[i],
                "summary": heatmap_summary(means[i], doys, feats),
            })
    cmeans, ccounts = group_means(series, target, len(names))
    n_called = [sum(1 for f in out_fields if f["target"] == nm) for nm in names]
    out_classes = {
        nm: {"pixels": int(ccounts[k]), "fields": n_called[k], "heatmap": cmeans[k],
             "summary": heatmap_summary(cmeans[k], doys, feats)}
        for k, nm in enumerate(names) if ccounts[k] > 0
    }
    return Attributions(
        method=cfg.method,
        target="the field's call (leading class)" if n_fields else "the pixel's predicted class",
        doys=doys,
        dates=dates,
        features=feats,
        fields=out_fields,
        classes=out_classes,
        completeness=comp,
        baseline_probabilities={nm: float(base_p[k]) for k, nm in enumerate(names)},
        config=dict(cfg.__dict__),
        pixels=ExplainedPixels(
            rows=rows, cols=cols, group=groups, target=target,
            field_id=[field_ids[g] for g in groups] if n_fields else None,
            attributions=attr),
        evidence=evidence,
        evidence_rust_vs_n=contrast,
        spatial_model=bool(model.context),
    )
