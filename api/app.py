"""The FastAPI application factory.

    uvicorn --factory api.app:create_app          # or: agrostress serve

``create_app(settings, api)`` wires routers, error handlers, limits, CORS and the static viewer;
its lifespan opens the database, loads the models once, and starts the job runner (which
takes over jobs a previous process left unfinished).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import agrostress
from agrostress.settings import Settings, get_settings
from api.clients import identify
from api.errors import ApiError, error_body, install_error_handlers
from api.jobs.core import Core
from api.registry import ModelRegistry
from api.routers import analyses, health
from api.routers import models as models_router
from api.service import API_KEY_HEADER, CLIENT_STATE, Service, unauthorized
from api.settings import ApiSettings, get_api_settings

LOGGER = logging.getLogger("agrostress.api")
STATIC_DIR = Path(__file__).parent / "static"

DESCRIPTION = """
Is it **wheat yellow rust** or **nitrogen deficiency**, where, and why? Send field polygons
(GeoJSON, EPSG:4326), a period and a Sentinel-2 L2A source; get per-field calls, class
fractions and confidence, a stress map (GeoTIFF, PNG, GeoJSON zones) and, with `explain`,
attributions.

Errors are always `{"error": {"code", "message", "details"?}}` with a stable `code`.
When the server has API keys, send yours in the `X-API-Key` header: each key is a client that
sees only its own analyses, with its own rate limit and share of the queue (429 with
`Retry-After` beyond them).
"""

PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "Cache-Control": "no-cache",
}


class BodyLimitMiddleware:
    """413 ``body_too_large`` for bodies over ``max_bytes`` (declared or streamed)."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    def _error(self) -> ApiError:
        return ApiError(
            413,
            "body_too_large",
            f"request body exceeds {self.max_bytes} bytes (AGROSTRESS_API_MAX_BODY_BYTES)",
            details={"limit": self.max_bytes, "setting": "AGROSTRESS_API_MAX_BODY_BYTES"},
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                too_big = False
            if too_big:
                await self._send_413(send)
                return
        seen, exceeded = 0, False

        async def limited() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    exceeded = True
                    raise self._error()  # an HTTPException: FastAPI answers it as JSON
            return message

        async def closing(message: Message) -> None:
            # the rest of the body is never read: the answer closes the connection, so the
            # server stops receiving and the client cannot send its next request into it
            if exceeded and message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, limited, closing)

    async def _send_413(self, send: Send) -> None:
        await _send_error(send, self._error(), close=True)


class ApiKeyMiddleware:
    """The API key of ``/v1/…`` checked before anything reads the body: a request without it
    gets 401, never a 400/422 about a body it was not entitled to send (CORS preflights
    pass; the routers' own dependency checks again)."""

    def __init__(self, app: ASGIApp, api: ApiSettings):
        self.app, self.api = app, api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] == "http" and scope["path"].startswith("/v1/")
                and scope["method"] != "OPTIONS"):
            headers = dict(scope.get("headers") or [])
            raw = headers.get(API_KEY_HEADER.lower().encode())
            client = identify(self.api, None if raw is None else raw.decode("latin-1"))
            if client is None:
                await _send_error(send, unauthorized())
                return
            scope.setdefault("state", {})[CLIENT_STATE] = client
        await self.app(scope, receive, send)


async def _send_error(send: Send, e: ApiError, close: bool = False) -> None:
    """An error answered by a middleware: the service's JSON body and its headers."""
    import json

    body = json.dumps(error_body(e.code, e.message, e.details)).encode()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in (e.headers or {}).items()]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": e.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class SecurityHeadersMiddleware:
    """``nosniff`` and ``no-referrer`` on every response."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                for k, v in ((b"x-content-type-options", b"nosniff"),
                             (b"referrer-policy", b"no-referrer")):
                    if k not in names:
                        headers.append((k, v))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(
    settings: Settings | None = None,
    api: ApiSettings | None = None,
    *,
    core: Core | None = None,
    models: ModelRegistry | None = None,
) -> FastAPI:
    """The AgroStress REST service.

    ``settings``: the library's (default: from ``AGROSTRESS_*``); ``api``: the service's own
    (default: from ``AGROSTRESS_API_*``). ``core`` replaces the library's core path (tests, service benchmarks); ``models``
    replaces loading the checkpoints named by the settings.
    """
    settings = settings or get_settings()
    api = api or get_api_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = await run_in_threadpool(Service.start, settings, api, core=core, models=models)
        app.state.service = service
        try:
            yield
        finally:
            await run_in_threadpool(service.close)

    app = FastAPI(
        title="AgroStress API",
        version=getattr(agrostress, "__version__", "0"),
        description=DESCRIPTION,
        lifespan=lifespan,
        # no trailing-slash redirects: their Location would be built from the Host header
        redirect_slashes=False,
        openapi_tags=[
            {"name": "analyses", "description": "submit and follow analyses; get artefacts"},
            {"name": "models", "description": "served models and data sources"},
            {"name": "health", "description": "probes"},
        ],
    )
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(models_router.router)
    app.include_router(analyses.router)
    _mount_viewer(app)
    # outermost last: security headers on every answer (413 and 401 included), then the body
    # limit, then CORS, then the key — checked before FastAPI reads the body
    app.add_middleware(ApiKeyMiddleware, api=api)
    if api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(api.cors_origins),
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Content-Type", "X-API-Key", "Prefer"],
            expose_headers=["Location", "Retry-After"],
            max_age=600,
        )
    app.add_middleware(BodyLimitMiddleware, max_bytes=api.max_body_bytes)
    app.add_middleware(SecurityHeadersMiddleware)
    return app


def _mount_viewer(app: FastAPI) -> None:
    if not (STATIC_DIR / "index.html").is_file():  # pragma: no cover - broken install
        LOGGER.warning("viewer files missing in %s", STATIC_DIR)
        return

    @app.get("/", include_in_schema=False)
    def index() -> Any:
        return FileResponse(STATIC_DIR / "index.html", headers=PAGE_HEADERS)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
