"""Fixtures for the REST service: settings and live uvicorn servers (the model: the suite's
``tiny_model_dir``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agrostress.settings import Settings
from api.app import create_app
from api.settings import ApiSettings
from tests.api.api_fakes import FakeCore
from tests.api.api_helpers import LiveServer


@pytest.fixture
def make_settings(tmp_path: Path, tiny_model_dir: Path) -> Callable[..., Settings]:
    """Library settings for a test server: everything under tmp_path, no .env, no not-wheat
    detector unless asked for."""

    def make(**over: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "cache_dir": tmp_path / "cache",
            "model_dir": tiny_model_dir,
            "not_wheat_model_dir": None,  # the detector has its own test
        }
        values.update(over)
        return Settings(_env_file=None, **values)

    return make


@pytest.fixture
def make_api() -> Callable[..., ApiSettings]:
    """Service settings for a test server: no .env, quick heartbeats, every source."""

    def make(**over: Any) -> ApiSettings:
        values: dict[str, Any] = {
            "job_heartbeat_s": 0.2,
            "sources": ["simulated", "stac", "files", "sentinelhub"],
        }
        values.update(over)
        return ApiSettings(_env_file=None, **values)

    return make


@pytest.fixture
def serve(
    make_settings: Callable[..., Settings], make_api: Callable[..., ApiSettings]
) -> Iterator[Callable[..., LiveServer]]:
    """Start servers (``serve(settings, api, core=..., port=...)``, defaults from
    ``make_settings()`` / ``make_api()``); all are stopped at teardown."""
    started: list[LiveServer] = []

    def start(settings: Settings | None = None, api: ApiSettings | None = None, *,
              core: Any = "fake", port: int | None = None, **kw: Any) -> LiveServer:
        if core == "fake":
            core = FakeCore().core()
        app = create_app(settings or make_settings(), api or make_api(), core=core, **kw)
        srv = LiveServer(app, port=port).start()
        started.append(srv)
        return srv

    yield start
    for srv in started:
        if srv.thread.is_alive():
            srv.stop()


@pytest.fixture
def server(serve: Callable[..., LiveServer]) -> LiveServer:
    """A server with the fake core, default settings, no API key."""
    return serve()
