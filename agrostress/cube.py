"""The Sentinel-2 L2A time-series cube: the one structure every part of AgroStress shares.

Contract (see ``docs/cube.md``)::

    xarray.Dataset, dims (time, band, y, x)
      reflectance  float32 (time, band, y, x)  surface reflectance, DN offset removed, NaN = no data
      scl          uint8   (time, y, x)        Sentinel-2 scene classification
      label        int8    (y, x)   optional   -1 unlabelled, 0 healthy, 1 N deficiency, 2 yellow rust
      field_id     int32   (y, x)   optional   0 = outside any field
    coords: time (datetime64, strictly increasing), band (BANDS), y, x (pixel centres, CRS units),
            platform (time) optional "S2A"/"S2B", spatial_ref (CF grid mapping, rioxarray style)

Other variables (e.g. the simulator's ground truth) may ride along; ``validate`` ignores them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from pyproj import CRS

from agrostress.atomic import atomic_path
from agrostress.jsonable import jsonable

BANDS: tuple[str, ...] = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")
"""The ten L2A bands of the cube, in order (10 m and 20 m bands)."""

CLASS_NAMES: tuple[str, ...] = ("healthy", "nitrogen_deficiency", "yellow_rust")
UNLABELLED = -1
UNCERTAIN = "uncertain"
TOO_EARLY = "too_early"
UNCERTAIN_CODE = 3
"""Map code of the "uncertain" outcome (the model does not know); stress classes are 0–2."""
TOO_EARLY_CODE = 4
"""Map code of "too early to tell" (in season: the evidence is not there yet)."""
NOT_WHEAT = "not_wheat"
NOT_WHEAT_CODE = 5
"""Map code of "not wheat" (another crop or land cover: no wheat verdict)."""
OUTCOME_CODES: dict[int, str] = {UNCERTAIN_CODE: UNCERTAIN, TOO_EARLY_CODE: TOO_EARLY,
                                 NOT_WHEAT_CODE: NOT_WHEAT}
"""Map codes of the answers that are not a stress class, after the stress classes."""
NODATA = 255
"""Map code of "no data" (too few clear observations, or outside the request)."""
PLATFORMS = ("S2A", "S2B", "S2C")

SCL_CLASSES: dict[int, str] = {
    0: "no_data",
    1: "saturated_or_defective",
    2: "dark_area_pixels",
    3: "cloud_shadows",
    4: "vegetation",
    5: "not_vegetated",
    6: "water",
    7: "unclassified",
    8: "cloud_medium_probability",
    9: "cloud_high_probability",
    10: "thin_cirrus",
    11: "snow",
}

QUANTIFICATION_VALUE = 10000.0
BOA_ADD_OFFSET = -1000.0  # processing baseline >= 04.00

REQUIRED_DIMS = ("time", "band", "y", "x")


class CubeError(ValueError):
    """A cube breaks the contract. ``problems`` lists every violation found."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__("invalid cube: " + "; ".join(self.problems))


def build_cube(
    reflectance: Any,
    scl: Any,
    time: Sequence[Any],
    y: Sequence[float],
    x: Sequence[float],
    crs: Any,
    *,
    platform: Sequence[str] | None = None,
    label: Any | None = None,
    field_id: Any | None = None,
    attrs: dict[str, Any] | None = None,
) -> xr.Dataset:
    """Assemble a contract-conforming cube from arrays (numpy or dask)."""
    coords: dict[str, Any] = {
        "time": pd.DatetimeIndex(time).values.astype("datetime64[ns]"),
        "band": list(BANDS),
        "y": np.asarray(y, dtype="float64"),
        "x": np.asarray(x, dtype="float64"),
    }
    if platform is not None:
        coords["platform"] = ("time", np.asarray(platform, dtype="<U3"))
    data_vars: dict[str, Any] = {
        "reflectance": (REQUIRED_DIMS, _as_dtype(reflectance, np.float32)),
        "scl": (("time", "y", "x"), _as_dtype(scl, np.uint8)),
    }
    if label is not None:
        data_vars["label"] = (("y", "x"), _as_dtype(label, np.int8))
    if field_id is not None:
        data_vars["field_id"] = (("y", "x"), _as_dtype(field_id, np.int32))
    ds = xr.Dataset(data_vars, coords=coords, attrs=dict(attrs or {}))
    return set_crs(ds, crs)


def _as_dtype(a: Any, dtype: Any) -> Any:
    return a.astype(dtype) if getattr(a, "dtype", None) != dtype else a


def set_crs(ds: xr.Dataset, crs: Any) -> xr.Dataset:
    """Store ``crs`` the CF/rioxarray way (a ``spatial_ref`` coordinate + grid_mapping attrs)."""
    ds = ds.rio.write_crs(CRS.from_user_input(crs).to_wkt(), grid_mapping_name="spatial_ref")
    for name in ds.data_vars:
        ds[name].attrs.pop("grid_mapping", None)
        ds[name].encoding["grid_mapping"] = "spatial_ref"
    return ds


def cube_crs(ds: xr.Dataset) -> CRS:
    """The cube's CRS, or :class:`CubeError` when none is stored."""
    if "spatial_ref" not in ds.coords and "spatial_ref" not in ds.variables:
        raise CubeError(["no CRS: coordinate 'spatial_ref' is missing"])
    ref = ds["spatial_ref"].attrs
    wkt = ref.get("crs_wkt") or ref.get("spatial_ref")
    if not wkt:
        raise CubeError(["no CRS: 'spatial_ref' has neither 'crs_wkt' nor 'spatial_ref' attrs"])
    return CRS.from_wkt(wkt)


def pixel_size(ds: xr.Dataset) -> tuple[float, float]:
    """(dx, dy) from the x/y coordinates; dy is negative for north-up grids."""
    x, y = ds["x"].values, ds["y"].values
    dx = float(x[1] - x[0]) if x.size > 1 else float(ds.attrs.get("resolution", 10.0))
    dy = float(y[1] - y[0]) if y.size > 1 else -float(ds.attrs.get("resolution", 10.0))
    return dx, dy


def problems(ds: Any, *, require_labels: bool = False) -> list[str]:
    """Every way ``ds`` breaks the cube contract (empty list = valid)."""
    if not isinstance(ds, xr.Dataset):
        return [f"expected an xarray.Dataset, got {type(ds).__name__}"]
    out: list[str] = []
    for dim in REQUIRED_DIMS:
        if dim not in ds.dims:
            out.append(f"missing dimension '{dim}'")
    if "reflectance" not in ds:
        out.append("missing variable 'reflectance'")
    else:
        r = ds["reflectance"]
        if r.dims != REQUIRED_DIMS:
            out.append(f"'reflectance' has dims {r.dims}, expected {REQUIRED_DIMS}")
        if r.dtype != np.float32:
            out.append(f"'reflectance' has dtype {r.dtype}, expected float32")
    if "scl" not in ds:
        out.append("missing variable 'scl'")
    else:
        s = ds["scl"]
        if s.dims != ("time", "y", "x"):
            out.append(f"'scl' has dims {s.dims}, expected ('time', 'y', 'x')")
        if s.dtype != np.uint8:
            out.append(f"'scl' has dtype {s.dtype}, expected uint8")
    if "band" in ds.coords:
        bands = [str(b) for b in ds["band"].values]
        missing = [b for b in BANDS if b not in bands]
        extra = [b for b in bands if b not in BANDS]
        if missing:
            out.append(f"missing band(s) {', '.join(missing)}")
        if extra:
            out.append(f"unexpected band(s) {', '.join(extra)}")
        if not missing and not extra and tuple(bands) != BANDS:
            out.append(f"bands out of order: {bands}, expected {list(BANDS)}")
    elif "band" in ds.dims:
        out.append("missing coordinate 'band'")
    if "time" in ds.coords:
        t = ds["time"].values
        if not np.issubdtype(t.dtype, np.datetime64):
            out.append(f"'time' has dtype {t.dtype}, expected datetime64")
        elif t.size == 0:
            out.append("empty time series: no dates")
        elif t.size > 1 and not bool(np.all(np.diff(t) > np.timedelta64(0, "ns"))):
            out.append("'time' is not strictly increasing")
    elif "time" in ds.dims:
        out.append("missing coordinate 'time'")
    for c in ("x", "y"):
        if c in ds.dims:
            if c not in ds.coords:
                out.append(f"missing coordinate '{c}'")
            elif ds.sizes[c] > 1:
                d = np.diff(ds[c].values)
                if not (np.all(d > 0) or np.all(d < 0)):
                    out.append(f"coordinate '{c}' is not monotonic")
    if "platform" in ds.coords:
        p = ds["platform"]
        if p.dims != ("time",):
            out.append(f"'platform' has dims {p.dims}, expected ('time',)")
        else:
            bad = sorted({str(v) for v in p.values} - set(PLATFORMS))
            if bad:
                out.append(f"unknown platform(s) {bad}, expected one of {list(PLATFORMS)}")
    try:
        cube_crs(ds)
    except CubeError as e:
        out.extend(e.problems)
    except Exception as e:  # unparsable WKT
        out.append(f"no CRS: spatial_ref cannot be parsed ({e})")
    if "label" in ds:
        lab = ds["label"]
        if lab.dims != ("y", "x"):
            out.append(f"'label' has dims {lab.dims}, expected ('y', 'x')")
        if lab.dtype != np.int8:
            out.append(f"'label' has dtype {lab.dtype}, expected int8")
        values = np.unique(np.asarray(lab.values))
        bad = [int(v) for v in values if v < UNLABELLED or v >= len(CLASS_NAMES)]
        if bad:
            out.append(f"label code(s) {bad} out of range [-1, {len(CLASS_NAMES) - 1}]")
    elif require_labels:
        out.append("missing variable 'label' (required for training data)")
    if "field_id" in ds:
        fid = ds["field_id"]
        if fid.dims != ("y", "x"):
            out.append(f"'field_id' has dims {fid.dims}, expected ('y', 'x')")
        if fid.dtype != np.int32:
            out.append(f"'field_id' has dtype {fid.dtype}, expected int32")
        elif int(fid.min()) < 0:
            out.append("'field_id' has negative values (0 = outside any field)")
    return out


def validate(ds: Any, *, require_labels: bool = False) -> xr.Dataset:
    """Return ``ds`` unchanged if it meets the contract, else raise :class:`CubeError`."""
    found = problems(ds, require_labels=require_labels)
    if found:
        raise CubeError(found)
    return ds


# --------------------------------------------------------------------------- Zarr


def write_zarr(
    ds: xr.Dataset,
    path: str | Path,
    *,
    overwrite: bool = True,
    extra_files: dict[str, bytes] | None = None,
) -> Path:
    """Validate and write ``ds`` as a Zarr store, atomically.

    ``extra_files`` (name → bytes) are placed inside the store (e.g. ``fields.geojson``);
    Zarr readers ignore them.
    """
    validate(ds)
    path = Path(path)
    out = ds.copy()
    for name in out.variables:
        out[name].encoding.pop("chunks", None)
        out[name].encoding.pop("preferred_chunks", None)
    if "platform" in out.coords:
        out = out.assign_coords(platform=out["platform"].astype(object))
    with atomic_path(path, overwrite=overwrite) as tmp:
        out.to_zarr(tmp, mode="w", consolidated=True, zarr_format=2)
        for name, blob in (extra_files or {}).items():
            if Path(name).name != name or name.startswith("."):
                raise ValueError(f"extra file name {name!r} must be a plain file name")
            (tmp / name).write_bytes(blob)
    return path


def read_zarr(path: str | Path, *, chunks: Any = None) -> xr.Dataset:
    """Open a Zarr cube (lazily when ``chunks`` is given) and validate it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no cube at {path}")
    try:
        ds = xr.open_zarr(path, chunks=chunks, consolidated=None)
    except Exception as e:
        raise CubeError([f"cannot open {path} as Zarr: {e}"]) from e
    return _restore(ds)


def _restore(ds: xr.Dataset) -> xr.Dataset:
    if "spatial_ref" in ds.data_vars:
        ds = ds.set_coords("spatial_ref")
    for name in ds.data_vars:
        if ds[name].attrs.pop("grid_mapping", None):
            ds[name].encoding["grid_mapping"] = "spatial_ref"
    if "platform" in ds.coords:
        ds = ds.assign_coords(platform=ds["platform"].astype("<U3"))
    if "band" in ds.coords:
        ds = ds.assign_coords(band=ds["band"].astype("<U3"))
    return validate(ds)


def open_cube(path: str | Path, *, chunks: Any = None) -> xr.Dataset:
    """Open a cube from Zarr or from a GeoTIFF folder, whichever ``path`` holds."""
    path = Path(path)
    if (path / "cube.json").exists():
        return read_geotiff_folder(path)
    return read_zarr(path, chunks=chunks)


# --------------------------------------------------------------------------- GeoTIFF folder

_DATE_RE = re.compile(r"(\d{8})(?:T(\d{6}))?")


def _date_stem(t: np.datetime64, platform: str | None) -> str:
    stamp = pd.Timestamp(t).strftime("%Y%m%dT%H%M%S")
    return f"{platform or 'S2'}_{stamp}"


def write_geotiff_folder(ds: xr.Dataset, path: str | Path, *, overwrite: bool = True) -> Path:
    """Write one Cloud-Optimized GeoTIFF per date (10 bands + SCL, float32, NaN nodata).

    Also writes ``static.tif`` (label, field_id) when present and ``cube.json`` (dates,
    platforms, attrs) so the folder reads back into the identical cube.
    """
    import rasterio

    validate(ds)
    path = Path(path)
    crs = cube_crs(ds)
    transform = ds.rio.transform()
    height, width = ds.sizes["y"], ds.sizes["x"]
    platforms = (
        [str(p) for p in ds["platform"].values] if "platform" in ds.coords else [None] * ds.sizes["time"]
    )
    profile = {
        "driver": "COG",
        "width": width,
        "height": height,
        "crs": crs.to_wkt(),
        "transform": transform,
        "compress": "DEFLATE",
        "predictor": 3,
        "blocksize": 256,
    }
    files: list[str] = []
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.mkdir()
        for i, t in enumerate(ds["time"].values):
            stem = _date_stem(t, platforms[i])
            refl = np.asarray(ds["reflectance"].isel(time=i).values, dtype=np.float32)
            scl = np.asarray(ds["scl"].isel(time=i).values).astype(np.float32)
            data = np.concatenate([refl, scl[None]], axis=0)
            with rasterio.open(
                tmp / f"{stem}.tif", "w", count=data.shape[0], dtype="float32", nodata=np.nan, **profile
            ) as dst:
                dst.write(data)
                for b, name in enumerate([*BANDS, "SCL"], start=1):
                    dst.set_band_description(b, name)
                dst.update_tags(
                    ACQUISITION_DATETIME=pd.Timestamp(t).isoformat(),
                    PLATFORM=platforms[i] or "",
                    BOA_OFFSET_APPLIED="true",
                )
            files.append(f"{stem}.tif")
        static = [n for n in ("label", "field_id") if n in ds]
        if static:
            stack = np.stack([np.asarray(ds[n].values, dtype=np.int32) for n in static])
            prof = {**profile, "predictor": 2}
            with rasterio.open(
                tmp / "static.tif", "w", count=len(static), dtype="int32", nodata=None, **prof
            ) as dst:
                dst.write(stack)
                for b, name in enumerate(static, start=1):
                    dst.set_band_description(b, name)
        manifest = {
            "format": "agrostress-geotiff-folder/1",
            "files": files,
            "times": [pd.Timestamp(t).isoformat() for t in ds["time"].values],
            "platforms": platforms,
            "static": static,
            "attrs": {k: jsonable(v) for k, v in ds.attrs.items()},
        }
        (tmp / "cube.json").write_text(json.dumps(manifest, indent=2))
    return path


def read_geotiff_folder(path: str | Path) -> xr.Dataset:
    """Read a folder written by :func:`write_geotiff_folder` (or any per-date 11-band COGs).

    Dates come from ``cube.json`` when present, else from the ``ACQUISITION_DATETIME`` tag,
    else from a ``YYYYMMDD[THHMMSS]`` pattern in the file name.
    """
    import rasterio
    from rasterio.errors import RasterioIOError

    path = Path(path)
    manifest_file = path / "cube.json"
    manifest = json.loads(manifest_file.read_text()) if manifest_file.exists() else {}
    files = manifest.get("files") or sorted(
        p.name for p in path.glob("*.tif") if p.name != "static.tif"
    )
    if not files:
        raise CubeError([f"no per-date GeoTIFFs in {path}"])
    times, platforms, refl, scl = [], [], [], []
    transform = crs = None
    for i, name in enumerate(files):
        try:
            with rasterio.open(path / name) as src:
                if src.count != len(BANDS) + 1:
                    raise CubeError([f"{name}: {src.count} bands, expected {len(BANDS)} + SCL"])
                data = src.read().astype(np.float32)
                tags = src.tags()
                transform, crs = src.transform, src.crs
        except RasterioIOError as e:
            raise CubeError([f"cannot read {path / name}: {e}"]) from e
        if manifest.get("times"):
            t = pd.Timestamp(manifest["times"][i])
        elif tags.get("ACQUISITION_DATETIME"):
            t = pd.Timestamp(tags["ACQUISITION_DATETIME"])
        else:
            m = _DATE_RE.search(name)
            if not m:
                raise CubeError([f"{name}: no acquisition date in tags or file name"])
            t = pd.Timestamp(m.group(1) + ("T" + m.group(2) if m.group(2) else ""))
        times.append(t.tz_localize(None) if t.tzinfo else t)
        platforms.append((manifest.get("platforms") or [None] * len(files))[i] or tags.get("PLATFORM"))
        refl.append(data[: len(BANDS)])
        s = data[len(BANDS)]
        scl.append(np.where(np.isfinite(s), s, 0).astype(np.uint8))
    order = np.argsort(np.array(times, dtype="datetime64[ns]"))
    height, width = refl[0].shape[1:]
    xs = transform.c + transform.a * (np.arange(width) + 0.5)
    ys = transform.f + transform.e * (np.arange(height) + 0.5)
    static: dict[str, np.ndarray] = {}
    if (path / "static.tif").exists():
        with rasterio.open(path / "static.tif") as src:
            for b, name in enumerate(src.descriptions, start=1):
                if name in ("label", "field_id"):
                    static[name] = src.read(b)
    plats = [platforms[i] for i in order]
    ds = build_cube(
        np.stack([refl[i] for i in order]),
        np.stack([scl[i] for i in order]),
        [times[i] for i in order],
        ys,
        xs,
        crs.to_wkt(),
        platform=plats if all(plats) else None,
        label=static.get("label"),
        field_id=static.get("field_id"),
        attrs=manifest.get("attrs"),
    )
    return validate(ds)


def dn_to_reflectance(dn: np.ndarray, *, offset: float = BOA_ADD_OFFSET) -> np.ndarray:
    """L2A digital numbers to reflectance: (DN + offset) / 10000, DN 0 = no data → NaN."""
    dn = np.asarray(dn)
    out = (dn.astype(np.float32) + np.float32(offset)) / np.float32(QUANTIFICATION_VALUE)
    return np.where(dn == 0, np.float32(np.nan), out).astype(np.float32)


def reflectance_to_dn(refl: np.ndarray, *, offset: float = BOA_ADD_OFFSET) -> np.ndarray:
    """Reflectance to L2A uint16 DN (NaN → 0 = no data), as stored by baseline ≥ 04.00."""
    refl = np.asarray(refl, dtype=np.float64)
    dn = np.round(refl * QUANTIFICATION_VALUE - offset)
    dn = np.clip(dn, 1, 65535)
    return np.where(np.isfinite(refl), dn, 0).astype(np.uint16)
