"""The season so far: cut a cube at an as-of date and say which grid steps it has reached.

An in-season call may only see what had been acquired by its date. :func:`cut_season` drops
every later acquisition *before* preprocessing (so nothing after the date can reach a grid
step through interpolation), and :class:`SeasonCut` records the horizon: the last acquisition
on or before the date. Grid steps after the horizon are masked for the model, not filled
(see ``FFDNN(season_mask=True)``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from agrostress.preprocess.grid import TemporalGrid, day_of_year


@dataclass(frozen=True)
class SeasonCut:
    """Where a season stands on its as-of date."""

    as_of: dt.date  # the date asked for (the period's end when not given)
    last_acquisition: dt.date  # the last acquisition on or before it: the horizon
    horizon_doy: float  # day of year of the horizon
    observed_steps: int  # grid steps on or before the horizon (the model sees these)
    grid_steps: int  # all grid steps
    year: int  # the season's year (that of most acquisitions of the whole series)

    @property
    def partial(self) -> bool:
        """Whether later grid steps are masked (the season is not complete yet)."""
        return self.observed_steps < self.grid_steps

    def describe(self) -> dict[str, object]:
        """JSON-friendly description for summaries."""
        return {"as_of": self.as_of.isoformat(),
                "last_acquisition": self.last_acquisition.isoformat(),
                "horizon_doy": round(float(self.horizon_doy), 2),
                "observed_steps": int(self.observed_steps), "grid_steps": int(self.grid_steps),
                "partial": self.partial}


def observed_steps(grid: TemporalGrid, horizon_doy: float) -> int:
    """Grid steps on or before ``horizon_doy`` (at least one)."""
    return max(1, int(np.count_nonzero(grid.doys <= float(horizon_doy) + 1e-6)))


def parse_as_of(value: str | dt.date | dt.datetime | None) -> dt.date | None:
    """``YYYY-MM-DD`` (or a date) → date; None stays None."""
    if value is None or isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.datetime):
        return value.date()
    text = str(value).strip()
    try:
        return dt.date.fromisoformat(text[:10]) if len(text) == 10 or text[10:11] in "T " \
            else dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"as-of date must look like YYYY-MM-DD, got {value!r}") from None


def cut_season(cube: xr.Dataset, grid: TemporalGrid,
               as_of: str | dt.date | None = None) -> tuple[xr.Dataset, SeasonCut]:
    """The cube's acquisitions on or before ``as_of`` (default: all, the as-of date then being
    the last acquisition) and the :class:`SeasonCut` they reach."""
    when = parse_as_of(as_of)
    times = pd.DatetimeIndex(np.asarray(cube["time"].values)).normalize()
    if times.size == 0:
        raise ValueError("no dates: the cube has an empty time axis")
    _, year = day_of_year(times)  # from the whole series: a spring cut keeps the season's year
    if when is not None:
        keep = times <= pd.Timestamp(when)
        if not keep.any():
            raise ValueError(f"nothing was acquired on or before the as-of date {when} "
                             f"(first acquisition {times[0].date()})")
        if not keep.all():
            cube = cube.isel(time=np.flatnonzero(keep))
            times = times[keep]
    last = times[-1]
    horizon = float(day_of_year([last], year)[0][0])
    cut = SeasonCut(as_of=when or last.date(), last_acquisition=last.date(), horizon_doy=horizon,
                    observed_steps=observed_steps(grid, horizon), grid_steps=len(grid),
                   year=int(year))
    return cube, cut
