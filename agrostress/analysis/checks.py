"""Checks that a cube and a model fit each other."""

from __future__ import annotations

from typing import Any

import xarray as xr

from agrostress.preprocess.grid import check_overlap, day_of_year


def check_compatible(cube: xr.Dataset, model: Any) -> None:
    """Raise ``ValueError`` when ``model`` cannot run on ``cube`` (bands, season, shapes)."""
    spec = model.spec
    have = [str(b) for b in cube["band"].values]
    missing = [b for b in spec.bands_needed() if b not in have]
    if missing:
        raise ValueError(
            f"model/cube mismatch: the cube lacks band(s) {missing} needed by the model's "
            f"features {spec}"
        )
    if len(spec) != int(model.card.n_features):
        raise ValueError(
            f"model/cube mismatch: the model expects {model.card.n_features} features but its "
            f"spec {spec} gives {len(spec)}"
        )
    if len(model.grid) != int(model.card.n_steps):
        raise ValueError(
            f"model/cube mismatch: the model expects {model.card.n_steps} time steps but its grid "
            f"{model.grid} gives {len(model.grid)}"
        )
    doys, year = day_of_year(cube["time"].values)
    try:
        check_overlap(doys, model.grid, model.regularisation.edge_days)
    except ValueError as e:
        raise ValueError(f"model/cube mismatch: {e}") from None
