"""Within-field heterogeneity of a wheat field as a 10 m sensor sees it.

Drawn per field (all ranges recorded in ``fields.geojson``):

* **headlands**: the outer 1–2 pixels are compacted and turned on: canopy × 0.75–0.92;
* **tramlines**: wheel tracks every 18–36 m at a random bearing; a pixel loses canopy in
  proportion to the bare track it contains (two 0.5 m wheel tracks per tramline);
* **soil patches** (share 0–20 %): shallow, sandy or chalky spots with a thinner canopy
  (× 0.6–0.85), a brighter soil (× 1.1–1.4) and senescence 3–10 days earlier;
* **lodging** (15 % of fields, 3–20 % of the field): from 50–75 days after green-up (around
  heading) the canopy lies flat (planophile leaves);
* **weeds** (20 % of fields, 2–15 % of the field): green weeds (LAI 0.3–1.2) that stay green
  when the wheat ripens.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from agrostress.simulate.layout import smooth_noise

PIXEL_M = 10.0


@dataclass
class FieldPatterns:
    """Per-pixel modifiers on the scene grid (1 / 0 / inf outside the field) and their draws."""

    vigour: np.ndarray  # canopy (LAI) multiplier
    early_senescence: np.ndarray  # days earlier
    soil_brightness: np.ndarray  # multiplier
    lodging: np.ndarray  # DOY the pixel lodges (inf: never)
    weed_lai: np.ndarray
    headland_px: float
    tramline_spacing_m: float
    tramline_angle_deg: float
    soil_patch_share: float
    lodging_doy: float
    lodging_share: float
    weed_share: float


def _patches(rng: np.random.Generator, shape: tuple[int, int], share: float, sigma: float) -> np.ndarray:
    """Smooth blobs covering about ``share`` of ``shape``."""
    if share <= 0:
        return np.zeros(shape, dtype=bool)
    z = smooth_noise(rng, shape, sigma)
    return z > np.quantile(z, 1 - share)


def tramline_fraction(shape: tuple[int, int], spacing_m: float, angle_deg: float,
                      offset_m: float, track_m: float = 1.0, sub: int = 5) -> np.ndarray:
    """Share of each pixel covered by wheel tracks (``track_m`` of bare soil per tramline)."""
    h, w = shape
    step = PIXEL_M / sub
    y, x = np.mgrid[0 : h * sub, 0 : w * sub] * step + step / 2
    a = np.deg2rad(angle_deg)
    phase = np.mod(x * np.cos(a) + y * np.sin(a) + offset_m, spacing_m)
    # the tramline is a pair of wheel tracks 1.5–2 m apart; per pixel the bare share is the
    # track width over the sub-sample spacing where the line passes
    hit = (phase < step).astype(np.float32) * min(1.0, track_m / step)
    return hit.reshape(h, sub, w, sub).mean(axis=(1, 3))


def draw_patterns(rng: np.random.Generator, mask: np.ndarray, green_up: float) -> FieldPatterns:
    """Draw the heterogeneity of the field ``mask`` ((H, W) bool) whose green-up is ``green_up``."""
    rows, cols = np.nonzero(mask)
    r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    box = mask[r0:r1, c0:c1]
    shape = box.shape
    headland = float(rng.choice([1.0, 2.0]))
    inner = ndimage.binary_erosion(box, iterations=int(headland), border_value=0)
    vigour = np.where(box & ~inner, rng.uniform(0.75, 0.92), 1.0)
    spacing, angle = float(rng.uniform(18, 36)), float(rng.uniform(0, 180))
    vigour *= 1 - tramline_fraction(shape, spacing, angle, rng.uniform(0, spacing))
    share_soil = float(rng.uniform(0, 0.2))
    soil = _patches(rng, shape, share_soil, sigma=rng.uniform(1.5, 4))
    vigour = np.where(soil, vigour * rng.uniform(0.6, 0.85), vigour)
    early = np.where(soil, rng.uniform(3, 10), 0.0)
    bright = np.where(soil, rng.uniform(1.1, 1.4), 1.0)
    lodging_doy, lodging_share = float("nan"), 0.0
    lodging = np.full(shape, np.inf)
    if rng.random() < 0.15:
        lodging_doy = green_up + float(rng.uniform(50, 75))
        lodging_share = float(rng.uniform(0.03, 0.2))
        lodging[_patches(rng, shape, lodging_share, sigma=rng.uniform(1, 3))] = lodging_doy
    weed_share = float(rng.uniform(0.02, 0.15)) if rng.random() < 0.2 else 0.0
    weeds = np.where(_patches(rng, shape, weed_share, sigma=rng.uniform(1, 3)),
                     rng.uniform(0.3, 1.2), 0.0)

    def place(a: np.ndarray, fill: float) -> np.ndarray:
        out = np.full(mask.shape, fill)
        out[r0:r1, c0:c1] = np.where(box, a, fill)
        return out

    return FieldPatterns(
        vigour=place(vigour, 1.0), early_senescence=place(early, 0.0),
        soil_brightness=place(bright, 1.0), lodging=place(lodging, np.inf),
        weed_lai=place(weeds, 0.0), headland_px=headland, tramline_spacing_m=spacing,
        tramline_angle_deg=angle, soil_patch_share=share_soil, lodging_doy=lodging_doy,
        lodging_share=lodging_share, weed_share=weed_share,
    )
