"""How much memory an analysis needs, and how many can run at once.

Measured on the real core path with the simulated source (peak resident memory above an idle
server, ``python bench/load.py --calibrate``; table in docs/api.md): the analysis runs tile by
tile (256 × 256 px), so most of its memory is one tile's work, bounded whatever the grid; the
fetched cube and the per-pixel results of the whole grid add a little per pixel and day; and
attributions (``explain``) add a fixed amount.
"""

from __future__ import annotations

import logging

from api.settings import ApiSettings

LOGGER = logging.getLogger("agrostress.api.jobs")

BASE_MB = 250.0
"""Fixed part of one analysis (outputs, plots, the model's activations at rest)."""

TILE_PX = 256 * 256
"""Pixels of the core path's analysis tile."""

MB_PER_TILE_PIXEL = 0.016
"""Peak memory per pixel of the tile being analysed (features, model activations)."""

MB_PER_PIXEL_DAY = 1.0e-5
"""Memory per grid pixel and day of the fetched period (the cube, its cleaned copy, the maps;
measured 8.1e-6 on a 5,191 ha grid)."""

EXPLAIN_MB = 1_800.0
"""Attributions (baselines, gradients and the attributed pixels of every field)."""


def estimate_job_mb(extent_px: int, period_days: int, explain: bool = False) -> float:
    """Estimated peak memory (MB) of an analysis of ``extent_px`` grid pixels over a period."""
    mb = (BASE_MB + MB_PER_TILE_PIXEL * min(extent_px, TILE_PX)
          + MB_PER_PIXEL_DAY * extent_px * max(1, period_days))
    return mb + (EXPLAIN_MB if explain else 0.0)


def available_mb() -> float:
    """Memory the system can give without swapping (MB)."""
    import psutil

    return psutil.virtual_memory().available / 1e6


def job_workers(api: ApiSettings, available: float | None = None) -> int:
    """The job workers this process runs: ``job_workers``, fewer when the available memory
    cannot hold that many analyses of ``max_job_memory_mb`` (never fewer than one)."""
    free = available_mb() if available is None else available
    fit = max(1, int(0.9 * free // api.max_job_memory_mb))
    if fit < api.job_workers:
        LOGGER.warning(
            "%d job worker(s) instead of %d: %.0f MB available holds %d analyses of "
            "%s=%.0f MB", fit, api.job_workers, free, fit,
            ApiSettings.env_name("max_job_memory_mb"), api.max_job_memory_mb)
    return min(api.job_workers, fit)
