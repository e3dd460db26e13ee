"""The :class:`Source` protocol, the source registry and the ingestion error hierarchy.

Every source turns ``(aoi, start, end)`` into a contract cube on the AOI's 10 m UTM grid
(:class:`agrostress.ingest.aoi.AOI`). Pixels inside the AOI's bounding box but outside its
polygon are kept as NaN reflectance with SCL 0 (no data), so all sources agree pixel for pixel.
:func:`cut_cube` cuts such a cube of a larger grid rectangle down to an AOI exactly as if the
AOI had been fetched itself (the ingestion cache stores rectangles).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import xarray as xr

    from agrostress.ingest.aoi import AOI
    from agrostress.settings import Settings

LOGGER = logging.getLogger("agrostress.ingest")

ProgressCallback = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: called as work advances (stage is a short label)."""

INGEST_FORMAT_VERSION = 2
"""Bump when a change alters the pixels any source produces or the cache's key or layout
(invalidates the cache). 2: entries are grid rectangles keyed without the AOI polygon."""


# --------------------------------------------------------------------------- errors


class IngestError(Exception):
    """Base class of every expected ingestion failure (message is meant for the user)."""


class AOIError(IngestError, ValueError):
    """The area of interest cannot be used (invalid, empty, not a polygon, too large...)."""


class CredentialsError(IngestError):
    """Missing or rejected credentials (HTTP 401/403, OAuth errors)."""


class UpstreamError(IngestError):
    """The remote service failed: 5xx, timeouts, rate limit exhausted, corrupt responses."""


class EmptyCatalogueError(IngestError):
    """No acquisition matches the AOI and period."""


class CoverageError(IngestError):
    """The AOI lies outside the data's coverage (no valid pixel anywhere)."""


class SourceConfigError(IngestError, ValueError):
    """A source is misconfigured (unknown name, missing folder or URL)."""


# --------------------------------------------------------------------------- protocol


@runtime_checkable
class Source(Protocol):
    """A data source that produces contract cubes."""

    name: str
    location_determined: bool
    """True when a pixel's values depend only on its location (and the request's period), not
    on the extent of the requested grid: the cache may then fetch a larger rectangle and cut
    the AOI out of it."""

    def identity(self) -> dict[str, Any]:
        """Everything besides the request that determines the pixels (for the cache key)."""
        ...

    def fetch(
        self, aoi: AOI, start: dt.date, end: dt.date, *, progress: ProgressCallback | None = None
    ) -> xr.Dataset:
        """The cube for ``aoi`` between ``start`` and ``end`` (both inclusive, UTC dates)."""
        ...


SOURCES: dict[str, Callable[[Settings], Source]] = {}
"""Registry: source name → factory taking the settings."""


def register_source(name: str) -> Callable[[Any], Any]:
    """Class decorator adding a source to :data:`SOURCES`."""

    def deco(cls: Any) -> Any:
        cls.name = name
        SOURCES[name] = cls
        return cls

    return deco


def get_source(name: str, settings: Settings | None = None) -> Source:
    """Instantiate the source called ``name`` with ``settings`` (default: the process settings)."""
    import agrostress.ingest  # noqa: F401  (fills the registry)
    from agrostress.settings import get_settings

    if name not in SOURCES:
        raise SourceConfigError(
            f"unknown source {name!r}; choose one of {', '.join(sorted(SOURCES))}"
        )
    return SOURCES[name](settings or get_settings())


# --------------------------------------------------------------------------- helpers


def parse_period(start: Any, end: Any) -> tuple[dt.date, dt.date]:
    """Two dates (inclusive) from strings / dates; raise :class:`ValueError` when reversed."""
    try:
        s, e = pd.Timestamp(start).date(), pd.Timestamp(end).date()
    except (ValueError, TypeError) as exc:
        raise ValueError(f"bad date in period {start!r}..{end!r}: {exc}") from exc
    if s > e:
        raise ValueError(f"start {s} is after end {e}")
    return s, e


def period_bounds(start: dt.date, end: dt.date) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last instants (UTC, tz-naive) of the inclusive period ``start``..``end``."""
    return pd.Timestamp(start), pd.Timestamp(end) + pd.Timedelta(days=1) - pd.Timedelta(1, "ns")


def report(progress: ProgressCallback | None, stage: str, done: int, total: int) -> None:
    """Call ``progress`` if given; a failing progress callback never breaks ingestion."""
    if progress is None:
        return
    try:
        progress(stage, done, total)
    except Exception:  # pragma: no cover - defensive
        LOGGER.debug("progress callback failed", exc_info=True)


def platform_code(value: Any) -> str | None:
    """'sentinel-2a' / 'S2A' / 'Sentinel-2B' → 'S2A'/'S2B'/'S2C', else None."""
    if not value:
        return None
    v = str(value).strip().lower().replace("_", "-")
    for letter in ("a", "b", "c"):
        if v in (f"sentinel-2{letter}", f"s2{letter}", f"sentinel2{letter}"):
            return f"S2{letter.upper()}"
    return None


def finalize_cube(
    refl: np.ndarray,
    scl: np.ndarray,
    times: list[pd.Timestamp],
    aoi: AOI,
    *,
    platforms: list[str | None] | None = None,
    attrs: dict[str, Any] | None = None,
    extra: dict[str, np.ndarray] | None = None,
    source: str,
) -> xr.Dataset:
    """Mask outside the AOI polygon, drop dates without any data and build a valid cube.

    The input arrays may be modified in place.

    ``refl`` is float32 (time, band, y, x) reflectance, ``scl`` uint8 (time, y, x); ``extra``
    may hold ``label`` / ``field_id`` (y, x), set to -1 / 0 outside the AOI. Where all
    bands are NaN the SCL becomes 0; where SCL is 0 reflectance becomes NaN. Dates with no
    valid pixel inside the AOI are dropped; when none remain, :class:`CoverageError`.
    """
    from agrostress.cube import build_cube, validate

    inside = aoi.mask()
    refl = np.asarray(refl, dtype=np.float32)
    scl = np.asarray(scl, dtype=np.uint8)
    refl[:, :, ~inside] = np.nan
    scl[:, ~inside] = 0
    all_nan = np.all(np.isnan(refl), axis=1)
    scl[all_nan] = 0
    refl[np.broadcast_to((scl == 0)[:, None], refl.shape)] = np.nan
    has_data = (scl != 0).reshape(scl.shape[0], -1).any(axis=1)
    if not has_data.any():
        raise CoverageError(
            f"{source}: no valid pixel inside the AOI on any of {len(times)} date(s); "
            "the AOI is probably outside the data's coverage"
        )
    if not has_data.all():
        dropped = [
            str(pd.Timestamp(t).date()) for t, k in zip(times, has_data, strict=True) if not k
        ]
        LOGGER.info(
            "%s: dropped %d date(s) without data over the AOI: %s", source, len(dropped), dropped
        )
    keep = np.flatnonzero(has_data)
    times_k = [pd.Timestamp(times[i]) for i in keep]
    order = np.argsort(np.array(times_k, dtype="datetime64[ns]"), kind="stable")
    keep = keep[order]
    times_k = [times_k[i] for i in order]
    if len(set(times_k)) != len(times_k):
        raise UpstreamError(f"{source}: duplicate acquisition times {times_k}")
    plats = None
    if platforms is not None:
        p = [platforms[i] for i in keep]
        plats = p if all(p) else None
    extra = {k: np.array(v) for k, v in (extra or {}).items()}
    if "label" in extra:
        extra["label"][~inside] = -1  # unlabelled outside the AOI
    if "field_id" in extra:
        extra["field_id"][~inside] = 0
    ds = build_cube(
        refl[keep],
        scl[keep],
        times_k,
        aoi.y,
        aoi.x,
        f"EPSG:{aoi.epsg}",
        platform=plats,
        label=extra.get("label"),
        field_id=extra.get("field_id"),
        attrs={**(attrs or {}), "source": source, "resolution": aoi.resolution},
    )
    return validate(ds)


def cut_cube(ds: xr.Dataset, aoi: AOI) -> xr.Dataset:
    """The cube ``aoi`` would have given, cut out of ``ds``, a cube of a larger grid rectangle.

    ``ds`` must be a source's cube (:func:`finalize_cube`) on a grid of the same CRS and
    resolution that contains the AOI's grid, fetched with a polygon covering all of it. The
    AOI's window is taken and :func:`finalize_cube` applied again with the AOI's polygon
    (outside: NaN / SCL 0, label -1, field_id 0; dates without a valid pixel inside dropped;
    none left: :class:`CoverageError`); the attrs are kept.
    """
    r0, c0 = _window(ds, aoi)
    part = ds.isel(y=slice(r0, r0 + aoi.height), x=slice(c0, c0 + aoi.width))
    platforms = None
    if "platform" in part.coords:
        platforms = [str(p) for p in part["platform"].values]
    attrs = dict(ds.attrs)
    return finalize_cube(
        np.array(part["reflectance"].values, dtype=np.float32),
        np.array(part["scl"].values, dtype=np.uint8),
        [pd.Timestamp(t) for t in part["time"].values],
        aoi,
        platforms=platforms,
        attrs=attrs,
        extra={n: np.array(part[n].values) for n in ("label", "field_id") if n in part},
        source=str(attrs.get("source", "cache")),
    )


def _window(ds: xr.Dataset, aoi: AOI) -> tuple[int, int]:
    """(row, col) of the AOI grid's first pixel in ``ds``; ValueError if not inside it."""
    from agrostress.cube import cube_crs

    x, y = ds["x"].values, ds["y"].values
    r = aoi.resolution
    c0 = round(float(aoi.x[0] - x[0]) / r) if x.size else -1
    r0 = round(float(y[0] - aoi.y[0]) / r) if y.size else -1
    inside = (
        cube_crs(ds).to_epsg() == aoi.epsg
        and 0 <= c0 <= x.size - aoi.width
        and 0 <= r0 <= y.size - aoi.height
    )
    if not inside or not (
        np.allclose(x[c0 : c0 + aoi.width], aoi.x, rtol=0, atol=1e-6 * r)
        and np.allclose(y[r0 : r0 + aoi.height], aoi.y, rtol=0, atol=1e-6 * r)
    ):
        raise ValueError(
            f"the cube's grid does not contain the AOI grid (EPSG:{aoi.epsg}, {aoi.bounds})"
        )
    return r0, c0
