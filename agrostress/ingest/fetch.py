"""The ingestion pipeline: one call from (source, AOI, period) to a validated Zarr cube.

Used by ``agrostress ingest``, the REST API and the batch pipeline::

    from agrostress.ingest.fetch import ingest
    path = ingest("stac", "field.geojson", "2024-03-01", "2024-07-20", "cube.zarr",
                  cache_dir="cache/")

With a cache folder, the cube of a grid rectangle around the AOI is fetched (or taken from the
cache) and the AOI cut out of it: the result is the cube an uncached fetch of the AOI gives
(:mod:`agrostress.ingest.cache`). Nothing is written unless the whole cube was fetched and
validated; the output (and any cache entry) appears atomically.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import xarray as xr

from agrostress.cube import validate, write_zarr
from agrostress.ingest import (
    AOI,
    IngestCache,
    ProgressCallback,
    Source,
    cache_key,
    get_source,
    load_aoi,
    parse_period,
    request_description,
)
from agrostress.ingest.base import cut_cube, report
from agrostress.ingest.cache import cache_rectangle
from agrostress.settings import Settings, get_settings

LOGGER = logging.getLogger("agrostress.ingest")


def fetch_cube(
    source: str,
    aoi: Any,
    start: Any,
    end: Any,
    *,
    cache_dir: str | Path | None = None,
    settings: Settings | None = None,
    progress: ProgressCallback | None = None,
    max_area_km2: float | None | bool = True,
    aoi_crs: Any = None,
) -> xr.Dataset:
    """The in-memory cube for the request, through the cache when ``cache_dir`` is given
    (bounded by ``settings.cache_max_gb``; 0 = no cache; rectangles snapped to
    ``settings.cache_tile_px``).

    ``aoi``: path, GeoJSON (dict or text), shapely geometry, GeoDataFrame or :class:`AOI`.
    ``max_area_km2``: True = the settings' limit, None = no limit (batch), or a number.
    """
    settings = settings or get_settings()
    limit = settings.ingest_max_area_km2 if max_area_km2 is True else max_area_km2
    area: AOI = load_aoi(aoi, crs=aoi_crs, max_area_km2=limit)  # type: ignore[arg-type]
    t0, t1 = parse_period(start, end)
    src = get_source(source, settings)
    max_bytes = settings.ingest_cache_max_bytes()
    if cache_dir and max_bytes > 0:
        cache = IngestCache(cache_dir, max_bytes=max_bytes)
        ds = _through_cache(cache, src, area, t0, t1, settings.cache_tile_px, progress)
    else:
        ds = validate(src.fetch(area, t0, t1, progress=progress))
    ds.attrs.update(
        {
            "ingest_start": t0.isoformat(),
            "ingest_end": t1.isoformat(),
            "aoi_wkt_wgs84": area.geometry_wgs84.wkt,
            "aoi_epsg": area.epsg,
        }
    )
    return ds


def _through_cache(
    cache: IngestCache,
    src: Source,
    area: AOI,
    t0: dt.date,
    t1: dt.date,
    tile_px: int,
    progress: ProgressCallback | None,
) -> xr.Dataset:
    """``area``'s cube cut out of the (cached, else fetched and cached) rectangle around it."""
    rect = cache_rectangle(area, src, tile_px)
    description = request_description(src.name, src.identity(), rect, t0, t1)
    key = cache_key(description)
    whole = cache.get(key)
    if whole is not None:
        report(progress, "cache", 1, 1)
    else:
        whole = validate(src.fetch(rect, t0, t1, progress=progress))
        try:
            if cache.put(key, whole, description) is not None:
                LOGGER.info("cached as %s", cache.path(key))
        except OSError as e:  # a full or read-only disk costs the cache, not the request
            LOGGER.warning("could not cache %s: %s", cache.path(key), e)
    return cut_cube(whole, area)


def ingest(
    source: str,
    aoi: Any,
    start: Any,
    end: Any,
    out: str | Path,
    cache_dir: str | Path | None = None,
    settings: Settings | None = None,
    progress: ProgressCallback | None = None,
    *,
    overwrite: bool = False,
    max_area_km2: float | None | bool = True,
    aoi_crs: Any = None,
) -> Path:
    """Fetch (or take from the cache) the cube and write it atomically as Zarr at ``out``.

    Raises :class:`agrostress.ingest.IngestError` subclasses (AOIError, CredentialsError,
    UpstreamError, EmptyCatalogueError, CoverageError, SourceConfigError), ``ValueError`` for
    a bad period and ``FileExistsError`` when ``out`` exists and ``overwrite`` is False. On any
    failure ``out`` is left as it was.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists (use --overwrite / overwrite=True to replace it)")
    ds = fetch_cube(
        source,
        aoi,
        start,
        end,
        cache_dir=cache_dir,
        settings=settings,
        progress=progress,
        max_area_km2=max_area_km2,
        aoi_crs=aoi_crs,
    )
    if progress:
        progress("write", 0, 1)
    path = write_zarr(ds, out, overwrite=overwrite)
    if progress:
        progress("write", 1, 1)
    return path
