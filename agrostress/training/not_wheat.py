"""Training data of the not-wheat detector: pixels of simulated regions, wheat against every
other land cover, each seen over the whole season or cut at a random date.

The simulator draws the other covers of a region (maize, winter barley, rapeseed, sunflower,
grassland with mowing, forest, bare soil / fallow, water, built-up, and the hedges, tracks and
grass strips between parcels; :mod:`agrostress.simulate.landcover`, calibrated on the real
crops of ``shared/real``); its cubes carry the ``land_cover`` layer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agrostress.cube import open_cube
from agrostress.preprocess import FeatureSpec, TemporalGrid, feature_stack
from agrostress.simulate.landcover import WHEAT

#: earliest season cut (DOY): before it no cover is told apart
FIRST_CUT_DOY = 95.0


@dataclass
class CoverData:
    """Pixel series ``x`` (N, T, F) of raw features, ``y`` (0 wheat, 1 not wheat), the land
    cover code, the scene index and the observed grid steps of every sample."""

    x: np.ndarray
    y: np.ndarray
    cover: np.ndarray
    scene: np.ndarray
    steps: np.ndarray
    spec: FeatureSpec
    grid: TemporalGrid


def load_cover_data(paths: Sequence[Path], spec: str | Sequence[str], grid: str, *,
                    pixels: int = 400, whole_share: float = 0.4, seed: int = 0,
                    progress: Callable[[int, int], None] | None = None) -> CoverData:
    """Up to ``pixels`` usable pixels per scene, half wheat and half the other covers (each
    cover in proportion to its area); ``whole_share`` of them see the whole season, the others
    a season cut at a random grid date from DOY :data:`FIRST_CUT_DOY` on (the steps after it
    are what :class:`agrostress.analysis.not_wheat.NotWheatDetector` masks)."""
    rng = np.random.default_rng(seed)
    fspec, tgrid = FeatureSpec.parse(spec), TemporalGrid.parse(grid)
    doys = np.asarray(tgrid.doys, dtype=float)
    first = int(np.searchsorted(doys, FIRST_CUT_DOY)) + 1
    xs, ys, covers, scenes, steps = [], [], [], [], []
    for i, path in enumerate(paths):
        cube = open_cube(path).load()
        if "land_cover" not in cube:
            raise ValueError(f"{path} has no land_cover layer (not a simulated region)")
        fs = feature_stack(cube, fspec, tgrid)
        f = np.asarray(fs["features"].transpose("y", "x", "doy", "feature").values)
        usable = ~np.asarray(fs["insufficient_data"].values)
        cover = np.asarray(cube["land_cover"].transpose("y", "x").values)
        wheat = np.flatnonzero((usable & (cover == WHEAT)).ravel())
        other = np.flatnonzero((usable & (cover != WHEAT)).ravel())
        half = pixels // 2
        pick = np.concatenate([rng.choice(wheat, min(half, len(wheat)), replace=False),
                               rng.choice(other, min(pixels - half, len(other)), replace=False)])
        n = len(pick)
        xs.append(f.reshape(-1, *f.shape[2:])[pick])
        covers.append(cover.ravel()[pick])
        ys.append((cover.ravel()[pick] != WHEAT).astype(np.int64))
        scenes.append(np.full(n, i))
        cut = rng.integers(first, len(doys) + 1, n)
        steps.append(np.where(rng.random(n) < whole_share, len(doys), cut))
        if progress:
            progress(i + 1, len(paths))
    return CoverData(np.concatenate(xs).astype(np.float32), np.concatenate(ys),
                     np.concatenate(covers), np.concatenate(scenes), np.concatenate(steps),
                     fspec, tgrid)
