"""Fixtures for the REST service: a tiny checkpoint, settings, and live uvicorn servers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from api_fakes import FakeCore
from api_helpers import LiveServer, build_model

from agrostress.settings import Settings
from api.app import create_app


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model(tmp_path_factory.mktemp("model") / "ffdnn-test")


@pytest.fixture
def make_settings(tmp_path: Path, model_dir: Path) -> Callable[..., Settings]:
    """Settings for a test server: everything under tmp_path, no .env, quick heartbeats."""

    def make(**over: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "cache_dir": tmp_path / "cache",
            "model_dir": model_dir,
            "api_job_heartbeat_s": 0.2,
            "api_sources": ["simulated", "stac", "files", "sentinelhub"],
        }
        values.update(over)
        return Settings(_env_file=None, **values)

    return make


@pytest.fixture
def serve() -> Iterator[Callable[..., LiveServer]]:
    """Start servers (``serve(settings, core=..., port=...)``); all are stopped at teardown."""
    started: list[LiveServer] = []

    def start(settings: Settings, *, core: Any = "fake", port: int | None = None,
              **kw: Any) -> LiveServer:
        if core == "fake":
            core = FakeCore().core()
        srv = LiveServer(create_app(settings, core=core, **kw), port=port).start()
        started.append(srv)
        return srv

    yield start
    for srv in started:
        if srv.thread.is_alive():
            srv.stop()


@pytest.fixture
def server(serve: Callable[..., LiveServer], make_settings: Callable[..., Settings]) -> LiveServer:
    """A server with the fake core, default settings, no API key."""
    return serve(make_settings())
