"""The core path the jobs call, and how its failures are told to the user."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ERROR_STATUS: dict[str, int] = {
    "invalid_geometry": 422,
    "source_config": 422,
    "no_data": 422,
    "no_coverage": 422,
    "analysis_rejected": 422,
    "source_credentials": 503,
    "upstream_error": 502,
    "invalid_cube": 502,
    "model_unavailable": 503,
    "core_unavailable": 503,
    "interrupted": 503,
    "out_of_memory": 507,
    "analysis_failed": 500,
}
"""HTTP status of a failed analysis's error code (answer of a synchronous request)."""


@dataclass(frozen=True)
class Core:
    """The core path the jobs call (swappable for tests and benchmarks of the service)."""

    fetch_cube: Callable[..., Any]
    analyse: Callable[..., Any]
    write_outputs: Callable[..., Any]
    #: the wheat reference of a cube (for a buffer around too few fields); None: not offered
    request_reference: Callable[..., Any] | None = None
    #: draw the PNGs after the answer (``write_outputs(renders=False)`` first); with
    #: ``pending_renders`` (the PNG names to expect). None: ``write_outputs`` draws them all
    render_outputs: Callable[..., Any] | None = None
    pending_renders: Callable[..., Any] | None = None

    @property
    def renders_later(self) -> bool:
        return self.render_outputs is not None and self.pending_renders is not None


def default_core() -> tuple[Core | None, str | None]:
    """The library's core path, or None and why not."""
    try:
        from agrostress import analysis
        from agrostress.ingest.fetch import fetch_cube
    except ImportError as e:  # pragma: no cover - broken install
        return None, f"cannot import the core path: {e}"
    return Core(fetch_cube, analysis.analyse, analysis.write_outputs,
                analysis.request_reference, analysis.render_outputs,
                analysis.pending_renders), None


_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>)]*[^\s'\"<>).,;:]", re.IGNORECASE)
_PATH = re.compile(r"(?<![\w.:/-])(?:~|\.{1,2})?/(?:[\w.@+-]+/)*[\w.@+-]+")


def redact(message: str) -> str:
    """A failure message fit for a client: upstream URLs and server paths replaced (the
    server log keeps the whole message)."""
    return _PATH.sub("<server path>", _URL.sub("<upstream URL>", message))


def classify(exc: BaseException) -> tuple[str, str]:
    """(error code, user message) of a job failure."""
    from agrostress.cube import CubeError
    from agrostress.ingest import (
        AOIError,
        CoverageError,
        CredentialsError,
        EmptyCatalogueError,
        SourceConfigError,
        UpstreamError,
    )

    table: list[tuple[type[BaseException], str]] = [
        (AOIError, "invalid_geometry"),
        (SourceConfigError, "source_config"),
        (CredentialsError, "source_credentials"),
        (EmptyCatalogueError, "no_data"),
        (CoverageError, "no_coverage"),
        (UpstreamError, "upstream_error"),
        (CubeError, "invalid_cube"),
        (MemoryError, "out_of_memory"),
    ]
    for cls, code in table:
        if isinstance(exc, cls):
            return code, redact(str(exc)) or cls.__name__
    if isinstance(exc, ValueError):
        return "analysis_rejected", redact(str(exc)) or "the data cannot be analysed"
    return "analysis_failed", "the analysis failed unexpectedly (logged on the server)"
