"""Seasons cut at random dates: what a field looked like, and should be called, in spring.

One model serves every date (ELECTS, Rußwurm et al. 2023, learns *when* to decide; here the
decision rule is the calibrated confidence, and the model learns from partial seasons). Each
training scene is also cut at a few random dates; every cut is preprocessed from the
acquisitions up to its date only (:func:`agrostress.preprocess.season.cut_season`), so the
training series carry exactly what an in-season request would see.

A field's label in a cut is what could be seen by then (:func:`visible_labels`): its stress
once the symptoms have had time to show (:data:`VISIBLE_AFTER_DAYS` after the simulator's
onset: 10 days for nitrogen deficiency, 7 for yellow rust — the decidability rules of
``bench/earliness.py``), healthy before the onset, and no label in between (not trained on).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np

from agrostress.cube import CLASS_NAMES

HEALTHY, NITROGEN, RUST = (CLASS_NAMES.index(n) for n in
                           ("healthy", "nitrogen_deficiency", "yellow_rust"))

VISIBLE_AFTER_DAYS: dict[int, float] = {NITROGEN: 10.0, RUST: 7.0}
"""Days from a stress's onset until a call of it is expected (decidable)."""

CUT_FIRST_DOY = 95
"""Earliest random cut (early April: wheat is green, stress can begin to show)."""
FULL_SEASON_SHARE = 0.3
"""Share of training samples that see the whole season."""

ONSET_KEYS = {NITROGEN: "n_onset", RUST: "rust_onset"}


def field_onsets(truth: dict) -> dict[int, float]:
    """Stress onset DOY per field id from a simulated scene's ``fields.geojson`` mapping (a
    GeoJSON FeatureCollection); healthy fields have none."""
    out: dict[int, float] = {}
    for feat in truth.get("features", []):
        p = feat.get("properties", {})
        key = ONSET_KEYS.get(int(p.get("label", HEALTHY)))
        if key is not None and p.get(key) is not None:
            out[int(p["field_id"])] = float(p[key])
    return out


def read_onsets(store: str | Path) -> dict[int, float]:
    """Onsets of a simulated scene on disk (its ``fields.geojson``)."""
    from agrostress.simulate.writer import FIELDS_FILE

    path = Path(store) / FIELDS_FILE
    if not path.is_file():
        raise ValueError(f"{store} has no {FIELDS_FILE}: season cuts need the stress onsets "
                         "of a simulated scene")
    return field_onsets(json.loads(path.read_text()))


def visible_labels(label: np.ndarray, field_id: np.ndarray, onsets: dict[int, float],
                   horizon_doy: float) -> np.ndarray:
    """Labels (H, W) as of ``horizon_doy``: stressed pixels are healthy before their field's
    onset, −1 (not trained on) until the stress is expected to show, their class after."""
    out = label.astype(np.int64).copy()
    for fid, onset in onsets.items():
        m = (field_id == fid) & (label > HEALTHY)
        if not m.any():
            continue
        cls = int(np.bincount(label[m]).argmax())
        if horizon_doy < onset:
            out[m] = HEALTHY
        elif horizon_doy < onset + VISIBLE_AFTER_DAYS.get(cls, 0.0):
            out[m] = -1
    return out


def draw_cut_doys(rng: np.random.Generator, n: int, last_doy: float) -> np.ndarray:
    """``n`` random cut days of year between :data:`CUT_FIRST_DOY` and the last acquisition."""
    return np.sort(rng.uniform(CUT_FIRST_DOY, max(CUT_FIRST_DOY + 1.0, last_doy), size=n))


def doy_date(year: int, doy: float) -> dt.date:
    """Day of year (1 January = 1) → date."""
    return dt.date(year, 1, 1) + dt.timedelta(days=int(np.floor(doy)) - 1)
