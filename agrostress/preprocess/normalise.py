"""Per-feature normalisation statistics that travel with a model.

Robust by construction: each feature is first clipped to its [0.5, 99.5] percentile range
(indices such as ARI or REDSI explode when a band approaches zero), then standardised with
the mean/std of the clipped training values. ``apply`` replaces remaining NaNs by 0 (= the
mean), so models always see finite inputs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from agrostress.atomic import atomic_path


@dataclass
class NormStats:
    """Per-feature clip range and mean/std, keyed by feature name."""

    features: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray
    lo: np.ndarray
    hi: np.ndarray

    def __post_init__(self) -> None:
        self.features = tuple(str(f) for f in self.features)
        n = len(self.features)
        for k in ("mean", "std", "lo", "hi"):
            a = np.asarray(getattr(self, k), dtype=np.float32).reshape(-1)
            if a.size != n:
                raise ValueError(f"NormStats.{k} has {a.size} values for {n} features")
            setattr(self, k, a)
        self.std = np.where(self.std > 1e-12, self.std, np.float32(1)).astype(np.float32)

    @classmethod
    def fit(
        cls,
        data: xr.Dataset | np.ndarray,
        features: Sequence[str] | None = None,
        *,
        mask: np.ndarray | None = None,
        max_samples: int = 500_000,
        percentiles: tuple[float, float] = (0.5, 99.5),
        seed: int = 0,
    ) -> NormStats:
        """Statistics from a feature Dataset (pixels not ``insufficient_data``, valid steps
        only, optionally restricted by a (y, x) ``mask``) or from an array (..., feature)."""
        if isinstance(data, xr.Dataset):
            names = [str(f) for f in data["feature"].values]
            keep = ~np.asarray(data["insufficient_data"].values, dtype=bool)
            if mask is not None:
                keep &= np.asarray(mask, dtype=bool)
            f = data["features"].transpose("doy", "feature", "y", "x")
            G, F = f.sizes["doy"], f.sizes["feature"]
            flat = np.flatnonzero(keep.reshape(-1))
            vals = np.asarray(f.values).reshape(G, F, -1)[:, :, flat]  # (G, F, N)
            sv = np.asarray(data["step_valid"].transpose("doy", "y", "x").values)
            sv = sv.reshape(G, -1)[:, flat]
            x = vals.transpose(0, 2, 1)[sv]  # (samples, F)
        else:
            if features is None:
                raise ValueError("feature names are required when fitting on an array")
            names = list(features)
            arr = np.asarray(data, dtype=np.float32)
            if arr.shape[-1] != len(names):
                raise ValueError(f"last axis has {arr.shape[-1]} features, names give {len(names)}")
            x = arr.reshape(-1, len(names))
        if x.shape[0] == 0:
            raise ValueError("no usable samples to compute normalisation statistics")
        if x.shape[0] > max_samples:
            x = x[np.random.default_rng(seed).choice(x.shape[0], max_samples, replace=False)]
        x = x.astype(np.float64)
        lo = np.nanpercentile(x, percentiles[0], axis=0)
        hi = np.nanpercentile(x, percentiles[1], axis=0)
        xc = np.clip(x, lo, hi)
        return cls(tuple(names), np.nanmean(xc, axis=0), np.nanstd(xc, axis=0), lo, hi)

    def apply(self, x: Any, *, axis: int = -1, nan_to: float = 0.0) -> Any:
        """Clip, standardise and replace NaN. ``x``: numpy array with features on ``axis``
        (in this object's order) or a DataArray with a ``feature`` dim (aligned by name)."""
        if isinstance(x, xr.DataArray):
            names = [str(f) for f in x["feature"].values]
            idx = [self.index(n) for n in names]
            shape = [1] * x.ndim
            shape[x.dims.index("feature")] = len(idx)

            def col(a: np.ndarray) -> np.ndarray:
                return a[idx].reshape(shape)

            out = (np.clip(x, col(self.lo), col(self.hi)) - col(self.mean)) / col(self.std)
            return out.fillna(nan_to).astype(np.float32)
        a = np.asarray(x, dtype=np.float32)
        if a.shape[axis] != len(self.features):
            raise ValueError(
                f"axis {axis} has {a.shape[axis]} features, expected {len(self.features)}"
            )
        shape = [1] * a.ndim
        shape[axis] = len(self.features)
        out = np.clip(a, self.lo.reshape(shape), self.hi.reshape(shape)) - self.mean.reshape(shape)
        out /= self.std.reshape(shape)
        return np.nan_to_num(out, nan=nan_to, posinf=nan_to, neginf=nan_to).astype(np.float32)

    def index(self, name: str) -> int:
        try:
            return self.features.index(name)
        except ValueError:
            raise ValueError(f"feature {name!r} has no normalisation statistics") from None

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": list(self.features),
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "lo": self.lo.tolist(),
            "hi": self.hi.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NormStats:
        return cls(tuple(d["features"]), d["mean"], d["std"], d["lo"], d["hi"])

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=2))
        return path

    @classmethod
    def load(cls, path: str | Path) -> NormStats:
        return cls.from_dict(json.loads(Path(path).read_text()))
