"""Region batches on Dask: tile a region, map every tile on a worker, mosaic the results.

``run_batch`` (see :mod:`agrostress.batch.run`) is what ``agrostress batch`` calls; the
pieces: :mod:`.grid` (region → tiles), :mod:`.task` (the tile task), :mod:`.manifest` (the
resumable run record), :mod:`.mosaic` (VRT + COG) and :mod:`.stats` (per-field table).
"""

from agrostress.batch.grid import (
    DEFAULT_TILE_SIZE,
    Tile,
    TileGrid,
    ZoneGrid,
    load_region,
    make_grid,
)
from agrostress.batch.manifest import (
    MANIFEST_NAME,
    BatchError,
    FingerprintMismatch,
    Manifest,
    TileRecord,
)
from agrostress.batch.run import BatchProgress, default_workers, run_batch

__all__ = [
    "DEFAULT_TILE_SIZE",
    "MANIFEST_NAME",
    "BatchError",
    "BatchProgress",
    "FingerprintMismatch",
    "Manifest",
    "Tile",
    "TileGrid",
    "TileRecord",
    "ZoneGrid",
    "default_workers",
    "load_region",
    "make_grid",
    "run_batch",
]
