"""The simulator as a source (``source=simulated``): same interface, fully offline.

The scene is simulated directly on the AOI's UTM grid; ``label`` and ``field_id`` ride along,
other ground-truth variables of the simulator are not carried into the ingested cube.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from agrostress.ingest.base import (
    ProgressCallback,
    SourceConfigError,
    finalize_cube,
    period_bounds,
    register_source,
    report,
)

if TYPE_CHECKING:
    import xarray as xr

    from agrostress.ingest.aoi import AOI
    from agrostress.settings import Settings


@register_source("simulated")
class SimulatedSource:
    """Simulated Sentinel-2 L2A scenes with labelled wheat fields."""

    name = "simulated"
    location_determined = False  # the scene depends on the grid's size and origin

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        seed: int = 1,
        fields: int = 12,
        difficulty: str = "benchmark",
    ):
        self.settings = settings
        self.seed = seed
        self.fields = fields
        self.difficulty = difficulty

    def identity(self) -> dict[str, Any]:
        from agrostress import __version__

        return {
            "seed": self.seed,
            "fields": self.fields,
            "difficulty": self.difficulty,
            "simulator_version": __version__,
        }

    def fetch(
        self, aoi: AOI, start: dt.date, end: dt.date, *, progress: ProgressCallback | None = None
    ) -> xr.Dataset:
        try:
            from agrostress.simulate import SimulationConfig, simulate_scene
        except ImportError as e:
            raise SourceConfigError(f"the simulator is not available: {e}") from e
        if min(aoi.width, aoi.height) < 8 or aoi.width * aoi.height < 60:
            raise SourceConfigError(
                f"the simulator needs at least 8 px a side and 60 px; the AOI grid is "
                f"{aoi.width}x{aoi.height}"
            )
        report(progress, "simulate", 0, 1)
        cfg = SimulationConfig(
            fields=max(1, min(self.fields, aoi.width * aoi.height // 60)),
            width=aoi.width,
            height=aoi.height,
            seed=self.seed,
            difficulty=self.difficulty,
            epsg=aoi.epsg,
            origin=(aoi.bounds[0], aoi.bounds[3]),
            start=start.isoformat(),
            end=end.isoformat(),
        )
        ds, _fields = simulate_scene(cfg)
        if (
            ds.sizes["x"] != aoi.width
            or ds.sizes["y"] != aoi.height
            or not (np.allclose(ds["x"].values, aoi.x) and np.allclose(ds["y"].values, aoi.y))
        ):
            raise SourceConfigError("the simulator returned a grid different from the AOI grid")
        ds = ds.sel(time=slice(*period_bounds(start, end)))
        times = [pd.Timestamp(t) for t in ds["time"].values]
        platforms = [str(p) for p in ds["platform"].values] if "platform" in ds.coords else None
        extra = {n: np.asarray(ds[n].values) for n in ("label", "field_id") if n in ds}
        out = finalize_cube(
            np.array(ds["reflectance"].values, dtype=np.float32),
            np.array(ds["scl"].values, dtype=np.uint8),
            times,
            aoi,
            platforms=platforms,
            extra=extra,
            attrs={"simulation_seed": self.seed, "simulation_difficulty": self.difficulty},
            source=self.name,
        )
        report(progress, "simulate", 1, 1)
        return out
