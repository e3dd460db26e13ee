"""The artefacts an analysis may serve (the allow-list) and the analysis id pattern.

Artefacts live in ``<data_dir>/analyses/<id>/`` where ``id`` is a server-made uuid4 hex.
"""

from __future__ import annotations

import re
from pathlib import Path

from agrostress.outputs import ARTEFACTS as OUTPUT_FILES

MEDIA_TYPES: dict[str, str] = {
    ".tif": "image/tiff", ".png": "image/png", ".json": "application/json",
    ".geojson": "application/geo+json", ".qml": "application/xml", ".xml": "application/xml",
    ".npz": "application/octet-stream",
}

ZONES_FILE = "zones.geojson"
"""The API's own artefact: the class zones of the stress map (GeoJSON, EPSG:4326)."""

ARTEFACTS: dict[str, str] = {
    name: MEDIA_TYPES[Path(name).suffix] for name in (*OUTPUT_FILES.values(), ZONES_FILE)
}
"""The artefacts that can be served, with their media types: every file the core path
writes (:data:`agrostress.outputs.ARTEFACTS`) and the API's class zones."""

ID_RE = re.compile(r"^[0-9a-f]{32}$")
"""An analysis id: 32 lower-case hex digits (uuid4 hex, made by the server)."""
