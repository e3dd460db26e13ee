"""References of the training scenes, drawn as a real region would give them.

Training scenes hold about one third of each class; a real region's wheat is mostly healthy
(see ``docs/models.md``, "Priors"). Each scene therefore gets several reference draws, each from
its healthy wheat plus a random share of its stressed fields (0–35 % of the wheat pixels;
0–70 %, covering balanced test scenes too, gave +1.7 points of field accuracy on simulated
scenes but fewer healthy calls on the real wheat: docs/benchmarks.md), and,
in half of the draws, the scene's other land covers too (the gate and the trimmed median must
cope with them, as they do with a user's mixed parcels). Draws with too little gated wheat fall
back to the built-in reference, as at inference.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from agrostress.preprocess.reference import ReferenceSampler

MAX_STRESSED_SHARE = 0.35


def scene_reference_draws(
    features: np.ndarray,
    label: np.ndarray,
    field_id: np.ndarray,
    insufficient: np.ndarray,
    names: Sequence[str],
    doys: Sequence[float],
    rng: np.random.Generator,
    draws: int,
    horizon_doy: float | None = None,
) -> list[np.ndarray | None]:
    """``draws`` reference series (T, F) of one labelled scene (None where the draw falls back
    to the built-in reference). ``features`` (T, F, H, W); ``label`` −1 outside wheat;
    ``horizon_doy``: the season cut the features come from (the gate reads no later step)."""
    ok = ~insufficient
    wheat = (field_id > 0) & (label >= 0) & ok
    ids = np.unique(field_id[wheat])
    field_class = {int(i): int(np.bincount(label[(field_id == i) & wheat]).argmax()) for i in ids}
    healthy_px = sum(int(((field_id == i) & wheat).sum()) for i, c in field_class.items() if c == 0)
    stressed = [i for i, c in field_class.items() if c != 0]
    stressed_px = sum(int(((field_id == i) & wheat).sum()) for i in stressed)
    out: list[np.ndarray | None] = []
    for _ in range(draws):
        share = rng.uniform(0.0, MAX_STRESSED_SHARE)
        q = 0.0 if not stressed_px else min(1.0, share * healthy_px / max(1e-9, (1 - share) * stressed_px))
        chosen = [i for i in stressed if rng.random() < q]
        keep = {i for i, c in field_class.items() if c == 0} | set(chosen)
        usable = wheat & np.isin(field_id, list(keep))
        group = field_id.astype(np.int64)
        if rng.random() < 0.5:  # the other land covers of the scene join the candidates
            others = ok & (label < 0)
            usable = usable | others
            group = np.where(others, 1_000_000 + np.arange(others.size).reshape(others.shape)
                             // 100, group)
        sampler = ReferenceSampler(names, doys, width=label.shape[1],
                                   seed=int(rng.integers(1 << 30)), horizon_doy=horizon_doy)
        sampler.add(features, usable, group, (0, 0))
        ref = sampler.reference(builtin=None) if sampler.enough() else None
        out.append(None if ref is None else ref.series)
    return out
