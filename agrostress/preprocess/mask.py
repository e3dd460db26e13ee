"""Cloud masking: which observations of a cube count as valid.

Policy (see ``docs/preprocess.md``): an observation (date, pixel) is valid when

* its SCL class is not in ``drop`` (default 0 no data, 1 saturated, 3 cloud shadow,
  8/9 cloud medium/high probability, 10 thin cirrus, 11 snow), **and**
* it is not within ``dilation`` pixels (Chebyshev distance, i.e. a square window) of a
  cloud or cloud-shadow pixel of the same date (classes ``dilate_classes`` ∩ ``drop``),
  **and**
* all ten bands are finite (a NaN in any band invalidates the whole observation).

SCL codes outside 0..11 are invalid.

Class 2 (dark area / topographic shadow) and 7 (unclassified) are kept by default: on flat
wheat fields they are mostly dark soil or thin haze edges that the max-gap rule and the
smoother absorb, and dropping them costs many clear dates. Negative reflectance values are
kept (L2A gives small negatives over dark targets); indices turn non-finite results into NaN.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from agrostress.cube import SCL_CLASSES

DEFAULT_DROP: tuple[int, ...] = (0, 1, 3, 8, 9, 10, 11)
"""SCL classes masked by default (no data, defective, shadow, clouds, cirrus, snow)."""

CLOUD_CLASSES: tuple[int, ...] = (3, 8, 9, 10)
"""Classes grown by ``dilation``: cloud shadow, cloud medium/high probability, thin cirrus."""


@dataclass(frozen=True)
class CloudMaskPolicy:
    """Which SCL classes are invalid and how far clouds and shadows are grown."""

    drop: tuple[int, ...] = DEFAULT_DROP
    dilation: int = 1
    dilate_classes: tuple[int, ...] = field(default=CLOUD_CLASSES)

    def __post_init__(self) -> None:
        drop = tuple(sorted({int(c) for c in self.drop}))
        bad = [c for c in drop if c not in SCL_CLASSES]
        if bad:
            raise ValueError(f"unknown SCL class(es) {bad}; valid classes are 0..11")
        if not 0 <= int(self.dilation) <= 50:
            raise ValueError(f"dilation must be 0..50 pixels, got {self.dilation}")
        object.__setattr__(self, "drop", drop)
        object.__setattr__(self, "dilation", int(self.dilation))
        object.__setattr__(
            self, "dilate_classes", tuple(sorted({int(c) for c in self.dilate_classes}))
        )

    @classmethod
    def from_settings(cls, settings: Any) -> CloudMaskPolicy:
        """The policy configured in :class:`agrostress.settings.Settings`."""
        return cls(drop=tuple(settings.scl_drop), dilation=int(settings.cloud_dilation_px))

    @classmethod
    def parse(cls, drop: str | Iterable[int] | None = None, dilation: int = 1) -> CloudMaskPolicy:
        """Build from a comma list such as ``"0,1,3,8,9,10,11"`` (None = default classes)."""
        if drop is None:
            return cls(dilation=dilation)
        if isinstance(drop, str):
            try:
                classes = tuple(int(c) for c in drop.replace(" ", "").split(",") if c)
            except ValueError as e:
                raise ValueError(f"SCL classes must be integers, got {drop!r}") from e
        else:
            classes = tuple(int(c) for c in drop)
        return cls(drop=classes, dilation=dilation)

    @property
    def grown(self) -> tuple[int, ...]:
        """Dropped classes that are also dilated."""
        return tuple(c for c in self.dilate_classes if c in self.drop)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def lookup(self) -> tuple[np.ndarray, np.ndarray]:
        """(dropped, grown) boolean look-up tables indexed by SCL value (0..255)."""
        drop = np.zeros(256, dtype=bool)
        drop[list(self.drop)] = True
        grow = np.zeros(256, dtype=bool)
        grow[list(self.grown)] = True
        return drop, grow


def dilate(mask: np.ndarray, n: int) -> np.ndarray:
    """Grow a boolean mask (..., y, x) by ``n`` pixels with a square window, no wrap-around."""
    if n <= 0:
        return mask
    out = mask.copy()
    for axis in (-2, -1):
        src = out.copy()
        size = src.shape[axis]
        for s in range(1, min(n, size - 1) + 1):
            lo = [slice(None)] * src.ndim
            hi = [slice(None)] * src.ndim
            lo[axis], hi[axis] = slice(0, size - s), slice(s, size)
            out[tuple(lo)] |= src[tuple(hi)]
            out[tuple(hi)] |= src[tuple(lo)]
    return out


def scl_valid(scl: np.ndarray, policy: CloudMaskPolicy) -> np.ndarray:
    """Valid-by-SCL mask of a numpy SCL array (..., y, x): not dropped and not near a cloud.

    Computed one date at a time so the temporaries stay in cache.
    """
    scl = np.asarray(scl)
    if scl.ndim <= 2:
        return _scl_valid_2d(scl, policy)
    out = np.empty(scl.shape, dtype=bool)
    flat_in = scl.reshape(-1, *scl.shape[-2:])
    flat_out = out.reshape(-1, *scl.shape[-2:])
    for i in range(flat_in.shape[0]):
        flat_out[i] = _scl_valid_2d(flat_in[i], policy)
    return out


def _scl_valid_2d(scl: np.ndarray, policy: CloudMaskPolicy) -> np.ndarray:
    bits = _class_bits(scl)
    invalid = (bits & np.uint16(_set_bits(policy.drop, unknown=True))).astype(bool)
    if policy.dilation and policy.grown:
        grow = (bits & np.uint16(_set_bits(policy.grown))).astype(bool)
        invalid |= dilate(grow, policy.dilation)
    np.logical_not(invalid, out=invalid)
    return invalid


def _set_bits(values: tuple[int, ...], *, unknown: bool = False) -> int:
    bits = 0
    for v in values:
        bits |= 1 << int(v)
    return bits | (0xF000 if unknown else 0)  # codes 12..255 are clipped to 15


def _class_bits(a: np.ndarray) -> np.ndarray:
    """1 << min(a, 15) as uint16: one bit per SCL class."""
    code = np.minimum(a, np.uint8(15))
    return np.left_shift(np.uint16(1), code, dtype=np.uint16)


def scl_in(a: np.ndarray, values: tuple[int, ...], *, unknown: bool = False) -> np.ndarray:
    """``np.isin(a, values)`` for SCL codes, branch-free (bit ``a`` of a 16-bit class set).

    Codes above 11 (not SCL classes) count as members when ``unknown`` is True.
    """
    return (_class_bits(a) & np.uint16(_set_bits(values, unknown=unknown))).astype(bool)


def valid_mask(cube: xr.Dataset, policy: CloudMaskPolicy | None = None) -> xr.DataArray:
    """Boolean (time, y, x): observation usable (SCL policy and all bands finite).

    Works lazily on dask-backed cubes (dilation uses ``map_overlap``, so chunk borders
    give the same result as a whole-array computation).
    """
    policy = policy or CloudMaskPolicy()
    scl = cube["scl"].transpose("time", "y", "x")
    data = scl.data
    if _is_dask(data):
        import dask.array as da

        depth = policy.dilation if (policy.dilation and policy.grown) else 0
        ok = da.map_overlap(
            scl_valid,
            data,
            depth={0: 0, 1: depth, 2: depth},
            boundary="none",
            dtype=bool,
            policy=policy,
        )
    else:
        ok = scl_valid(np.asarray(data), policy)
    finite = np.isfinite(cube["reflectance"].transpose("time", "band", "y", "x")).all("band")
    out = xr.DataArray(ok, dims=("time", "y", "x"), coords=scl.coords) & finite
    return out.rename("valid")


def apply_mask(cube: xr.Dataset, policy: CloudMaskPolicy | None = None) -> xr.DataArray:
    """The cube's reflectance with every invalid observation set to NaN (all bands)."""
    ok = valid_mask(cube, policy)
    return cube["reflectance"].where(ok)


def _is_dask(a: Any) -> bool:
    return type(a).__module__.startswith("dask")
