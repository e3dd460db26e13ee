"""Per-field and per-class mean series of a few features, for the trajectory plot."""

from __future__ import annotations

from typing import Any

import numpy as np

from agrostress.analysis.summaries import FieldSummary, pretty_name
from agrostress.preprocess import FeatureSpec


def field_trajectories(spec: FeatureSpec, doys: np.ndarray, dates: list[str], field_ids: list[Any],
                  field_rows: list[FieldSummary], t_sum: np.ndarray, t_sq: np.ndarray,
                  t_cnt: np.ndarray,
                  c_sum: np.ndarray, c_sq: np.ndarray, c_cnt: np.ndarray,
                  names: list[str]) -> dict[str, Any]:
    feats = list(spec.names)

    def series(s: np.ndarray, n: float) -> dict[str, list[float]] | None:
        if n <= 0:
            return None
        m = s / n
        return {f: [float(v) for v in m[:, j]] for j, f in enumerate(feats)}

    def spread(s: np.ndarray, sq: np.ndarray, n: float) -> dict[str, list[float]]:
        m = s / n
        sd = np.sqrt(np.maximum(sq / n - m * m, 0))
        return {f: [float(v) for v in sd[:, j]] for j, f in enumerate(feats)}

    fields_out = {}
    for i, fid in enumerate(field_ids, start=1):
        fields_out[str(fid)] = series(t_sum[i], t_cnt[i])
    pooled: dict[str, Any] = {}
    for k, nm in enumerate(names):
        members = [i for i, r in enumerate(field_rows, start=1) if r.call == nm]
        n = float(t_cnt[members].sum()) if members else 0.0
        if n > 0:
            s_, q_ = t_sum[members].sum(axis=0), t_sq[members].sum(axis=0)
            pooled[nm] = {"source": f"{len(members)} field(s) called {pretty_name(nm)}",
                          "pixels": int(n), "mean": series(s_, n), "std": spread(s_, q_, n)}
        elif c_cnt[k] > 0:
            pooled[nm] = {"source": f"pixels predicted {pretty_name(nm)}", "pixels": int(c_cnt[k]),
                          "mean": series(c_sum[k], c_cnt[k]),
                          "std": spread(c_sum[k], c_sq[k], c_cnt[k])}
    return {
        "features": feats,
        "doys": [int(d) for d in doys],
        "dates": dates,
        "fields": fields_out,
        "references": pooled,
        "reference_class": names[0],
    }
