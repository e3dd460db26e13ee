"""Temporal regularisation: irregular valid observations → a fixed day-of-year grid.

Rules (see ``docs/preprocess.md``), for every pixel and grid step ``g``:

* the bracketing observations are the last *valid* observation before ``g`` and the first
  valid observation on or after ``g``; the value is the linear interpolation between them;
* the step is **missing** (NaN) when they are more than ``max_gap`` days apart — unless an
  observation falls exactly on ``g``;
* before the first / after the last valid observation the nearest value is carried at most
  ``edge`` days (default ``max_gap / 2``); further out the step is missing;
* an optional Whittaker smoother (second differences, weight 0 on missing steps) is applied
  on the grid; missing steps stay NaN.

The core is vectorised over pixels: a forward and a backward pass over the dates carry the
last/next valid value with bit-mask selects (no per-pixel Python loop, no gather), and the
output is one weighted sum per grid step.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

_ALL = np.uint32(0xFFFFFFFF)
BLOCK_PIXELS = 10000
"""Pixels processed together: keeps the working set in cache (measured best ~5–14 k;
power-of-two sizes ≥ 16 k suffer cache-set conflicts on 64 KiB row strides)."""


@dataclass(frozen=True)
class TemporalGrid:
    """Day-of-year grid ``start, start+step, …, ≤ end`` (days since 1 January + 1)."""

    start: int = 60
    end: int = 200
    step: int = 5

    def __post_init__(self) -> None:
        if self.step <= 0:
            raise ValueError(f"grid step must be positive, got {self.step}")
        if self.end < self.start:
            raise ValueError(f"grid end {self.end} is before its start {self.start}")

    @property
    def doys(self) -> np.ndarray:
        """The grid's days of year (int64)."""
        return np.arange(self.start, self.end + 1, self.step, dtype=np.int64)

    def __len__(self) -> int:
        return int(self.doys.size)

    def __str__(self) -> str:
        return f"{self.start}:{self.end}:{self.step}"

    @classmethod
    def parse(cls, text: str | TemporalGrid | None) -> TemporalGrid:
        """Parse ``"START:END:STEP"`` (or ``"START:END"`` with step 5)."""
        if text is None:
            return cls()
        if isinstance(text, TemporalGrid):
            return text
        m = re.fullmatch(r"\s*(-?\d+)\s*:\s*(-?\d+)\s*(?::\s*(\d+)\s*)?", str(text))
        if not m:
            raise ValueError(f"grid must look like START:END:STEP (e.g. 60:200:5), got {text!r}")
        return cls(int(m.group(1)), int(m.group(2)), int(m.group(3) or 5))

    def to_dict(self) -> dict[str, int]:
        return {"start": self.start, "end": self.end, "step": self.step}


def day_of_year(times: Any, year: int | None = None) -> tuple[np.ndarray, int]:
    """Dates → day of year (float64, 1 January = 1) relative to ``year``.

    ``year`` defaults to the calendar year holding most dates, so a winter-wheat series that
    starts in the previous autumn gets DOY ≤ 0 for those dates. Time of day is ignored.
    """
    t = pd.DatetimeIndex(np.asarray(times)).normalize()
    if t.size == 0:
        raise ValueError("no dates: the cube has an empty time axis")
    if year is None:
        years, counts = np.unique(t.year, return_counts=True)
        year = int(years[np.argmax(counts)])
    jan1 = pd.Timestamp(year=year, month=1, day=1)
    return ((t - jan1).days.to_numpy() + 1).astype(np.float64), year


@dataclass(frozen=True)
class Regularisation:
    """How series are put on the grid and when a pixel has too little data.

    ``max_gap``: bracketing valid observations further apart than this (days) leave the step
    missing; ``edge``: how far (days) the first/last valid value is carried beyond the data
    (default ``max_gap / 2``); ``smoother``: None or ``"whittaker"`` with parameter ``lam``;
    a pixel is ``insufficient_data`` with fewer than ``min_valid`` valid observations in the
    grid window or more than ``max_missing_fraction`` of its grid steps missing.
    """

    max_gap: float = 30.0
    edge: float | None = None
    smoother: str | None = None
    lam: float = 10.0
    min_valid: int = 4
    max_missing_fraction: float = 1 / 3

    def __post_init__(self) -> None:
        if self.max_gap <= 0:
            raise ValueError(f"max_gap must be positive, got {self.max_gap}")
        if self.edge is not None and self.edge < 0:
            raise ValueError(f"edge must be ≥ 0, got {self.edge}")
        if self.smoother not in (None, "whittaker"):
            raise ValueError(f"unknown smoother {self.smoother!r}; available: 'whittaker'")
        if self.lam < 0:
            raise ValueError(f"lam must be ≥ 0, got {self.lam}")
        if self.min_valid < 1:
            raise ValueError(f"min_valid must be ≥ 1, got {self.min_valid}")
        if not 0 <= self.max_missing_fraction <= 1:
            raise ValueError("max_missing_fraction must be in [0, 1]")

    @property
    def edge_days(self) -> float:
        return self.max_gap / 2.0 if self.edge is None else float(self.edge)

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_gap": self.max_gap,
            "edge": self.edge_days,
            "smoother": self.smoother,
            "lam": self.lam,
            "min_valid": self.min_valid,
            "max_missing_fraction": self.max_missing_fraction,
        }


@dataclass
class Regularised:
    """Result of :func:`regularise` (``P`` pixels, ``C`` channels, ``G`` grid steps)."""

    values: np.ndarray  # (G, C, P) float32, NaN = missing step
    step_valid: np.ndarray  # (G, P) bool
    valid_count: np.ndarray  # (P,) int32, valid observations within the grid window ± edge
    longest_gap: np.ndarray  # (P,) float32 days, longest stretch without a valid observation


def check_overlap(doys: np.ndarray, grid: TemporalGrid, edge: float) -> None:
    """Raise ``ValueError`` when the grid lies entirely outside the observed season."""
    g = grid.doys
    lo, hi = float(np.min(doys)), float(np.max(doys))
    if not np.any((g >= lo - edge) & (g <= hi + edge)):
        raise ValueError(
            f"grid DOY {grid.start}–{grid.end} lies outside the data's season "
            f"(observations span DOY {lo:.0f}–{hi:.0f}); choose a grid inside it"
        )


def regularise(
    values: np.ndarray,
    doys: Sequence[float] | np.ndarray,
    grid: TemporalGrid | str | None = None,
    *,
    valid: np.ndarray | None = None,
    max_gap: float = 30.0,
    edge: float | None = None,
    smoother: str | None = None,
    lam: float = 10.0,
    block: int = BLOCK_PIXELS,
) -> Regularised:
    """Interpolate series observed on ``doys`` onto ``grid`` over valid observations only.

    ``values`` is (T,), (T, P) or (T, C, P) (time first, pixels last); ``valid`` is a (T, P)
    boolean mask (default: all channels finite). Invalid observations never reach the
    output. Returns :class:`Regularised` with values shaped (G, C, P).
    """
    grid = TemporalGrid.parse(grid)
    v = np.asarray(values, dtype=np.float32)
    if v.ndim == 1:
        v = v[:, None, None]
    elif v.ndim == 2:
        v = v[:, None, :]
    if v.ndim != 3:
        raise ValueError(f"values must be (T,), (T, P) or (T, C, P), got shape {values.shape}")
    doys = np.asarray(doys, dtype=np.float64)
    T, C, P = v.shape
    if doys.shape != (T,):
        raise ValueError(f"{doys.size} dates for {T} observations")
    if T > 1 and not np.all(np.diff(doys) > 0):
        raise ValueError("dates must be strictly increasing")
    if valid is None:
        valid = np.ones((T, P), dtype=bool)
    else:
        valid = np.asarray(valid, dtype=bool).reshape(T, P)
    edge = max_gap / 2.0 if edge is None else float(edge)
    check_overlap(doys, grid, edge)
    G = len(grid)
    out = np.empty((G, C, P), dtype=np.float32)
    step_valid = np.empty((G, P), dtype=bool)
    count = np.empty(P, dtype=np.int32)
    gap = np.empty(P, dtype=np.float32)
    plan = make_plan(doys, grid, max_gap, edge)
    for p0 in range(0, P, block):
        sl = slice(p0, min(P, p0 + block))
        r = regularise_block(v[:, :, sl], valid[:, sl], plan, smoother=smoother, lam=lam)
        out[:, :, sl], step_valid[:, sl], count[sl], gap[sl] = (
            r.values,
            r.step_valid,
            r.valid_count,
            r.longest_gap,
        )
    return Regularised(out, step_valid, count, gap)


def regularise_block(
    v: np.ndarray,
    valid: np.ndarray,
    plan: _Plan,
    *,
    smoother: str | None = None,
    lam: float = 10.0,
) -> Regularised:
    """:func:`regularise` on one cache-sized block: v (T, C, P) float32, valid (T, P) bool.

    Observations with a non-finite value in any channel are treated as invalid.
    """
    T, C, P = v.shape
    G = plan.grid.size
    out = np.empty((G, C, P), dtype=np.float32)
    step_valid = np.empty((G, P), dtype=bool)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        count, gap = _interp_block(v, valid, plan, out, step_valid)
        if smoother:
            out = smooth(out, step_valid, method=smoother, lam=lam)
    return Regularised(out, step_valid, count, gap)


def make_plan(
    doys: np.ndarray, grid: TemporalGrid, max_gap: float = 30.0, edge: float | None = None
) -> _Plan:
    """Precompute the date/grid bookkeeping shared by every pixel block."""
    edge = max_gap / 2.0 if edge is None else float(edge)
    return _plan(
        tuple(np.asarray(doys, float).tolist()), tuple(grid.doys.tolist()), float(max_gap), edge
    )


def insufficient(
    valid_count: np.ndarray,
    step_valid: np.ndarray,
    *,
    min_valid: int = 4,
    max_missing_fraction: float = 1 / 3,
    observed: np.ndarray | None = None,
) -> np.ndarray:
    """Pixels with too little data: < ``min_valid`` observations or too many missing steps.

    ``observed`` (G,) bool: the steps the series could have reached so far (a season cut in
    spring has no data after its last date, which is not missing data); default all."""
    if observed is not None:
        step_valid = step_valid[np.asarray(observed, dtype=bool)]
    missing = 1.0 - step_valid.mean(axis=0, dtype=np.float32)
    return (valid_count < min_valid) | (missing > max_missing_fraction + 1e-6)


# --------------------------------------------------------------------------- core


@dataclass(frozen=True)
class _Plan:
    doys: np.ndarray  # (T,) float32
    grid: np.ndarray  # (G,) float32
    t0: int  # first relevant observation
    t1: int  # one past the last relevant observation
    left_key: tuple[int, ...]  # per grid step: the date index whose forward state it takes
    right_key: tuple[int, ...]  # per grid step: the date index whose backward state it takes
    left_at: dict[int, tuple[int, ...]]  # t → grid steps whose left bracket state is taken at t
    right_at: dict[int, tuple[int, ...]]  # t → grid steps whose right bracket is taken at t
    max_gap: float
    edge: float
    window: tuple[float, float]  # DOY range whose observations are counted
    count_range: tuple[int, int]  # the date indices of that range
    clipped: np.ndarray  # (T,) float32 doys clipped to [start, end] (for longest_gap)
    start: float
    end: float


@lru_cache(maxsize=64)
def _plan(doys: tuple[float, ...], grid: tuple[int, ...], max_gap: float, edge: float) -> _Plan:
    d = np.asarray(doys, dtype=np.float64)
    g = np.asarray(grid, dtype=np.float64)
    reach = max(max_gap, edge)
    t0 = int(np.searchsorted(d, g[0] - reach, side="left"))
    t1 = int(np.searchsorted(d, g[-1] + reach, side="right"))
    j = np.searchsorted(d, g, side="left")  # d[j-1] < g <= d[j]
    lkey = [int(min(max(jj - 1, t0 - 1), t1 - 1)) for jj in j]
    rkey = [int(max(min(jj, t1), t0)) for jj in j]
    left: dict[int, list[int]] = {}
    right: dict[int, list[int]] = {}
    for k in range(len(j)):
        left.setdefault(lkey[k], []).append(k)
        right.setdefault(rkey[k], []).append(k)
    return _Plan(
        doys=d.astype(np.float32),
        grid=g.astype(np.float32),
        t0=t0,
        t1=t1,
        left_key=tuple(lkey),
        right_key=tuple(rkey),
        left_at={k: tuple(v) for k, v in left.items()},
        right_at={k: tuple(v) for k, v in right.items()},
        max_gap=max_gap,
        edge=edge,
        window=(float(g[0] - edge), float(g[-1] + edge)),
        count_range=(
            int(np.searchsorted(d, g[0] - edge, side="left")),
            int(np.searchsorted(d, g[-1] + edge, side="right")),
        ),
        clipped=np.clip(d, g[0], g[-1]).astype(np.float32),
        start=float(g[0]),
        end=float(g[-1]),
    )


def _select(state: np.ndarray, new: np.ndarray, m: np.ndarray, nm: np.ndarray, tmp: np.ndarray):
    """state = m ? new : state, on uint32 bit patterns (branch-free, SIMD-friendly)."""
    np.bitwise_and(state, nm, out=state)
    np.bitwise_and(new, m, out=tmp)
    np.bitwise_or(state, tmp, out=state)


def _interp_block(
    v: np.ndarray, valid: np.ndarray, plan: _Plan, out: np.ndarray, step_valid: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Fill ``out`` (G, C, P) and ``step_valid``; return (valid_count, longest_gap).

    Date bookkeeping (bracket dates, weights, gaps) is vectorised over (dates, pixels) with
    running max/min — dates are increasing, so the running max of "doy if valid else −inf"
    is the date of the last valid observation. Only the value passes loop over dates.
    """
    T, C, P = v.shape
    G = plan.grid.size
    t0, t1 = plan.t0, plan.t1
    if t1 <= t0:  # no observation near the grid
        out.fill(np.nan)
        step_valid.fill(False)
        return np.zeros(P, np.int32), np.full(P, plan.end - plan.start, np.float32)
    n = t1 - t0
    vb = v.view(np.uint32)  # bit-pattern view: works on strided slices too
    ob = out.view(np.uint32)
    state = np.zeros((C, P), dtype=np.uint32)  # 0 bits = 0.0: finite when no valid obs yet
    tmp = np.empty((C, P), dtype=np.uint32)
    # ---- forward value pass; an observation is valid only if all its channels are finite,
    # tested here while its row is in cache (a separate pass over v costs as much as a select)
    ok = np.empty((n, P), dtype=bool)
    masks = np.empty((n, P), dtype=np.uint32)
    total = np.empty(P, dtype=np.float32)
    last_left = max(plan.left_key)
    for k in plan.left_at.get(t0 - 1, ()):
        ob[k] = 0
    for t in range(t0, t1):
        i = t - t0
        np.add.reduce(v[t], axis=0, out=total)  # NaN/inf in any channel ⇒ non-finite sum
        np.isfinite(total, out=ok[i])
        ok[i] &= valid[t]
        m = masks[i]
        np.copyto(m, ok[i], casting="unsafe")
        np.negative(m, out=m)  # 1 → all-ones bit pattern
        if t <= last_left:  # later dates are nobody's left bracket
            _select(state, vb[t], m, ~m, tmp)
            for k in plan.left_at.get(t, ()):
                ob[k] = state
    nmasks = ~masks
    # ---- dates of the last valid observation ≤ t (forward) and first ≥ t (backward)
    d = plan.doys[t0:t1]
    last = _bit_select(d.view(np.uint32)[:, None], _NEG_INF_BITS, masks, nmasks).view(np.float32)
    first = _bit_select(d.view(np.uint32)[:, None], _POS_INF_BITS, masks, nmasks).view(np.float32)
    for i in range(1, n):  # running max/min row by row (ufunc.accumulate on axis 0 is slow)
        np.maximum(last[i - 1], last[i], out=last[i])
        np.minimum(first[n - i], first[n - i - 1], out=first[n - i - 1])
    dl = np.full((G, P), -np.inf, dtype=np.float32)
    dr = np.full((G, P), np.inf, dtype=np.float32)
    for k, (lt, rt) in enumerate(zip(plan.left_key, plan.right_key, strict=True)):
        if lt >= t0:
            dl[k] = last[lt - t0]
        if rt < t1:
            dr[k] = first[rt - t0]
    # ---- weights: NaN = missing step; w = 1 → right value, 0 → left value (exact)
    g = plan.grid[:, None]
    has_l, has_r = dl > -np.inf, dr < np.inf
    span = dr - dl
    w = (g - dl) / span  # NaN/inf where a bracket is missing: masked out below
    inside = has_l & has_r & ((span <= plan.max_gap) | (dr == g))
    right_only = ~has_l & has_r & (dr - g <= plan.edge)
    left_only = has_l & ~has_r & (g - dl <= plan.edge)
    np.logical_or(inside, right_only, out=step_valid)
    step_valid |= left_only
    # w = inside ? w : right_only ? 1 : left_only ? 0 : NaN, branch-free on the bits
    wb = w.view(np.uint32)
    wb &= _bits(inside)
    wb |= _bits(right_only) & _ONE_BITS
    wb |= ~_bits(step_valid) & _NAN_BITS
    one_minus_w = np.float32(1.0) - w
    # ---- longest gap within [start, end] (clipped dates; edges of the season included)
    lo, hi = plan.start, plan.end
    cd = plan.clipped[t0:t1, None]
    clast = np.clip(last, lo, hi)
    gap = np.empty((t1 - t0, P), dtype=np.float32)
    gap[0] = cd[0] - lo
    np.subtract(cd[1:], clast[:-1], out=gap[1:])
    gap.view(np.uint32)[...] &= masks  # 0.0 where the observation is not valid
    longest = gap.max(axis=0)
    np.maximum(longest, np.float32(hi) - clast[-1], out=longest)
    # ---- backward value pass: carry the next valid value and blend into ``out``
    state.fill(0)
    fstate, ftmp = state.view(np.float32), tmp.view(np.float32)

    def finish(t: int) -> None:
        for k in plan.right_at.get(t, ()):
            o = out[k]
            o *= one_minus_w[k]
            np.multiply(fstate, w[k], out=ftmp)
            o += ftmp

    finish(t1)
    for t in range(t1 - 1, min(plan.right_key) - 1, -1):  # earlier dates: nobody's right
        _select(state, vb[t], masks[t - t0], nmasks[t - t0], tmp)
        finish(t)
    c0, c1 = plan.count_range
    count = ok[c0 - t0 : c1 - t0].sum(axis=0, dtype=np.int32)
    return count, longest


_NEG_INF_BITS = np.float32(-np.inf).view(np.uint32)
_ONE_BITS = np.float32(1.0).view(np.uint32)
_NAN_BITS = np.float32(np.nan).view(np.uint32)


def _bits(b: np.ndarray) -> np.ndarray:
    """bool → uint32 all-ones / all-zeros."""
    out = b.astype(np.uint32)
    np.negative(out, out=out)
    return out


_POS_INF_BITS = np.float32(np.inf).view(np.uint32)


def _bit_select(a: np.ndarray, b: Any, m: np.ndarray, nm: np.ndarray) -> np.ndarray:
    """m ? a : b on uint32 bit patterns (a, b broadcast against m)."""
    out = np.bitwise_and(a, m)
    out |= np.bitwise_and(b, nm)
    return out


# --------------------------------------------------------------------------- smoothing


def _second_difference_bands(n: int, lam: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Diagonal, first and second sub-diagonals of λ·DᵀD (D: second differences, n × n)."""
    d = np.diff(np.eye(n), n=2, axis=0)
    dtd = lam * d.T @ d
    return np.diag(dtd).copy(), np.diag(dtd, -1).copy(), np.diag(dtd, -2).copy()


def smooth(
    values: np.ndarray, step_valid: np.ndarray, *, method: str = "whittaker", lam: float = 10.0
) -> np.ndarray:
    """Whittaker-smooth (G, C, P) grid series: minimise Σ wᵢ(yᵢ − zᵢ)² + λ Σ (Δ²z)².

    Weights are 1 on valid steps and 0 on missing ones (which stay NaN in the output). The
    pentadiagonal system (W + λDᵀD) z = W y is solved for all pixels at once by a vectorised
    LDLᵀ factorisation (a loop over the G steps, not over pixels). Pixels with fewer than
    three valid steps are returned unsmoothed.
    """
    if method != "whittaker":
        raise ValueError(f"unknown smoother {method!r}; available: 'whittaker'")
    if lam < 0:
        raise ValueError(f"smoothing parameter must be ≥ 0, got {lam}")
    G, C, P = values.shape
    if G < 3 or lam == 0:
        return values
    diag, sub1, sub2 = _second_difference_bands(G, float(lam))
    w = step_valid.astype(np.float64)
    a = w + diag[:, None]  # (G, P)
    d = np.empty((G, P))
    l1 = np.zeros((G, P))
    l2 = np.zeros((G, P))
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(G):
            di = a[i].copy()
            if i >= 2:
                l2[i] = sub2[i - 2] / d[i - 2]
                di -= l2[i] ** 2 * d[i - 2]
            if i >= 1:
                l1[i] = (sub1[i - 1] - (l2[i] * l1[i - 1] * d[i - 2] if i >= 2 else 0.0)) / d[i - 1]
                di -= l1[i] ** 2 * d[i - 1]
            d[i] = di
        inv_d = (1.0 / d).astype(np.float32)
    l1f, l2f = l1.astype(np.float32), l2.astype(np.float32)
    keep = (step_valid.astype(np.uint32) * _ALL)[:, None, :]
    z = np.empty((G, C, P), dtype=np.float32)
    src = values if values.dtype == np.float32 else values.astype(np.float32)
    np.bitwise_and(src.view(np.uint32), keep, out=z.view(np.uint32))
    tmp = np.empty((C, P), dtype=np.float32)
    for i in range(1, G):  # forward substitution: L u = W y
        np.multiply(z[i - 1], l1f[i], out=tmp)
        z[i] -= tmp
        if i >= 2:
            np.multiply(z[i - 2], l2f[i], out=tmp)
            z[i] -= tmp
    z *= inv_d[:, None, :]  # D v = u
    for i in range(G - 2, -1, -1):  # back substitution: Lᵀ z = v
        np.multiply(z[i + 1], l1f[i + 1], out=tmp)
        z[i] -= tmp
        if i + 2 < G:
            np.multiply(z[i + 2], l2f[i + 2], out=tmp)
            z[i] -= tmp
    few = step_valid.sum(axis=0) < 3
    if few.any():
        z[:, :, few] = values[:, :, few]
    z *= np.where(step_valid, np.float32(1), np.float32(np.nan))[:, None, :]
    return z
