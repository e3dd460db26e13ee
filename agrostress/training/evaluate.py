"""Evaluation of a loaded model on labelled cubes: pixel and field level, insufficient data
reported separately (neither errors nor successes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from agrostress.cube import open_cube, validate
from agrostress.models import LoadedModel
from agrostress.training.data import cube_features
from agrostress.training.metrics import classification_report, field_aggregate


def predict_cube_features(model: LoadedModel, fs: xr.Dataset) -> np.ndarray:
    """Class probabilities (n_classes, H, W) for a feature Dataset (NaN where insufficient)."""
    f = np.asarray(fs["features"].transpose("doy", "feature", "y", "x").values)
    proba = model.predict_proba_image(f).astype(np.float32)
    proba[:, np.asarray(fs["insufficient_data"].values)] = np.nan
    return proba


def evaluate_model(
    model: LoadedModel, cubes: list[xr.Dataset | str | Path], *, field_rule: str = "mean_probability"
) -> dict[str, Any]:
    """Metrics over all labelled pixels of ``cubes`` (JSON-ready dict)."""
    names = list(model.card.class_names)
    ys, ps, keys = [], [], []
    insufficient = {"pixels": 0, "per_class": dict.fromkeys(names, 0)}
    for i, c in enumerate(cubes):
        ds = open_cube(c) if isinstance(c, str | Path) else c
        validate(ds, require_labels=True)
        _check_features(model, ds)
        fs = cube_features(ds, model.spec, model.grid, model.mask_policy, model.regularisation)
        proba = predict_cube_features(model, fs)
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
    y, p, k = np.concatenate(ys), np.concatenate(ps), np.concatenate(keys)
    pixel = classification_report(y, p.argmax(1), p, names)
    in_field = (k % 1_000_000) > 0
    fk, ft, fc, fp = field_aggregate(k[in_field], y[in_field], p[in_field], field_rule)
    field = classification_report(ft, fc, fp, names)
    field["rule"] = field_rule
    return {"model": model.card.name, "pixel": pixel, "field": field,
            "insufficient_data": insufficient}


def _check_features(model: LoadedModel, ds: xr.Dataset) -> None:
    bands = model.spec.bands_needed()
    have = [str(b) for b in ds["band"].values]
    missing = [b for b in bands if b not in have]
    if missing:
        raise ValueError(f"cube lacks band(s) {missing} needed by model features {model.spec}")
