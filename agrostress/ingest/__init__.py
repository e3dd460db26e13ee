"""Real ingestion: Sentinel Hub, STAC catalogues, local files and the simulator → the cube.

Use :func:`agrostress.ingest.fetch.ingest` for the whole job (AOI checks, cache, atomic output) or
:func:`get_source` + :func:`load_aoi` for the pieces. Heavy clients (sentinelhub, odc-stac,
pystac-client) are imported only when a source fetches.
"""

from agrostress.ingest import (  # noqa: F401  (registration)
    files_source,
    sentinelhub_source,
    simulated_source,
    stac_source,
)
from agrostress.ingest.aoi import AOI, load_aoi, utm_epsg
from agrostress.ingest.base import (
    SOURCES,
    AOIError,
    CoverageError,
    CredentialsError,
    EmptyCatalogueError,
    IngestError,
    ProgressCallback,
    Source,
    SourceConfigError,
    UpstreamError,
    get_source,
    parse_period,
)
from agrostress.ingest.cache import IngestCache, cache_key, request_description

__all__ = [
    "AOI",
    "SOURCES",
    "AOIError",
    "CoverageError",
    "CredentialsError",
    "EmptyCatalogueError",
    "IngestCache",
    "IngestError",
    "ProgressCallback",
    "Source",
    "SourceConfigError",
    "UpstreamError",
    "cache_key",
    "get_source",
    "load_aoi",
    "parse_period",
    "request_description",
    "utm_epsg",
]
