"""Local files: a folder of Sentinel-2 L2A GeoTIFFs reprojected/cropped onto the AOI grid.

Accepted layouts (mixed freely, one acquisition per "stem"):

* per-date multi-band GeoTIFFs with the 10 bands (B02...B12, in that order or named by the
  band descriptions) plus SCL as an 11th band, or plus a companion ``<stem>_SCL.tif``;
* per-band files ``<stem>_<band>.tif`` (band: B02...B12, B8A, SCL, optional ``_10m``/``_20m``);
* the folder written by :func:`agrostress.cube.write_geotiff_folder` (``cube.json``, float
  reflectance, ``static.tif`` with label/field_id).

Dates come from ``cube.json``, else the ``ACQUISITION_DATETIME`` (or ``DATETIME``) tag, else a
``YYYYMMDD[THHMMSS]`` / ``YYYY-MM-DD`` pattern in the name. Float data whose valid values are
all below 3 are taken as reflectance; integer (or larger float) data as L2A DN, harmonised by
tags ``BOA_ADD_OFFSET`` / ``PROCESSING_BASELINE`` / ``BOA_OFFSET_APPLIED`` or the date, then
pixel-checked (:mod:`~agrostress.ingest.harmonise`). Grids aligned with the AOI grid are read
exactly; others are reprojected with rasterio (bilinear for bands, nearest for SCL).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from agrostress.cube import BANDS
from agrostress.ingest.base import (
    EmptyCatalogueError,
    IngestError,
    ProgressCallback,
    SourceConfigError,
    UpstreamError,
    finalize_cube,
    period_bounds,
    platform_code,
    register_source,
    report,
)
from agrostress.ingest.harmonise import (
    OffsetDecision,
    check_offset,
    harmonise,
    offset_from_metadata,
)

if TYPE_CHECKING:
    import xarray as xr

    from agrostress.ingest.aoi import AOI
    from agrostress.settings import Settings

LOGGER = logging.getLogger("agrostress.ingest")

_BAND_RE = re.compile(r"[_\-.](B0[2-8]|B8A|B1[12]|SCL)(?:_(?:10|20|60)m)?$", re.IGNORECASE)
_DATE_RES = (
    re.compile(r"(?<!\d)(\d{8})T(\d{6})(?!\d)"),
    re.compile(r"(?<!\d)(\d{8})(?!\d)"),
    re.compile(r"(?<!\d)(\d{4}-\d{2}-\d{2})(?!\d)"),
)
_SUFFIXES = (".tif", ".tiff")
REFLECTANCE_MAX = 3.0


@dataclass
class Acquisition:
    """The files of one acquisition (one stem)."""

    stem: str
    multiband: Path | None = None
    bands: dict[str, Path] = field(default_factory=dict)  # per-band files, incl. "SCL"
    time: pd.Timestamp | None = None
    platform: str | None = None


@register_source("files")
class FilesSource:
    """A folder of GeoTIFFs / COGs."""

    name = "files"
    location_determined = True  # a pixel's values do not depend on the grid's extent

    def __init__(self, settings: Settings, *, folder: str | Path | None = None):
        self.settings = settings
        folder = folder or settings.files_dir
        self.folder = Path(folder) if folder else None

    def _folder(self) -> Path:
        if self.folder is None:
            raise SourceConfigError(
                "no input folder for --source files (give --input DIR or AGROSTRESS_FILES_DIR)"
            )
        if not self.folder.is_dir():
            raise SourceConfigError(f"input folder {self.folder} does not exist")
        return self.folder

    def identity(self) -> dict[str, Any]:
        folder = self._folder()
        files = sorted(
            p for p in folder.iterdir() if p.suffix.lower() in _SUFFIXES or p.name == "cube.json"
        )
        return {
            "folder": str(folder.resolve()),
            "files": [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files],
            "offset_check": self.settings.ingest_offset_check,
        }

    # ------------------------------------------------------------------ discovery

    def scan(self) -> list[Acquisition]:
        """Group the folder's GeoTIFFs into acquisitions (unsorted, undated)."""
        folder = self._folder()
        manifest = _manifest(folder)
        acqs: dict[str, Acquisition] = {}
        for p in sorted(folder.iterdir()):
            if p.suffix.lower() not in _SUFFIXES or p.stem.lower() == "static":
                continue
            m = _BAND_RE.search(p.stem)
            if m:
                key = p.stem[: m.start()]
                acq = acqs.setdefault(key, Acquisition(key))
                band = m.group(1).upper()
                if band in acq.bands:
                    raise SourceConfigError(
                        f"two files for {band} of {key}: {acq.bands[band].name}, {p.name}"
                    )
                acq.bands[band] = p
            else:
                acq = acqs.setdefault(p.stem, Acquisition(p.stem))
                acq.multiband = p
        times = dict(zip(manifest.get("files", []), manifest.get("times", []), strict=False))
        plats = dict(zip(manifest.get("files", []), manifest.get("platforms", []), strict=False))
        for acq in acqs.values():
            if acq.multiband is not None and acq.multiband.name in times:
                acq.time = _naive(pd.Timestamp(times[acq.multiband.name]))
                acq.platform = platform_code(plats.get(acq.multiband.name))
        return list(acqs.values())

    # ------------------------------------------------------------------ fetch

    def fetch(
        self, aoi: AOI, start: dt.date, end: dt.date, *, progress: ProgressCallback | None = None
    ) -> xr.Dataset:
        import rasterio

        acqs = self.scan()
        if not acqs:
            raise EmptyCatalogueError(f"no GeoTIFF in {self._folder()}")
        for acq in acqs:
            try:
                self._date(acq)
            except (rasterio.errors.RasterioError, OSError) as e:
                raise UpstreamError(f"cannot read {acq.stem} in {self._folder()}: {e}") from e
        t0, t1 = period_bounds(start, end)
        acqs = [a for a in acqs if a.time is not None and t0 <= a.time <= t1]
        if not acqs:
            raise EmptyCatalogueError(
                f"no acquisition in {self._folder()} between {start} and {end}"
            )
        acqs.sort(key=lambda a: (a.time, a.stem))
        times = [a.time for a in acqs]
        if len(set(times)) != len(times):
            dup = sorted({str(t) for t in times if times.count(t) > 1})
            raise SourceConfigError(
                f"several acquisitions share the time(s) {dup} in {self._folder()}"
            )
        n = len(acqs)
        refl = np.empty((n, len(BANDS), aoi.height, aoi.width), dtype=np.float32)
        scl = np.empty((n, aoi.height, aoi.width), dtype=np.uint8)
        offsets = []
        report(progress, "read", 0, n)
        try:
            for i, acq in enumerate(acqs):
                data, s, decision = self._read(acq, aoi)
                refl[i], scl[i] = data, s
                offsets.append(decision.offset)
                report(progress, "read", i + 1, n)
        except IngestError:
            raise
        except (rasterio.errors.RasterioError, OSError, ValueError) as e:
            raise UpstreamError(f"cannot read {acq.stem} in {self._folder()}: {e}") from e
        extra = self._static(aoi)
        return finalize_cube(
            refl,
            scl,
            times,  # type: ignore[arg-type]
            aoi,
            platforms=[a.platform for a in acqs],
            extra=extra,
            attrs={
                "files_dir": str(self._folder().resolve()),
                "scene_ids": [a.stem for a in acqs],
                "boa_offsets": offsets,
            },
            source=self.name,
        )

    def _date(self, acq: Acquisition) -> None:
        import rasterio

        first = acq.multiband or next(iter(acq.bands.values()))
        tags: dict[str, str] = {}
        if acq.time is None or acq.platform is None:
            with rasterio.open(first) as src:
                tags = src.tags()
        if acq.time is None:
            raw = tags.get("ACQUISITION_DATETIME") or tags.get("DATETIME")
            if raw:
                try:
                    acq.time = _naive(
                        pd.Timestamp(raw.replace(":", "-", 2) if _is_tiff_dt(raw) else raw)
                    )
                except ValueError:
                    acq.time = None
            if acq.time is None:
                acq.time = _date_from_name(acq.stem)
            if acq.time is None:
                raise SourceConfigError(f"{first.name}: no acquisition date in tags or file name")
        if acq.platform is None:
            acq.platform = platform_code(tags.get("PLATFORM")) or platform_code(acq.stem[:3])

    def _read(self, acq: Acquisition, aoi: AOI) -> tuple[np.ndarray, np.ndarray, OffsetDecision]:
        import rasterio

        tags: dict[str, str] = {}
        if acq.multiband is not None:
            with rasterio.open(acq.multiband) as src:
                tags = src.tags()
                names = [(d or "").upper() for d in src.descriptions]
                if all(b in names for b in BANDS):
                    idx = [names.index(b) + 1 for b in BANDS]
                elif src.count in (len(BANDS), len(BANDS) + 1):
                    idx = list(range(1, len(BANDS) + 1))
                else:
                    raise SourceConfigError(
                        f"{acq.multiband.name}: {src.count} band(s); expected 10 (+ SCL) in the "
                        f"order {', '.join(BANDS)} or named by band descriptions"
                    )
                data, is_float = _read_grid(src, idx, aoi, nearest=False)
                scl_idx = names.index("SCL") + 1 if "SCL" in names else None
                if scl_idx is None and src.count == len(BANDS) + 1:
                    scl_idx = len(BANDS) + 1
                scl = None
                if scl_idx is not None and "SCL" not in acq.bands:
                    scl = _read_grid(src, [scl_idx], aoi, nearest=True)[0][0]
            if scl is None:
                if "SCL" not in acq.bands:
                    raise SourceConfigError(
                        f"{acq.multiband.name}: no SCL band nor {acq.stem}_SCL.tif"
                    )
                with rasterio.open(acq.bands["SCL"]) as src:
                    scl = _read_grid(src, [1], aoi, nearest=True)[0][0]
        else:
            missing = [b for b in (*BANDS, "SCL") if b not in acq.bands]
            if missing:
                raise SourceConfigError(
                    f"{acq.stem}: missing per-band file(s) for {', '.join(missing)}"
                )
            layers = []
            is_float = False
            for b in BANDS:
                with rasterio.open(acq.bands[b]) as src:
                    tags = tags or src.tags()
                    arr, f = _read_grid(src, [1], aoi, nearest=False)
                    layers.append(arr[0])
                    is_float = is_float or f
            data = np.stack(layers)
            with rasterio.open(acq.bands["SCL"]) as src:
                scl = _read_grid(src, [1], aoi, nearest=True)[0][0]
        scl_u8 = np.where(np.isfinite(scl), scl, 0).astype(np.uint8)
        valid = data[np.isfinite(data)]
        if is_float and (valid.size == 0 or float(np.nanmax(valid)) < REFLECTANCE_MAX):
            return data.astype(np.float32), scl_u8, OffsetDecision(0.0, "float reflectance")
        decision = _decision_from_tags(tags, acq.time)
        decision = check_offset(
            decision,
            data[BANDS.index("B04")],
            scl_u8,
            scene=f"file {acq.stem}",
            enabled=self.settings.ingest_offset_check,
        )
        data[data == 0] = np.nan
        return harmonise(data, decision), scl_u8, decision

    def _static(self, aoi: AOI) -> dict[str, np.ndarray]:
        import rasterio

        path = self._folder() / "static.tif"
        if not path.exists():
            return {}
        out = {}
        with rasterio.open(path) as src:
            for b, name in enumerate(src.descriptions, start=1):
                if name in ("label", "field_id"):
                    arr = _read_grid(src, [b], aoi, nearest=True, nodata=_NO_FILL)[0][0]
                    arr = np.where(np.isfinite(arr), arr, 0 if name == "field_id" else -1)
                    out[name] = arr.astype(np.int8 if name == "label" else np.int32)
        return out


# --------------------------------------------------------------------------- helpers


def _manifest(folder: Path) -> dict[str, Any]:
    p = folder / "cube.json"
    if not p.exists():
        return {}
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise SourceConfigError(f"{p} is not valid JSON: {e}") from e


def _naive(ts: pd.Timestamp) -> pd.Timestamp:
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo else ts


def _is_tiff_dt(raw: str) -> bool:
    return bool(re.fullmatch(r"\d{4}:\d{2}:\d{2} \d{2}:\d{2}:\d{2}", raw.strip()))


def _date_from_name(stem: str) -> pd.Timestamp | None:
    for rx in _DATE_RES:
        m = rx.search(stem)
        if m:
            try:
                text = m.group(1) + ("T" + m.group(2) if rx.groups == 2 else "")
                return pd.Timestamp(text)
            except ValueError:
                continue
    return None


def _decision_from_tags(tags: dict[str, str], when: Any) -> OffsetDecision:
    low = {k.upper(): v for k, v in tags.items()}
    if "BOA_ADD_OFFSET" in low:
        try:
            off = float(low["BOA_ADD_OFFSET"])
            return OffsetDecision(off, f"BOA_ADD_OFFSET tag {off:g}")
        except ValueError:
            pass
    props: dict[str, Any] = {}
    if "PROCESSING_BASELINE" in low:
        props["s2:processing_baseline"] = low["PROCESSING_BASELINE"]
    if "BOA_OFFSET_APPLIED" in low:
        props["earthsearch:boa_offset_applied"] = (
            low["BOA_OFFSET_APPLIED"].strip().lower() == "true"
        )
    return offset_from_metadata(props, when)


def _aligned(src: Any, aoi: AOI) -> tuple[int, int] | None:
    """(row_off, col_off) of the AOI grid in ``src`` when both grids coincide, else None."""
    from pyproj import CRS

    t = src.transform
    r = aoi.resolution
    if src.crs is None or not CRS.from_user_input(src.crs).equals(aoi.crs):
        return None
    if t.b != 0 or t.d != 0 or abs(t.a - r) > 1e-9 * r or abs(t.e + r) > 1e-9 * r:
        return None
    col = (aoi.bounds[0] - t.c) / r
    row = (t.f - aoi.bounds[3]) / r
    if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
        return None
    return round(row), round(col)


_NO_FILL = -(2.0**31)  # a "nodata" no label/field layer holds: only marks pixels off the file


def _read_grid(
    src: Any, indexes: list[int], aoi: AOI, *, nearest: bool, nodata: float | None = None
) -> tuple[np.ndarray, bool]:
    """Bands ``indexes`` of ``src`` on the AOI grid as float32 with NaN = no data; is-float flag.

    ``nodata`` defaults to the file's, else NaN for float and 0 (L2A no data) for integers.
    """
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.warp import reproject
    from rasterio.windows import Window

    is_float = np.issubdtype(np.dtype(src.dtypes[indexes[0] - 1]), np.floating)
    if nodata is None:
        nodata = src.nodata if src.nodata is not None else (np.nan if is_float else 0)
    off = _aligned(src, aoi)
    if off is not None:
        win = Window(off[1], off[0], aoi.width, aoi.height)
        inside = (
            off[0] >= 0
            and off[1] >= 0
            and off[0] + aoi.height <= src.height
            and off[1] + aoi.width <= src.width
        )
        if inside:
            arr = src.read(indexes, window=win).astype(np.float32)
        else:
            arr = src.read(indexes, window=win, boundless=True, fill_value=nodata).astype(
                np.float32
            )
    else:
        arr = np.full((len(indexes), aoi.height, aoi.width), np.nan, dtype=np.float32)
        for k, b in enumerate(indexes):
            reproject(
                source=rasterio.band(src, b),
                destination=arr[k],
                src_transform=src.transform,
                src_crs=src.crs,
                src_nodata=float(nodata),
                dst_transform=aoi.transform,
                dst_crs=aoi.crs,
                dst_nodata=np.nan,
                resampling=Resampling.nearest if nearest else Resampling.bilinear,
            )
        return arr, is_float
    if not (isinstance(nodata, float) and np.isnan(nodata)):
        arr[arr == nodata] = np.nan
    return arr, is_float
