"""The service's shared state (settings, database, models, job runner) and its dependencies."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader

from agrostress.settings import Settings
from api.clients import RateLimiter, identify
from api.db import Store, default_url
from api.errors import ApiError
from api.jobs import JobRunner
from api.jobs.core import Core, default_core
from api.registry import ModelRegistry
from api.settings import ApiSettings

LOGGER = logging.getLogger("agrostress.api")

API_KEY_HEADER = "X-API-Key"
api_key_scheme = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="required when the server sets AGROSTRESS_API_KEY or AGROSTRESS_API_KEYS",
)


@dataclass
class Service:
    """Everything the routes share; built once at start-up by the lifespan."""

    settings: Settings
    api: ApiSettings
    store: Store
    models: ModelRegistry
    runner: JobRunner
    limiter: RateLimiter
    core_error: str | None = None
    started: float = field(default_factory=time.time)

    @classmethod
    def start(
        cls,
        settings: Settings,
        api: ApiSettings,
        *,
        core: Core | None = None,
        models: ModelRegistry | None = None,
    ) -> Service:
        data_dir = Path(settings.data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        core_error = None
        if core is None:
            core, core_error = default_core()
            if core_error:
                LOGGER.error("analyses are unavailable: %s", core_error)
        if models is None:
            models = ModelRegistry.load(settings.model_dir, api.model_dirs)
        if api.torch_threads:
            import torch

            torch.set_num_threads(api.torch_threads)
        store = Store(api.database_url or default_url(data_dir))
        runner = JobRunner(settings, api, store, models, core, data_dir)
        runner.start()
        limiter = RateLimiter(api.client_rate_per_min, api.client_burst)
        return cls(settings, api, store, models, runner, limiter, core_error)

    def close(self) -> None:
        self.runner.shutdown()
        self.store.close()


def get_service(request: Request) -> Service:
    return request.app.state.service


def get_library_settings(svc: Service = Depends(get_service)) -> Settings:
    """The library's settings (data, models, sources, decision)."""
    return svc.settings


def get_api_settings(svc: Service = Depends(get_service)) -> ApiSettings:
    """The service's own settings (limits, jobs, auth)."""
    return svc.api


def require_api_key(
    request: Request,
    api: ApiSettings = Depends(get_api_settings),
    key: str | None = Depends(api_key_scheme),
) -> str:
    """The calling client (see :mod:`api.clients`); 401 unless its key is accepted."""
    client = request.scope.get("state", {}).get(CLIENT_STATE)  # set by the key middleware
    if client is None:
        client = identify(api, key)
    if client is None:
        raise unauthorized()
    return client


CLIENT_STATE = "agrostress_client"
"""Where the key middleware leaves the request's client (``request.state``)."""


def unauthorized() -> ApiError:
    return ApiError(
        401,
        "unauthorized",
        f"missing or wrong API key (send it in the {API_KEY_HEADER} header)",
        headers={"WWW-Authenticate": API_KEY_HEADER},
    )
