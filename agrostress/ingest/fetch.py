"""The ingestion pipeline: one call from (source, AOI, period) to a validated Zarr cube.

Used by ``agrostress ingest``, the REST API and the batch pipeline::

    from agrostress.ingest.fetch import ingest
    path = ingest("stac", "field.geojson", "2024-03-01", "2024-07-20", "cube.zarr",
                  cache_dir="cache/")

Nothing is written unless the whole cube was fetched and validated; the output (and any
cache entry) appears atomically.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import xarray as xr

from agrostress.cube import validate, write_zarr
from agrostress.ingest import (
    AOI,
    IngestCache,
    ProgressCallback,
    cache_key,
    get_source,
    load_aoi,
    parse_period,
    request_description,
)
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
    """The in-memory cube for the request, through the cache when ``cache_dir`` is given.

    ``aoi``: path, GeoJSON (dict or text), shapely geometry, GeoDataFrame or :class:`AOI`.
    ``max_area_km2``: True = the settings' limit, None = no limit (batch), or a number.
    """
    settings = settings or get_settings()
    limit = settings.ingest_max_area_km2 if max_area_km2 is True else max_area_km2
    area: AOI = load_aoi(aoi, crs=aoi_crs, max_area_km2=limit)  # type: ignore[arg-type]
    t0, t1 = parse_period(start, end)
    src = get_source(source, settings)
    cache = IngestCache(cache_dir) if cache_dir else None
    key = description = None
    if cache is not None:
        description = request_description(src.name, src.identity(), area, t0, t1)
        key = cache_key(description)
        hit = cache.get(key)
        if hit is not None:
            if progress:
                progress("cache", 1, 1)
            return hit
    ds = validate(src.fetch(area, t0, t1, progress=progress))
    ds.attrs.update(
        {
            "ingest_start": t0.isoformat(),
            "ingest_end": t1.isoformat(),
            "aoi_wkt_wgs84": area.geometry_wgs84.wkt,
            "aoi_epsg": area.epsg,
        }
    )
    if cache is not None and key is not None and description is not None:
        cache.put(key, ds, description)
        LOGGER.info("cached as %s", cache.path(key))
    return ds


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
