"""Each field's call as it would have been on every past date of the season (its time line),
and the date from which its current call has held.

The time line reruns the model on a tile-independent sample of each field's pixels
(:data:`TIMELINE_PIXELS`, the same position hash as the explanations) with the season cut at
every earlier grid step from :attr:`~agrostress.decision.DecisionPolicy.earliest_doy` on: the
steps after a date are masked, exactly as for an as-of request on that date. Two things differ
from a fresh request on that date, both small and both recorded in the summary: the reference
is the one of the current request (its steps after the date are masked too), and a grid step
just before a past date may have been interpolated towards the next acquisition when the
date fell between acquisitions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from agrostress.analysis.sampling import Candidates
from agrostress.analysis.summaries import FieldSummary, field_call
from agrostress.cube import TOO_EARLY_CODE, UNCERTAIN_CODE
from agrostress.decision import DecisionPolicy, abstentions, apply_priors
from agrostress.preprocess.season import SeasonCut

TIMELINE_PIXELS = 32
"""Pixels per field the time line is computed on."""


@dataclass(frozen=True)
class FieldTimeline:
    """One field's calls on past dates, then on the as-of date."""

    field_id: Any
    dates: list[str]
    doys: list[float]
    calls: list[str | None]
    probabilities: dict[str, list[float]]  # class → mean probability per date
    call_since: str | None  # first date from which the current call has held (None: abstains)

    def to_dict(self) -> dict[str, Any]:
        return {"dates": self.dates, "doys": self.doys, "calls": self.calls,
                "probabilities": self.probabilities, "call_since": self.call_since}


def call_since(calls: list[str | None], dates: list[str], classes: list[str]) -> str | None:
    """The first date from which the last call (a stress class) has held to the end."""
    if not calls or calls[-1] not in classes:
        return None
    j = len(calls) - 1
    while j > 0 and calls[j - 1] == calls[-1]:
        j -= 1
    return dates[j]


def field_timelines(model: Any, cand: Candidates, field_ids: list[Any],
                    field_rows: list[FieldSummary], names: list[str], grid_dates: list[str],
                    season: SeasonCut, decision: DecisionPolicy,
                    trained: dict[str, float]) -> list[FieldTimeline]:
    """Time lines of every field with a call (see the module docstring)."""
    doys = [float(d) for d in model.grid.doys]
    past = [k for k in range(season.observed_steps - 1)
            if doys[k] >= decision.earliest_doy]
    per_step: list[tuple[np.ndarray, np.ndarray]] = []
    if cand.x is not None and cand.group.size and past:
        per_step = _past_calls(model, cand.x, past, decision, names, trained, doys,
                               season.observed_steps)
    out = []
    for i, (fid, row) in enumerate(zip(field_ids, field_rows, strict=True)):
        dates, dd, calls = [], [], []
        probs: dict[str, list[float]] = {n: [] for n in names}
        members = np.flatnonzero(cand.group == i) if per_step else np.zeros(0, int)
        if members.size and row.call is not None:
            n = len(members)
            for k, (p, codes) in zip(past, per_step, strict=True):
                mean_p = p[:, members].mean(axis=1)
                c = codes[members]
                calls.append(field_call(mean_p, float((c == UNCERTAIN_CODE).sum() / n),
                                        float((c == TOO_EARLY_CODE).sum() / n), names,
                                        decision, decision.in_season(doys[k])))
                dates.append(grid_dates[k])
                dd.append(doys[k])
                for j, nm in enumerate(names):
                    probs[nm].append(float(mean_p[j]))
        dates.append(season.as_of.isoformat())
        dd.append(float(season.horizon_doy))
        calls.append(row.call)
        for nm in names:
            v = row.mean_probabilities.get(nm)
            probs[nm].append(float(v) if v is not None else float("nan"))
        out.append(FieldTimeline(fid, dates, dd, calls, probs, call_since(calls, dates, names)))
    return out


def _past_calls(model: Any, raw: np.ndarray, past: list[int], decision: DecisionPolicy,
                names: list[str], trained: dict[str, float], doys: list[float],
                current: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per past step k: probabilities (C, n) after temperature and priors, and abstention
    codes (n,), of the sampled inputs ``raw`` (n, T, F[, P, P]) with the season cut after k
    (the model's own inference path, one pass per step); the horizon is restored after."""
    centre = raw[:, :, :, model.context, model.context] if model.context else raw
    xn = model.normalise(np.moveaxis(raw, 2, -1))
    x = model.tensor(np.moveaxis(xn, -1, 2))
    centre_n = model.normalise(centre)
    out = []
    try:
        for k in past:
            model.set_horizon(k + 1)
            with torch.inference_mode():
                logits = model.module(x)
            p = torch.softmax(logits / model.temperature, dim=1).cpu().numpy().T
            p = apply_priors(p.astype(np.float32), names, decision.priors, trained)
            ood = None if model.ood is None else model.ood.score(model.ood_inputs(centre_n))
            out.append((p, abstentions(p, ood, decision, doys[k])))
    finally:
        model.set_horizon(current)
    return out
