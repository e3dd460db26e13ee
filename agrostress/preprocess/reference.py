"""The wheat around a field, date by date: the reference a field is judged against.

An agronomist reads a field against the wheat around it in the same season: a whole region
that ripens early is weather, a field that ripens before its neighbours is a symptom. The
reference is the typical winter-cereal series of the scene (or request), built from the
sampled pixels of the scene in three steps:

1. **gate**: winter-cereal-like NDVI seasons — green before April (mean NDVI ≥ 0.3 up to
   DOY 90), a canopy (peak ≥ 0.6) and a ripening or harvest after the peak (a fall of at least
   0.45 NDVI); maize, sunflower, soy, meadows, woods, water and towns mostly fail it;
   a season cut in spring (an in-season call) is gated on what it has shown so far (see
   :func:`cereal_like`);
2. **trimmed median of the greener half**: the per-date median of the gated pixels, then twice
   the median of the half of them closest to it (NDVI series distance) — it settles on the
   dominant cereal season even when other crops slip through the gate — and finally the
   median of the greener half of those (mean NDVI over the season): nitrogen deficiency and
   rust both take greenness away, so the reference stays near healthy wheat whether a scene's
   wheat is mostly healthy (a real region) or one third of each class (a training scene);
3. **fallback**: with fewer than :data:`MIN_PIXELS` gated pixels or fewer than
   :data:`MIN_GROUPS` fields among them (100 m cells when the request has no fields) — a field
   alone in its request, a season that has not ripened yet — the model's built-in reference
   (the median healthy wheat of its training scenes).

The model then sees each pixel beside its deviation from the reference (see ``FFDNN``'s
``reference`` option); the same code builds the references of the training scenes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

EARLY_DOY = 90  # the winter crop is green before this day
EARLY_NDVI = 0.3
PEAK_NDVI = 0.6
RIPENING_DROP = 0.45  # NDVI fall after the peak
PEAK_BY_DOY = 130  # a season cut earlier need not have reached its canopy peak yet
RIPE_BY_DOY = 190  # nor, cut earlier than this, its ripening
MIN_PIXELS = 100
MIN_GROUPS = 3
SAMPLE = 20_000  # pixels kept for the median (lowest position hashes: tile-independent)
TRIM_ROUNDS = 2


@dataclass(frozen=True)
class Reference:
    """A reference series in raw feature units, and where it came from."""

    series: np.ndarray  # (T, F) float32
    source: str  # "scene" (the gated pixels of this scene or request) or "built-in"
    pixels: int = 0  # gated pixels it was built from
    groups: int = 0  # fields (or, without fields, distinct 100 m cells) among them
    group_kind: str = "fields"  # what ``groups`` counts: "fields" or "100 m cells"

    def describe(self) -> dict[str, object]:
        """JSON-friendly description for summaries."""
        return {"source": self.source, "pixels": int(self.pixels), "fields": int(self.groups),
                "counted_as": self.group_kind,
                "gate": {"early_doy": EARLY_DOY, "early_ndvi": EARLY_NDVI,
                         "peak_ndvi": PEAK_NDVI, "ripening_drop": RIPENING_DROP},
                "min_pixels": MIN_PIXELS, "min_fields": MIN_GROUPS}


def _ndvi(x: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """NDVI from the B04/B08 features along the last axis → x.shape[:-1]."""
    names = list(names)
    if "B04" not in names or "B08" not in names:
        raise ValueError("the reference gate needs the B04 and B08 features")
    red, nir = x[..., names.index("B04")], x[..., names.index("B08")]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (nir - red) / (nir + red)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


def cereal_like(series: np.ndarray, names: Sequence[str], doys: Sequence[float],
                horizon_doy: float | None = None) -> np.ndarray:
    """Gate of pixel series (N, T, F) → (N,) bool: winter-cereal-like NDVI seasons.

    ``horizon_doy``: the season so far (steps after it are not looked at); a season cut before
    :data:`PEAK_BY_DOY` need not show its peak, one cut before :data:`RIPE_BY_DOY` its
    ripening — in spring the gate rests on the early green that spring crops lack."""
    doys = np.asarray(doys, dtype=float)
    horizon = float(doys[-1]) if horizon_doy is None else float(horizon_doy)
    seen = doys <= horizon + 1e-6
    nd = _ndvi(series, names)[:, seen]  # (N, T')
    early_steps = doys[seen] <= EARLY_DOY
    if not early_steps.any() or nd.shape[0] == 0:
        return np.zeros(series.shape[0], dtype=bool)
    early = nd[:, early_steps].mean(axis=1)
    ok = early >= EARLY_NDVI
    peak_at = nd.argmax(axis=1)
    peak = nd.max(axis=1)
    if horizon >= PEAK_BY_DOY:
        ok &= peak >= PEAK_NDVI
    if horizon >= RIPE_BY_DOY:
        after = np.where(np.arange(nd.shape[1])[None, :] >= peak_at[:, None], nd,
                         np.inf).min(axis=1)
        ok &= peak - after >= RIPENING_DROP
    return ok


def trimmed_median(series: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """(N, T, F) → (T, F): per-date median, then :data:`TRIM_ROUNDS` times the median of the
    half of the series closest to it in NDVI (the dominant season wins over stray crops), then
    the median of the greener half of those (mean NDVI)."""
    keep = series
    nd = _ndvi(series, names)
    ref = np.median(keep, axis=0)
    for _ in range(TRIM_ROUNDS):
        if len(keep) < 4:
            break
        dist = np.abs(nd - _ndvi(ref, names)[None]).mean(axis=1)
        close = dist <= np.median(dist)
        keep, nd = keep[close], nd[close]
        ref = np.median(keep, axis=0)
    if len(keep) >= 4:
        green = nd.mean(axis=1)
        ref = np.median(keep[green >= np.median(green)], axis=0)
    return ref.astype(np.float32)


class ReferenceSampler:
    """Collects gated pixel series tile by tile and returns the scene's :class:`Reference`.

    Pixels are kept by the lowest hash of their global position (at most :data:`SAMPLE`),
    so the reference does not depend on the tiling.
    """

    def __init__(self, names: Sequence[str], doys: Sequence[float], width: int, seed: int = 0,
                 horizon_doy: float | None = None):
        self.names, self.doys = list(names), np.asarray(doys, dtype=float)
        self.horizon_doy = horizon_doy
        self.width, self.seed = int(width), int(seed)
        self._prio: list[np.ndarray] = []
        self._series: list[np.ndarray] = []
        self._group: list[np.ndarray] = []
        self._kind = "fields"

    def add(self, features: np.ndarray, usable: np.ndarray, group: np.ndarray | None,
            origin: tuple[int, int]) -> None:
        """Offer a tile: features (T, F, h, w), ``usable`` (h, w) pixels that may serve (valid
        and, with fields, inside one), ``group`` (h, w) their field index (or None), and the
        tile's (row, col) origin in the scene."""
        rr, cc = np.nonzero(usable)
        if not rr.size:
            return
        s = np.ascontiguousarray(features[:, :, rr, cc].transpose(2, 0, 1))  # (N, T, F)
        ok = cereal_like(s, self.names, self.doys, self.horizon_doy) & np.isfinite(s).all(axis=(1, 2))
        if not ok.any():
            return
        gy, gx = rr[ok] + origin[0], cc[ok] + origin[1]
        self._prio.append(position_priority(gy, gx, self.width, self.seed))
        self._series.append(s[ok])
        if group is None:
            self._kind = "100 m cells"
        g = group[rr[ok], cc[ok]] if group is not None else (gy // 10) * 100_000 + gx // 10
        self._group.append(g.astype(np.int64))
        self._trim()

    def _trim(self) -> None:
        prio = np.concatenate(self._prio)
        if prio.size <= SAMPLE:
            return
        keep = np.argsort(prio, kind="stable")[:SAMPLE]
        self._prio = [prio[keep]]
        self._series = [np.concatenate(self._series)[keep]]
        self._group = [np.concatenate(self._group)[keep]]

    def _counts(self) -> tuple[int, int]:
        n = int(sum(p.size for p in self._prio))
        return n, int(np.unique(np.concatenate(self._group)).size) if n else 0

    def enough(self) -> bool:
        """Whether the gated pixels suffice for a scene reference."""
        n, groups = self._counts()
        return n >= MIN_PIXELS and groups >= MIN_GROUPS

    def reference(self, builtin: np.ndarray | None) -> Reference:
        """The scene reference, or the built-in one when the scene has too little wheat."""
        n, groups = self._counts()
        if self.enough():
            series = trimmed_median(np.concatenate(self._series), self.names)
            return Reference(series, "scene", n, groups, self._kind)
        if builtin is None:
            raise ValueError("too little winter-cereal-like area for a reference and the model "
                             "has no built-in one")
        return Reference(np.asarray(builtin, np.float32), "built-in", n, groups, self._kind)


def image_reference(features: np.ndarray, usable: np.ndarray, group: np.ndarray | None,
                    names: Sequence[str], doys: Sequence[float],
                    builtin: np.ndarray | None, horizon_doy: float | None = None) -> Reference:
    """The reference of one whole feature image (T, F, H, W): ``usable`` (H, W) pixels that may
    serve, ``group`` (H, W) their field index (or None); ``horizon_doy``: the season so far."""
    sampler = ReferenceSampler(names, doys, features.shape[-1], horizon_doy=horizon_doy)
    sampler.add(features, usable, group, (0, 0))
    return sampler.reference(builtin)


def position_priority(rows: np.ndarray, cols: np.ndarray, width: int, seed: int) -> np.ndarray:
    """A seeded pseudo-random number in [0, 1) per pixel (splitmix64 of its flat index).

    Depends only on the pixel's position and the seed, so which pixels are sampled (for the
    reference, for explanations) does not depend on the tiling.
    """
    with np.errstate(over="ignore"):
        z = rows.astype(np.uint64) * np.uint64(width) + cols.astype(np.uint64)
        z = z + np.uint64(0x9E3779B97F4A7C15) * np.uint64(seed + 1)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)
