"""The wheat reference of a request (see :mod:`agrostress.preprocess.reference`), gathered
tile by tile."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import xarray as xr

from agrostress.cube import validate
from agrostress.preprocess import feature_stack
from agrostress.preprocess.mask import scl_valid
from agrostress.preprocess.reference import Reference, ReferenceSampler
from agrostress.preprocess.season import cut_season


def request_reference(cube: xr.Dataset, model: Any, *, tile: int = 256,
                      seed: int = 0, as_of: str | dt.date | None = None) -> Reference:
    """The wheat reference of every winter-cereal-like pixel of ``cube`` (no field limits) —
    for a request whose own fields are too few, from a cube fetched with a buffer around them;
    ``as_of``: the season so far (later acquisitions are dropped)."""
    cube, cut = cut_season(validate(cube), model.grid, as_of)
    ny, nx = cube.sizes["y"], cube.sizes["x"]
    tiles = [(y0, min(ny, y0 + tile), x0, min(nx, x0 + tile))
             for y0 in range(0, ny, tile) for x0 in range(0, nx, tile)]
    keep = [v for v in ("reflectance", "scl") if v in cube]
    return scene_reference(cube[keep], model, tiles, 0, None, cut.year, seed,
                           horizon_doy=cut.horizon_doy)


#: bytes of loaded tiles and their features the reference pass may keep for the
#: classification pass (a request of one or a few tiles is read and preprocessed once)
REUSE_BYTES = 256 * 2**20

Tile = tuple[int, int, int, int]


def scene_reference(cube: xr.Dataset, model: Any, tiles: list[Tile], pad: int,
                    findex: np.ndarray | None, year: int, seed: int,
                    keep: dict[Tile, tuple[xr.Dataset, xr.Dataset]] | None = None,
                    horizon_doy: float | None = None) -> Reference:
    """The reference of the request: winter-cereal-like pixels of its fields (of the whole
    cube without fields), sampled tile by tile; the model's built-in one when too few.
    ``keep`` collects ``tile → (loaded tile with its halo, its features)`` while they fit in
    :data:`REUSE_BYTES`, for the pass that classifies them; ``horizon_doy``: the season so far
    (the gate reads no later step)."""
    ny, nx = cube.sizes["y"], cube.sizes["x"]
    sampler = ReferenceSampler(model.spec.names, model.grid.doys, nx, seed, horizon_doy)
    kept = 0
    for t in tiles:
        y0, y1, x0, x1 = t
        ya, yb, xa, xb = max(0, y0 - pad), min(ny, y1 + pad), max(0, x0 - pad), min(nx, x1 + pad)
        sub = cube.isel(y=slice(ya, yb), x=slice(xa, xb)).load()
        scl = np.asarray(sub["scl"].transpose("time", "y", "x").values)
        refl = np.asarray(sub["reflectance"].transpose("time", "band", "y", "x").values)
        if not (scl_valid(scl, model.mask_policy) & np.isfinite(refl).all(axis=1)).any():
            continue
        fs = feature_stack(sub, model.spec, model.grid, model.mask_policy,
                           regularisation=model.regularisation, year=year)
        size = sub.nbytes + fs.nbytes
        if keep is not None and kept + size <= REUSE_BYTES:
            keep[t] = (sub, fs)
            kept += size
        inner = (slice(y0 - ya, y1 - ya), slice(x0 - xa, x1 - xa))
        f = np.asarray(fs["features"].transpose("doy", "feature", "y", "x").values)
        f = f[(slice(None), slice(None), *inner)]
        usable = ~np.asarray(fs["insufficient_data"].values)[inner]
        group = None
        if findex is not None:
            group = findex[y0:y1, x0:x1]
            usable &= group > 0
        sampler.add(f, usable, group, (y0, x0))
    return sampler.reference(model.builtin_reference)
