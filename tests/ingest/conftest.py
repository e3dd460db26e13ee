"""Fixtures for ingestion tests: synthetic cubes, AOIs, settings, the stub Sentinel Hub."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
import xarray as xr

from agrostress.ingest import AOI, load_aoi
from tests.ingest.ingest_synth import aoi_geojson, make_cube
from tests.ingest.stub_sentinelhub import StubSentinelHub

_LOCAL = ("127.0.0.1", "::1", "localhost")


@pytest.fixture(autouse=True)
def _only_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse Python-level connections to anything but 127.0.0.1 (tests stay offline)."""
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def check(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in _LOCAL:
            raise OSError(f"test tried to reach {address!r}: only 127.0.0.1 is allowed")

    def connect(sock: socket.socket, address: Any) -> None:
        check(sock, address)
        return real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        check(sock, address)
        return real_connect_ex(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)


@pytest.fixture(scope="session")
def cube() -> xr.Dataset:
    return make_cube()


@pytest.fixture(scope="session")
def aoi_dict(cube: xr.Dataset) -> dict[str, Any]:
    return aoi_geojson(cube)


@pytest.fixture(scope="session")
def aoi(aoi_dict: dict[str, Any]) -> AOI:
    return load_aoi(aoi_dict)


@pytest.fixture
def insecure_oauth(monkeypatch: pytest.MonkeyPatch) -> None:
    """oauthlib refuses http:// token URLs; the stub is plain HTTP on 127.0.0.1."""
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")


@pytest.fixture
def stub(cube: xr.Dataset, insecure_oauth: None) -> Iterator[StubSentinelHub]:
    server = StubSentinelHub(cube).start()
    try:
        yield server
    finally:
        server.stop()
