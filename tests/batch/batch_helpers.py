"""Test-only helpers and constants, imported by the tests and the batch conftest and preloaded by
Dask workers (``--preload``).

``slowfiles``: the ``files`` source with a delay per fetch, so a worker can be killed while
tiles are still running.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import shapely
import typer
import xarray as xr
from pyproj import Transformer
from shapely.geometry import Polygon

from agrostress.ingest.base import register_source
from agrostress.ingest.files_source import FilesSource

START, END = "2024-03-01", "2024-07-20"
ORIGIN = (500000.0, 5320000.0)
WIDTH, HEIGHT = 44, 36  # px of the simulated scene
TILE = 24  # px: the region's 43 x 36 px grid makes 2 x 2 tiles, the east and south ones clipped


def utm_to_wgs84(geom: Polygon) -> Polygon:
    t = Transformer.from_crs(32631, 4326, always_xy=True)
    return shapely.transform(geom, t.transform, interleaved=False)


def region_polygon_utm() -> Polygon:
    """An irregular polygon inside the simulated scene (edges not on the 10 m grid)."""
    x0, y1 = ORIGIN
    pts = [(23, 17), (401, 9), (433, 143), (352, 341), (118, 352), (12, 207)]
    return Polygon([(x0 + dx, y1 - dy) for dx, dy in pts])


@register_source("slowfiles")
class SlowFilesSource(FilesSource):
    """``files`` with a delay per fetch (seconds in ``DELAY``)."""

    DELAY = 1.5

    def fetch(self, aoi: Any, start: Any, end: Any, *, progress: Any = None) -> xr.Dataset:
        time.sleep(self.DELAY)
        return super().fetch(aoi, start, end, progress=progress)


def batch_app() -> typer.Typer:
    """A Typer app with the ``batch`` command (and a no-op, so "batch" stays a sub-command)."""
    from agrostress.commands import batch as batch_cmd

    app = typer.Typer()
    batch_cmd.register(app)

    @app.command("noop")
    def _noop() -> None:
        pass

    return app


def batch_args(region_scene: dict, model: Path, out: Path, *extra: str) -> list[str]:
    """``agrostress batch`` over the region scene's GeoTIFF folder, 48 px tiles, in process."""
    return ["batch", "--region", str(region_scene["region"]), "--start", START, "--end", END,
            "--source", "files", "--input", str(region_scene["folder"]), "--out", str(out),
            "--model", str(model), "--tile-size", "48", "--workers", "0", *extra]

