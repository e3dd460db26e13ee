"""Yellow rust epidemics: spreading foci on a ~2 m sub-pixel grid, lesions that age.

Every infected field gets foci that cover a share of it at the epidemic onset and grow
radially, plus a weaker, later background infection across the field. Each sub-cell is reached at an *arrival* day; from then on its infected leaf-area
fraction follows a logistic curve. Lesions appear ~7 d after infection (chlorotic), sporulate
after ~14 d (orange uredia) and are necrotic after ~35 d. Sub-cells are averaged to 10 m
pixels, so neighbouring pixels are correlated and the pattern is patchy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
from scipy import ndimage

SUBCELLS = 5  # 5 x 5 sub-cells of 2 m per 10 m pixel
SYMPTOM_LAG, SPORULATION_LAG, NECROSIS_LAG = 7.0, 14.0, 35.0
LATENCY = 15.0  # days from arrival to half the maximum infected fraction


@dataclass
class RustField:
    """Epidemic parameters of one infected field."""

    onset: float  # DOY symptoms start
    rate: float  # logistic rate (/d)
    max_fraction: float  # max diseased leaf-area fraction inside foci
    focus_share: float  # field share covered by foci at onset
    spread_px_per_day: float  # radial growth (pixel sides per day)
    focus_radius_px: float | None = None  # focus radius at onset (None: 0.5–1.5 px drawn)


@dataclass
class RustMap:
    """Infected sub-cells of the scene: their pixel, arrival day, epidemic rate and maximum."""

    n_pixels: int
    pixel: np.ndarray  # (n_sub,) flat pixel index of each infected sub-cell
    arrival: np.ndarray  # (n_sub,) day the epidemic reaches the sub-cell
    rate: np.ndarray  # (n_sub,)
    max_fraction: np.ndarray  # (n_sub,)
    background: np.ndarray  # (n_sub,) arrival day of the background infection
    background_fraction: np.ndarray  # (n_sub,) its maximum

    @classmethod
    def empty(cls, n_pixels: int) -> RustMap:
        z = np.zeros(0)
        return cls(n_pixels, z.astype(np.intp), z, z, z, z, z)

    def add_field(self, rng: np.random.Generator, mask: np.ndarray, field: RustField) -> None:
        """Lay out the epidemic of one infected field (``mask``: its pixels, (H, W) bool).

        Foci (radius ``focus_radius_px`` at onset, as many as cover ``focus_share`` of the field) grow
        radially at ``spread_px_per_day``; a weaker background infection (wind-borne
        secondary spread) reaches the rest of the field 10–25 days after the onset.
        """
        h, w = mask.shape
        sub = np.kron(mask, np.ones((SUBCELLS, SUBCELLS), dtype=bool))
        ys, xs = np.nonzero(sub)
        n_cells = ys.size
        radius = field.focus_radius_px if field.focus_radius_px else rng.uniform(0.5, 1.5)
        r0 = radius * SUBCELLS  # sub-cells
        n_foci = int(np.clip(round(field.focus_share * n_cells / (np.pi * r0**2)), 1, 400))
        seeds = np.ones(sub.shape, dtype=bool)
        centres = rng.choice(n_cells, size=n_foci, replace=False)
        seeds[ys[centres], xs[centres]] = False
        dist = ndimage.distance_transform_edt(seeds)[ys, xs]  # to the nearest focus centre
        speed = field.spread_px_per_day * SUBCELLS  # sub-cells per day
        start = field.onset - SYMPTOM_LAG - LATENCY
        arrival = start + np.maximum(dist - r0, 0.0) / speed + rng.normal(0.0, 2.0, n_cells)
        background = start + rng.uniform(10, 25) + rng.normal(0.0, 3.0, n_cells)
        pixel = (ys // SUBCELLS) * w + (xs // SUBCELLS)
        bg_level = rng.uniform(0.15, 0.35)
        self.pixel = np.concatenate([self.pixel, pixel])
        self.arrival = np.concatenate([self.arrival, arrival])
        self.background = np.concatenate([self.background, background])
        self.rate = np.concatenate([self.rate, np.full(n_cells, field.rate)])
        self.max_fraction = np.concatenate([self.max_fraction, np.full(n_cells, field.max_fraction)])
        self.background_fraction = np.concatenate(
            [self.background_fraction, np.full(n_cells, field.max_fraction * bg_level)]
        )

    def infected(self, t: float) -> np.ndarray:
        """Infected leaf-area fraction per sub-cell at day ``t`` (not yet visible)."""
        with np.errstate(over="ignore"):
            focus = self.max_fraction / (1.0 + np.exp(-self.rate * (t - self.arrival - LATENCY)))
            bg = self.background_fraction / (
                1.0 + np.exp(-self.rate * (t - self.background - LATENCY))
            )
        return np.maximum(focus, bg)

    def lesion_fractions(self, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-pixel (chlorotic, sporulating, necrotic) leaf-area fractions at day ``t``.

        Equal to differencing :meth:`infected` at the three lesion ages and averaging sub-cells
        per pixel; done in one compiled pass over the sub-cells.
        """
        out = _lesion_fractions(
            float(t), self.pixel, self.arrival, self.background, self.rate, self.max_fraction,
            self.background_fraction, self.n_pixels,
        )
        return out[0], out[1], out[2]


@numba.njit(inline="always")
def _logistic_max(t, arrival, background, rate, peak, bg_peak):  # pragma: no cover - compiled
    focus = peak / (1.0 + math.exp(min(-rate * (t - arrival - LATENCY), 700.0)))
    bg = bg_peak / (1.0 + math.exp(min(-rate * (t - background - LATENCY), 700.0)))
    return max(focus, bg)


@numba.njit(cache=True, error_model="numpy")
def _lesion_fractions(t, pixel, arrival, background, rate, peak, bg_peak, n_pixels):  # pragma: no cover
    out = np.zeros((3, n_pixels))
    scale = 1.0 / SUBCELLS**2
    for i in range(pixel.size):
        a, b, r, m, mb = arrival[i], background[i], rate[i], peak[i], bg_peak[i]
        visible = _logistic_max(t - SYMPTOM_LAG, a, b, r, m, mb)
        sporulating = _logistic_max(t - SPORULATION_LAG, a, b, r, m, mb)
        necrotic = _logistic_max(t - NECROSIS_LAG, a, b, r, m, mb)
        p = pixel[i]
        out[0, p] += max(visible - sporulating, 0.0) * scale
        out[1, p] += max(sporulating - necrotic, 0.0) * scale
        out[2, p] += max(necrotic, 0.0) * scale
    return out
