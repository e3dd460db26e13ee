"""Feature stacks for models: cube → regular (doy, feature, y, x) series + data-quality flags.

Order of computation (per block of pixels, identical for numpy- and dask-backed cubes):

1. cloud mask (:mod:`.mask`): SCL policy, dilation, all bands finite;
2. the *bands* a spec needs are regularised onto the DOY grid (:mod:`.grid`) — cheaper than
   regularising every index, and indices of interpolated bands are well defined;
3. indices (:mod:`.indices`, spyndex formulas) and the photochemical filter
   (:mod:`.photochemical`) are computed on the gridded bands;
4. residual NaNs (steps beyond ``max_gap``, non-finite index values) are filled with the
   nearest finite step of the same feature and pixel (ties → earlier step); ``step_valid``
   keeps which steps were really observed/interpolated;
5. ``insufficient_data`` flags pixels with too few valid observations or too many missing
   steps: they must never be given a stress class downstream.

Output (:func:`feature_stack`), an ``xarray.Dataset``::

    features           float32 (doy, feature, y, x)
    step_valid         bool    (doy, y, x)    step interpolated from valid data (not filled)
    valid_count        int16   (y, x)         valid observations within the grid window
    longest_gap        float32 (y, x)         days, longest stretch without valid data
    insufficient_data  bool    (y, x)
    label, field_id    carried over from the cube when present; CRS in ``spatial_ref``
    attrs: grid, year, features, mask, regularisation, photochemical_version, format
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numba
import numpy as np
import xarray as xr

from agrostress.atomic import atomic_path
from agrostress.cube import BANDS, cube_crs
from agrostress.preprocess.grid import (
    BLOCK_PIXELS,
    Regularisation,
    TemporalGrid,
    check_overlap,
    day_of_year,
    insufficient,
    make_plan,
    regularise_block,
)
from agrostress.preprocess.indices import DEFAULT_INDICES, compute_index, index_def
from agrostress.preprocess.mask import CloudMaskPolicy, scl_in, scl_valid
from agrostress.preprocess.photochemical import (
    PHOTOCHEMICAL_FEATURES,
    PhotochemicalFilter,
    PhotochemicalParams,
)

FORMAT = "agrostress-features/1"

PRESETS: dict[str, tuple[str, ...]] = {
    "ffdnn": ("LAI", "LCC", "NDREI", "MTCI", "S2REP", "REDSI", "PSRI"),
    "photochemical": PHOTOCHEMICAL_FEATURES,
    "bands": BANDS,
    "indices": DEFAULT_INDICES,
    "all": (*BANDS, *DEFAULT_INDICES, *PHOTOCHEMICAL_FEATURES),
}
"""Named feature sets. ``ffdnn``: the photochemical series (LAI, LCC) plus red-edge
chlorophyll (NDREI, MTCI, S2REP) and rust/senescence (REDSI, PSRI) indices."""

DEFAULT_SPEC = "ffdnn"


@dataclass(frozen=True)
class FeatureSpec:
    """An ordered list of feature names: cube bands, spyndex indices, CCCI, LAI, LCC."""

    names: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.names:
            raise ValueError("empty feature spec")
        canon = tuple(_canonical(n) for n in self.names)
        dup = sorted({n for n in canon if canon.count(n) > 1})
        if dup:
            raise ValueError(f"duplicate feature(s) {dup}")
        object.__setattr__(self, "names", canon)

    @classmethod
    def parse(cls, spec: str | Sequence[str] | FeatureSpec | None = None) -> FeatureSpec:
        """``"ffdnn"``, ``"LAI,LCC,NDVI"``, ``"bands,CCCI"`` or a list of names/presets."""
        if spec is None:
            spec = DEFAULT_SPEC
        if isinstance(spec, FeatureSpec):
            return spec
        items = spec.split(",") if isinstance(spec, str) else list(spec)
        names: list[str] = []
        for item in (str(i).strip() for i in items):
            if not item:
                continue
            expanded = PRESETS.get(item.lower(), (item,))
            names.extend(n for n in expanded if _canonical(n) not in names)
        return cls(tuple(names))

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.names)

    def __str__(self) -> str:
        return ",".join(self.names)

    def kind(self, name: str) -> str:
        """``"band"``, ``"photochemical"`` or ``"index"``."""
        if name in BANDS:
            return "band"
        if name in PHOTOCHEMICAL_FEATURES:
            return "photochemical"
        return "index"

    def bands_needed(self, params: PhotochemicalParams | None = None) -> tuple[str, ...]:
        """Cube bands this spec reads, in cube order."""
        need: set[str] = set()
        for n in self.names:
            k = self.kind(n)
            if k == "band":
                need.add(n)
            elif k == "index":
                need.update(index_def(n).bands)
            else:
                need.update(PhotochemicalFilter(params or PhotochemicalParams.load()).bands)
        return tuple(b for b in BANDS if b in need)


def parse_spec(spec: str | Sequence[str] | FeatureSpec | None = None) -> FeatureSpec:
    """Shorthand for :meth:`FeatureSpec.parse`."""
    return FeatureSpec.parse(spec)


def _canonical(name: str) -> str:
    n = str(name).strip()
    for fixed in (*BANDS, *PHOTOCHEMICAL_FEATURES):
        if n.upper() == fixed.upper():
            return fixed
    try:
        return index_def(n).name
    except ValueError as e:
        raise ValueError(
            f"unknown feature {n!r}: use a band ({', '.join(BANDS)}), LAI, LCC, a preset "
            f"({', '.join(PRESETS)}) or a spyndex index computable from Sentinel-2 bands "
            f"(e.g. {', '.join(DEFAULT_INDICES[:6])}, …) — {e}"
        ) from None


# --------------------------------------------------------------------------- core


@dataclass(frozen=True)
class _Context:
    spec: FeatureSpec
    bands: tuple[str, ...]  # bands regularised (cube order)
    band_idx: tuple[int, ...]  # their positions in the cube's band axis
    plan: Any
    reg: Regularisation
    params: PhotochemicalParams
    fill: bool
    block: int = BLOCK_PIXELS

    @property
    def n_out(self) -> int:
        g, f = self.plan.grid.size, len(self.spec)
        return g * f + g + 3


def _band_take(refl: np.ndarray, idx: tuple[int, ...]) -> np.ndarray:
    """Select bands on axis 1 (a view when they are contiguous)."""
    if idx == tuple(range(idx[0], idx[0] + len(idx))):
        return refl[:, idx[0] : idx[0] + len(idx)]
    return refl[:, list(idx)]


def compute_block(
    refl: np.ndarray,
    ok: np.ndarray,
    ctx: _Context,
    out: tuple[np.ndarray, ...] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pixels refl (T, 10, P), ok (T, P) → features (G, F, P), step_valid (G, P),
    valid_count (P,), longest_gap (P,), insufficient (P,), computed in cache-sized
    sub-blocks; written into ``out`` (arrays of those shapes) when given."""
    P = refl.shape[-1]
    G, F = ctx.plan.grid.size, len(ctx.spec)
    if out is None:
        out = (
            np.empty((G, F, P), dtype=np.float32),
            np.empty((G, P), dtype=bool),
            np.empty(P, dtype=np.int32),
            np.empty(P, dtype=np.float32),
            np.empty(P, dtype=bool),
        )
    for p0 in range(0, P, ctx.block):
        sl = slice(p0, min(P, p0 + ctx.block))
        _compute_small(refl[..., sl], ok[:, sl], ctx, tuple(a[..., sl] for a in out))
    return out  # type: ignore[return-value]


def _compute_small(
    refl: np.ndarray, ok: np.ndarray, ctx: _Context, out: tuple[np.ndarray, ...]
) -> None:
    feats, sv, count, gap, bad = out
    v = _band_take(refl, ctx.band_idx)
    if v.dtype != np.float32:
        v = v.astype(np.float32)
    r = regularise_block(v, ok, ctx.plan, smoother=ctx.reg.smoother, lam=ctx.reg.lam)
    bands = {b: r.values[:, i, :] for i, b in enumerate(ctx.bands)}
    constants = {"sla": ctx.params.soil_line_slope}
    filt = PhotochemicalFilter(ctx.params)
    for f, name in enumerate(ctx.spec.names):
        kind = ctx.spec.kind(name)
        if kind == "band":
            feats[:, f] = bands[name]
        elif name == "LAI":
            feats[:, f] = filt.lai(bands)
        elif name == "LCC":
            feats[:, f] = filt.lcc(bands)
        else:
            feats[:, f] = compute_index(name, bands, constants)
    if ctx.fill:
        fill_nearest(feats)
    sv[...] = r.step_valid
    count[...] = r.valid_count
    gap[...] = r.longest_gap
    bad[...] = insufficient(
        r.valid_count,
        r.step_valid,
        min_valid=ctx.reg.min_valid,
        max_missing_fraction=ctx.reg.max_missing_fraction,
        observed=reachable_steps(ctx.plan.grid, ctx.plan.doys, ctx.reg.edge_days),
    )


def reachable_steps(grid_doys: np.ndarray, obs_doys: np.ndarray, edge: float) -> np.ndarray:
    """(G,) bool: grid steps on or before the last acquisition plus ``edge`` days — the
    season so far; later steps have no data yet (a cut season), which is not missing data."""
    return np.asarray(grid_doys) <= float(np.max(obs_doys)) + edge


@numba.njit(cache=True)
def _fill_nearest_3d(x: np.ndarray) -> None:  # pragma: no cover - compiled
    """:func:`fill_nearest` of a (G, F, P) float array (any strides), compiled: one pass
    forward and one back per series, and only series with a NaN are written."""
    G, nf, n_p = x.shape
    prv = np.empty(G, np.int64)
    for f in range(nf):
        for p in range(n_p):
            has_nan = False
            last = -1
            for g in range(G):
                if np.isnan(x[g, f, p]):
                    has_nan = True
                else:
                    last = g
                prv[g] = last
            if not has_nan or last < 0:  # complete, or no finite value at all
                continue
            nxt = -1
            for g in range(G - 1, -1, -1):
                if not np.isnan(x[g, f, p]):
                    nxt = g
                    continue
                a = prv[g]
                if a >= 0 and (nxt < 0 or g - a <= nxt - g):
                    x[g, f, p] = x[a, f, p]
                else:
                    x[g, f, p] = x[nxt, f, p]


def fill_nearest(x: np.ndarray) -> np.ndarray:
    """In place: replace NaN along axis 0 by the nearest finite value (ties → earlier).

    Works on any (G, ...) array, views included; series without a finite value stay NaN.
    (G, F, P) float arrays take a compiled kernel (``numba``), others :func:`_fill_nearest_np`.
    """
    if x.ndim == 3 and x.dtype in (np.float32, np.float64) and x.size:
        _fill_nearest_3d(x)
        return x
    return _fill_nearest_np(x)


def _fill_nearest_np(x: np.ndarray) -> np.ndarray:
    """:func:`fill_nearest` in numpy (the reference of the compiled kernel)."""
    if x.ndim == 1:  # one series: a (G, 1) view of it
        _fill_nearest_np(x[:, None])
        return x
    G = x.shape[0]
    colsum = x.sum(axis=0)  # NaN in a series ⇒ NaN sum (±inf may add false alarms: harmless)
    where = np.nonzero(np.isnan(colsum))
    if where[0].size == 0:
        return x
    idx = (slice(None), *where)
    sub = x[idx]  # (G, n)
    b = np.isnan(sub)
    ar = np.arange(G)[:, None]
    prv = np.maximum.accumulate(np.where(b, -1, ar), axis=0)
    nxt = np.minimum.accumulate(np.where(b, G, ar)[::-1], axis=0)[::-1]
    dp = np.where(prv >= 0, ar - prv, G + 1)
    dn = np.where(nxt < G, nxt - ar, G + 1)
    src = np.clip(np.where(dp <= dn, prv, nxt), 0, G - 1)
    x[idx] = np.take_along_axis(sub, src, axis=0)
    return x


def _pack_block(refl: np.ndarray, ok: np.ndarray, ctx: _Context) -> np.ndarray:
    """Dask block: refl (T, B, ys, xs), ok (T, ys, xs) → packed float32 (K, ys, xs)."""
    T, B, ys, xs = refl.shape
    P = ys * xs
    G, F = ctx.plan.grid.size, len(ctx.spec)
    out = np.empty((ctx.n_out, P), dtype=np.float32)
    sv = np.empty((G, P), dtype=bool)
    count = np.empty(P, dtype=np.int32)
    bad = np.empty(P, dtype=bool)
    parts = (out[: G * F].reshape(G, F, P), sv, count, out[G * F + G + 1], bad)
    compute_block(refl.reshape(T, B, P), ok.reshape(T, P), ctx, parts)
    out[G * F : G * F + G] = sv
    out[G * F + G] = count
    out[G * F + G + 2] = bad
    return out.reshape(ctx.n_out, ys, xs)


# --------------------------------------------------------------------------- public API


def feature_stack(
    cube: xr.Dataset,
    spec: str | Sequence[str] | FeatureSpec | None = None,
    grid: TemporalGrid | str | None = None,
    policy: CloudMaskPolicy | None = None,
    *,
    regularisation: Regularisation | None = None,
    params: PhotochemicalParams | None = None,
    fill: bool = True,
    year: int | None = None,
    workers: int = 1,
    block: int = BLOCK_PIXELS,
    progress: Callable[[int, int], None] | None = None,
    max_chunk_bytes: int = 256 * 2**20,
) -> xr.Dataset:
    """Cube → feature Dataset on a regular DOY grid (see the module docstring for layout).

    Numpy-backed cubes are computed now (``workers`` threads over pixel blocks,
    ``progress(done, total)`` called per block); dask-backed cubes give a lazy, dask-backed
    result chunked like the cube in y/x (time and band whole), with identical values.
    """
    spec = FeatureSpec.parse(spec)
    grid = TemporalGrid.parse(grid)
    policy = policy or CloudMaskPolicy()
    reg = regularisation or Regularisation()
    params = params or PhotochemicalParams.load()
    for v in ("reflectance", "scl"):
        if v not in cube:
            raise ValueError(f"cube has no '{v}' variable")
    refl = cube["reflectance"].transpose("time", "band", "y", "x")
    cube_bands = [str(b) for b in refl["band"].values]
    bands = spec.bands_needed(params)
    missing = [b for b in bands if b not in cube_bands]
    if missing:
        raise ValueError(f"cube lacks band(s) {missing} needed by features {spec}")
    doys, year = day_of_year(cube["time"].values, year)
    doys = _untie(doys)
    check_overlap(doys, grid, reg.edge_days)
    plan = make_plan(doys, grid, reg.max_gap, reg.edge_days)
    ctx = _Context(
        spec=spec,
        bands=bands,
        band_idx=tuple(cube_bands.index(b) for b in bands),
        plan=plan,
        reg=reg,
        params=params,
        fill=fill,
        block=block,
    )
    scl = cube["scl"].transpose("time", "y", "x")
    if _is_dask(refl.data) or _is_dask(scl.data):
        arrays = _dask_stack(refl.data, scl.data, ctx, policy, max_chunk_bytes)
    else:
        arrays = _numpy_stack(
            np.asarray(refl.values), np.asarray(scl.values), ctx, policy, workers, block, progress
        )
    feats, sv, count, gap, bad = arrays
    coords: dict[str, Any] = {
        "doy": grid.doys,
        "feature": list(spec.names),
        "y": refl["y"].values,
        "x": refl["x"].values,
    }
    ds = xr.Dataset(
        {
            "features": (("doy", "feature", "y", "x"), feats),
            "step_valid": (("doy", "y", "x"), sv),
            "valid_count": (("y", "x"), count),
            "longest_gap": (("y", "x"), gap),
            "insufficient_data": (("y", "x"), bad),
        },
        coords=coords,
    )
    for name in ("label", "field_id"):
        if name in cube:
            ds[name] = cube[name].transpose("y", "x").variable
    ds["longest_gap"].attrs["units"] = "days"
    ds["insufficient_data"].attrs["description"] = (
        "too few valid observations or too many missing grid steps: never assign a stress class"
    )
    ds["step_valid"].attrs["description"] = "step interpolated from valid data (else filled)"
    ds["doy"].attrs["long_name"] = f"day of year {year}"
    ds.attrs.update(
        {
            "format": FORMAT,
            "grid": str(grid),
            "year": int(year),
            "features": list(spec.names),
            "mask": json.dumps(policy.to_dict()),
            "regularisation": json.dumps(reg.to_dict()),
            "fill": "nearest" if fill else "none",
            "photochemical_version": params.version,
            "photochemical": json.dumps({k: v for k, v in params.to_dict().items() if k != "fit"}),
        }
    )
    return _carry_crs(ds, cube)


def _carry_crs(ds: xr.Dataset, cube: xr.Dataset) -> xr.Dataset:
    """Copy the cube's ``spatial_ref`` (CF grid mapping) without copying any data."""
    if "spatial_ref" not in cube.coords and "spatial_ref" not in cube.variables:
        return ds
    try:
        cube_crs(cube)
    except ValueError:
        return ds  # unparsable CRS: leave it out
    ds = ds.assign_coords(spatial_ref=cube["spatial_ref"].variable)
    for name in ds.data_vars:
        ds[name].attrs.pop("grid_mapping", None)
        ds[name].encoding["grid_mapping"] = "spatial_ref"
    return ds


def _untie(doys: np.ndarray) -> np.ndarray:
    """Two acquisitions on the same day: offset the later ones by 1/1000 day each."""
    if doys.size < 2 or np.all(np.diff(doys) > 0):
        return doys
    out = doys.copy()
    for i in range(1, out.size):
        if out[i] <= out[i - 1]:
            out[i] = out[i - 1] + 1e-3
    return out


def _no_valid(policy: CloudMaskPolicy) -> ValueError:
    return ValueError(
        "no valid observation at all in the cube after cloud masking "
        f"(SCL classes dropped: {list(policy.drop)}, dilation {policy.dilation} px)"
    )


def _numpy_stack(
    refl: np.ndarray,
    scl: np.ndarray,
    ctx: _Context,
    policy: CloudMaskPolicy,
    workers: int,
    block: int,
    progress: Callable[[int, int], None] | None,
) -> tuple[np.ndarray, ...]:
    T, B, Y, X = refl.shape
    P = Y * X
    ok = scl_valid(scl, policy).reshape(T, P)
    if not ok.any():
        raise _no_valid(policy)
    r = refl.reshape(T, B, P)
    G, F = ctx.plan.grid.size, len(ctx.spec)
    feats = np.empty((G, F, P), dtype=np.float32)
    sv = np.empty((G, P), dtype=bool)
    count = np.empty(P, dtype=np.int16)
    gap = np.empty(P, dtype=np.float32)
    bad = np.empty(P, dtype=bool)
    starts = list(range(0, P, block))
    done = 0

    count32 = np.empty(P, dtype=np.int32)

    def run(p0: int) -> None:
        sl = slice(p0, min(P, p0 + block))
        parts = (feats[:, :, sl], sv[:, sl], count32[sl], gap[sl], bad[sl])
        compute_block(r[:, :, sl], ok[:, sl], ctx, parts)

    if workers > 1:
        with ThreadPoolExecutor(workers) as pool:
            for _ in pool.map(run, starts):
                done += 1
                if progress:
                    progress(done, len(starts))
    else:
        for p0 in starts:
            run(p0)
            done += 1
            if progress:
                progress(done, len(starts))
    if int(count32.max(initial=0)) == 0 and not np.isfinite(r).all(axis=1)[ok].any():
        raise _no_valid(policy)
    count[...] = count32
    return (
        feats.reshape(G, F, Y, X),
        sv.reshape(G, Y, X),
        count.reshape(Y, X),
        gap.reshape(Y, X),
        bad.reshape(Y, X),
    )


def _dask_stack(
    refl: Any, scl: Any, ctx: _Context, policy: CloudMaskPolicy, max_chunk_bytes: int
) -> tuple[Any, ...]:
    import dask.array as da

    refl = da.asarray(refl)
    scl = da.asarray(scl)
    T, B, Y, X = refl.shape
    cy, cx = _spatial_chunks(refl, max_chunk_bytes)
    refl = refl.rechunk({0: -1, 1: -1, 2: cy, 3: cx})
    scl = scl.rechunk({0: -1, 1: refl.chunks[2], 2: refl.chunks[3]})
    depth = policy.dilation if (policy.dilation and policy.grown) else 0
    ok = da.map_overlap(
        scl_valid,
        scl,
        depth={0: 0, 1: depth, 2: depth},
        boundary="none",
        dtype=bool,
        meta=np.empty((0, 0, 0), dtype=bool),
        policy=policy,
    )
    # cheap eager check on SCL alone (dilation can only remove valid observations)
    dropped = scl.map_blocks(scl_in, policy.drop, unknown=True, dtype=bool)
    if bool(dropped.all().compute()):
        raise _no_valid(policy)
    packed = da.blockwise(
        _pack_block,
        "kyx",
        refl,
        "tbyx",
        ok,
        "tyx",
        new_axes={"k": ctx.n_out},
        concatenate=True,
        dtype=np.float32,
        meta=np.empty((0, 0, 0), dtype=np.float32),
        ctx=ctx,
    )
    G, F = ctx.plan.grid.size, len(ctx.spec)
    feats = packed[: G * F].reshape(G, F, Y, X)
    sv = packed[G * F : G * F + G] > 0.5
    count = packed[G * F + G].astype(np.int16)
    gap = packed[G * F + G + 1]
    bad = packed[G * F + G + 2] > 0.5
    return feats, sv, count, gap, bad


def _spatial_chunks(refl: Any, max_bytes: int) -> tuple[Any, Any]:
    """Keep the cube's y/x chunks unless a whole-time block would exceed ``max_bytes``."""
    T, B, Y, X = refl.shape
    cy, cx = max(refl.chunks[2]), max(refl.chunks[3])
    per_px = T * B * 4
    if cy * cx * per_px <= max_bytes:
        return refl.chunks[2], refl.chunks[3]
    side = max(16, int((max_bytes / per_px) ** 0.5) // 16 * 16)
    return min(side, Y), min(side, X)


def _is_dask(a: Any) -> bool:
    return type(a).__module__.startswith("dask")


# --------------------------------------------------------------------------- model access


def pixel_dataarray(fs: xr.Dataset) -> xr.DataArray:
    """``features`` as (pixel, doy, feature) — lazy when ``fs`` is dask-backed.

    ``pixel`` is a stacked (y, x) index; ``insufficient_data`` rides along as a coordinate.
    """
    da_ = fs["features"].assign_coords(insufficient_data=fs["insufficient_data"])
    return da_.stack(pixel=("y", "x")).transpose("pixel", "doy", "feature")


def to_pixel_array(
    fs: xr.Dataset, mask: np.ndarray | xr.DataArray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(X, flat_index): X float32 (N, doy, feature) for pixels where ``mask`` is True.

    ``mask`` (y, x) defaults to ``~insufficient_data``; ``flat_index`` indexes y*X + x.
    """
    keep = ~np.asarray(fs["insufficient_data"].values) if mask is None else np.asarray(mask)
    flat = np.flatnonzero(keep.reshape(-1))
    f = fs["features"].transpose("doy", "feature", "y", "x")
    G, F, Y, Xn = f.shape
    arr = np.asarray(f.values).reshape(G, F, Y * Xn)[:, :, flat]
    return np.ascontiguousarray(arr.transpose(2, 0, 1)), flat


def write_features(fs: xr.Dataset, path: str | Path, *, overwrite: bool = True) -> Path:
    """Write a feature Dataset as Zarr, atomically (computing it chunk by chunk if lazy)."""
    path = Path(path)
    out = fs.copy()
    for name in out.variables:
        out[name].encoding.pop("chunks", None)
        out[name].encoding.pop("preferred_chunks", None)
    out = out.assign_coords(feature=out["feature"].astype(object))
    with atomic_path(path, overwrite=overwrite) as tmp:
        out.to_zarr(tmp, mode="w", consolidated=True, zarr_format=2)
    return path


def open_features(path: str | Path, *, chunks: Any = None) -> xr.Dataset:
    """Open a feature store written by :func:`write_features`."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no feature store at {path}")
    ds = xr.open_zarr(path, chunks=chunks, consolidated=None)
    if "spatial_ref" in ds.data_vars:
        ds = ds.set_coords("spatial_ref")
    if ds.attrs.get("format") != FORMAT:
        raise ValueError(f"{path} is not an AgroStress feature store ({FORMAT})")
    names = np.array([str(f) for f in ds["feature"].values])
    return ds.assign_coords(feature=names.astype(f"<U{max(1, max(map(len, names)))}"))


def feature_names(spec: str | Sequence[str] | FeatureSpec | None = None) -> list[str]:
    """The resolved, ordered feature names of a spec (presets expanded)."""
    return list(FeatureSpec.parse(spec).names)
