"""``agrostress serve``: run the REST service (FastAPI app ``api.app:create_app`` on uvicorn)."""

from __future__ import annotations

import copy
from typing import Any

import typer


def log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging config plus the ``agrostress`` loggers on the same handler."""
    from uvicorn.config import LOGGING_CONFIG

    cfg = copy.deepcopy(LOGGING_CONFIG)
    cfg["loggers"]["agrostress"] = {
        "handlers": ["default"],
        "level": level.upper(),
        "propagate": False,
    }
    return cfg


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve_cmd(
        host: str = typer.Option("127.0.0.1", "--host", help="interface to listen on"),
        port: int = typer.Option(8000, "--port", min=1, max=65535, help="TCP port"),
        workers: int = typer.Option(
            1, "--workers", min=1, max=64, help="server processes (each loads the models)"
        ),
        log_level: str = typer.Option(
            "info", "--log-level", help="critical, error, warning, info or debug"
        ),
        proxy_headers: bool = typer.Option(
            False, "--proxy-headers", help="trust X-Forwarded-* from a reverse proxy"
        ),
    ) -> None:
        """Serve the REST API and the map viewer (settings: AGROSTRESS_* variables)."""
        import os

        import uvicorn

        from api.settings import ApiSettings

        level = log_level.lower()
        if level not in ("critical", "error", "warning", "info", "debug"):
            raise typer.BadParameter(f"unknown log level {log_level!r}", param_hint="--log-level")
        threads = ApiSettings.env_name("torch_threads")
        if not os.environ.get(threads):  # share the cores out between the analyses
            os.environ[threads] = str(ApiSettings().serving_torch_threads(workers))
        uvicorn.run(
            "api.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=level,
            log_config=log_config(level),
            proxy_headers=proxy_headers,
            timeout_graceful_shutdown=30,
        )
