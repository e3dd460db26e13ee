"""Evaluation of a loaded model on labelled cubes: pixel and field level, insufficient data
reported separately (neither errors nor successes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from agrostress.cube import open_cube, validate
from agrostress.decision import DecisionPolicy, apply_priors, training_prior, uncertain_pixels
from agrostress.models import LoadedModel
from agrostress.preprocess.reference import image_reference
from agrostress.training.data import cube_features
from agrostress.training.metrics import classification_report, field_aggregate


def predict_cube_features(model: LoadedModel, fs: xr.Dataset, *,
                          with_ood: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Class probabilities (n_classes, H, W) for a feature Dataset (NaN where insufficient),
    under the training prior, and with ``with_ood`` the OOD score (H, W); a model with a
    reference is judged against the scene's (the winter-cereal-like pixels of its fields, or
    of the whole scene without fields)."""
    f = np.asarray(fs["features"].transpose("doy", "feature", "y", "x").values)
    bad = np.asarray(fs["insufficient_data"].values)
    if model.uses_reference:
        fid = np.asarray(fs["field_id"].values) if "field_id" in fs else None
        usable = ~bad if fid is None else ~bad & (fid > 0)
        ref = image_reference(f, usable, fid, model.spec.names, model.grid.doys,
                              model.builtin_reference)
        model.set_reference(ref.series)
    proba, ood = model.predict_image(f, with_ood=with_ood)
    proba = proba.astype(np.float32)
    proba[:, bad] = np.nan
    return proba, ood


def evaluate_model(
    model: LoadedModel, cubes: list[xr.Dataset | str | Path], *,
    field_rule: str = "mean_probability", decision: DecisionPolicy | None = None,
) -> dict[str, Any]:
    """Metrics over all labelled pixels of ``cubes`` (JSON-ready dict).

    ``decision``: its priors move the probabilities (None: the training prior), and the
    ``abstention`` block reports coverage (the share of pixels and fields that get a call,
    not "uncertain") and the accuracy of those calls.
    """
    names = list(model.card.class_names)
    trained = training_prior(model.card.calibration, names)
    ys, ps, keys, unsure = [], [], [], []
    insufficient = {"pixels": 0, "per_class": dict.fromkeys(names, 0)}
    for i, c in enumerate(cubes):
        ds = open_cube(c) if isinstance(c, str | Path) else c
        validate(ds, require_labels=True)
        _check_features(model, ds)
        fs = cube_features(ds, model.spec, model.grid, model.mask_policy, model.regularisation)
        proba, ood = predict_cube_features(model, fs, with_ood=decision is not None)
        if decision is not None:
            proba = apply_priors(proba, names, decision.priors, trained)
            unsure_px = uncertain_pixels(proba, ood, decision)
        label = np.asarray(ds["label"].values)
        fid = np.asarray(ds["field_id"].values) if "field_id" in ds else np.zeros_like(label, int)
        bad = np.asarray(fs["insufficient_data"].values)
        labelled = label >= 0
        insufficient["pixels"] += int((labelled & bad).sum())
        for k, n in enumerate(names):
            insufficient["per_class"][n] += int((labelled & bad & (label == k)).sum())
        sel = labelled & ~bad
        ys.append(label[sel].astype(int))
        ps.append(proba[:, sel].T)
        keys.append(i * 1_000_000 + fid[sel].astype(np.int64))
        if decision is not None:
            unsure.append(unsure_px[sel])
    y, p, k = np.concatenate(ys), np.concatenate(ps), np.concatenate(keys)
    pixel = classification_report(y, p.argmax(1), p, names)
    in_field = (k % 1_000_000) > 0
    fk, ft, fc, fp = field_aggregate(k[in_field], y[in_field], p[in_field], field_rule)
    field = classification_report(ft, fc, fp, names)
    field["rule"] = field_rule
    report = {"model": model.card.name, "pixel": pixel, "field": field,
              "insufficient_data": insufficient,
              "priors": dict(decision.priors) if decision and decision.priors else trained}
    if decision is not None:
        u = np.concatenate(unsure)
        _, inv = np.unique(k[in_field], return_inverse=True)
        share = np.bincount(inv, weights=u[in_field].astype(float)) / np.bincount(inv)
        fu = (fp.max(1) < decision.min_confidence) | (share > decision.field_max_uncertain_share)
        ood_out = share > decision.field_max_uncertain_share
        report["abstention"] = {
            "rule": decision.describe(trained),
            "pixel": _coverage(y, p.argmax(1), u),
            "field": _coverage(ft, fc, fu),
            "field_curve": [  # coverage against accuracy as the confidence threshold moves
                {"min_confidence": t, **_coverage(ft, fc, (fp.max(1) < t) | ood_out)}
                for t in COVERAGE_THRESHOLDS],
        }
    return report


COVERAGE_THRESHOLDS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9)


def _coverage(truth: np.ndarray, call: np.ndarray, unsure: np.ndarray) -> dict[str, float]:
    """Share called (not uncertain) and the accuracy of those calls."""
    called = ~unsure
    return {"n": int(truth.size), "coverage": float(called.mean()) if truth.size else 0.0,
            "accuracy_called": float((truth[called] == call[called]).mean())
            if called.any() else float("nan")}


def _check_features(model: LoadedModel, ds: xr.Dataset) -> None:
    bands = model.spec.bands_needed()
    have = [str(b) for b in ds["band"].values]
    missing = [b for b in bands if b not in have]
    if missing:
        raise ValueError(f"cube lacks band(s) {missing} needed by model features {model.spec}")
