"""Test-only helpers, imported by the tests and preloaded by Dask workers (``--preload``).

``slowfiles``: the ``files`` source with a delay per fetch, so a worker can be killed while
tiles are still running.
"""

from __future__ import annotations

import time
from typing import Any

import xarray as xr

from agrostress.ingest.base import register_source
from agrostress.ingest.files_source import FilesSource


@register_source("slowfiles")
class SlowFilesSource(FilesSource):
    """``files`` with a delay per fetch (seconds in ``DELAY``)."""

    DELAY = 1.5

    def fetch(self, aoi: Any, start: Any, end: Any, *, progress: Any = None) -> xr.Dataset:
        time.sleep(self.DELAY)
        return super().fetch(aoi, start, end, progress=progress)
