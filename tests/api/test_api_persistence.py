"""Results survive a restart; a job interrupted by a restart is resumed or marked failed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from agrostress.settings import Settings
from api.settings import ApiSettings
from tests.api.api_fakes import FakeCore, field_polygon
from tests.api.api_helpers import LiveServer, free_port, wait_done

pytestmark = pytest.mark.network

BODY = {"fields": field_polygon(5.0, 51.0, 500), "start": "2024-03-01", "end": "2024-07-20",
        "source": "simulated"}
ASYNC = {"Prefer": "respond-async"}


def test_results_survive_restart(serve: Callable[..., LiveServer],
                                 make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    first = serve(settings)
    with first.client() as c:
        a = c.post("/v1/analyses", json=BODY).json()
        png = c.get(a["links"]["stress_map.png"]).content
    first.stop()
    assert (Path(settings.data_dir) / "agrostress.db").is_file()
    second = serve(settings)
    with second.client() as c:
        again = c.get(a["links"]["self"]).json()
        assert again == a
        assert c.get(a["links"]["stress_map.png"]).content == png
        assert c.get("/v1/analyses").json()["total"] == 1


def test_database_url_setting(serve: Callable[..., LiveServer],
                              make_api: Callable[..., ApiSettings], tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'elsewhere' / 'api.db'}"
    srv = serve(api=make_api(database_url=url))
    with srv.client() as c:
        assert c.post("/v1/analyses", json=BODY).status_code == 201
    assert (tmp_path / "elsewhere" / "api.db").is_file()
    assert not (tmp_path / "data" / "agrostress.db").exists()


def test_clean_shutdown_hands_running_job_to_next_process(
    serve: Callable[..., LiveServer], make_api: Callable[..., ApiSettings]
) -> None:
    api = make_api(job_heartbeat_s=30)  # takeover must not need a stale heartbeat
    first = serve(api=api, core=FakeCore(delay_s=20).core())
    with first.client() as c:
        a = c.post("/v1/analyses", json=BODY, headers=ASYNC).json()
        queued = c.post("/v1/analyses", json=BODY, headers=ASYNC).json()
        while c.get(a["links"]["self"]).json()["status"] != "running":
            time.sleep(0.05)
    t0 = time.monotonic()
    first.stop()
    assert time.monotonic() - t0 < 10  # the running job was interrupted, not awaited
    second = serve(api=api)
    with second.client() as c:
        for x in (a, queued):
            done = wait_done(c, x["id"])
            assert done["status"] == "done", done
        assert wait_done(c, a["id"])["attempts"] == 2  # ran once before the restart
        assert len(done["result"]["fields"]) == 1


def _spawn(settings: dict[str, Any], api: dict[str, Any], port: int,
           delay_s: float) -> subprocess.Popen[bytes]:
    args = json.dumps({"port": port, "delay_s": delay_s, "settings": settings, "api": api})
    proc = subprocess.Popen([sys.executable, str(Path(__file__).parent / "serve_fake.py"), args])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the server process did not start")


@pytest.mark.slow
@pytest.mark.parametrize("resume", [True, False])
def test_crash_mid_job_is_resumed_or_failed(
    serve: Callable[..., LiveServer], make_api: Callable[..., ApiSettings], tmp_path: Path,
    tiny_model_dir: Path, resume: bool,
) -> None:
    raw = {"data_dir": str(tmp_path / "data"), "cache_dir": str(tmp_path / "cache"),
           "model_dir": str(tiny_model_dir)}
    port = free_port()
    proc = _spawn(raw, {"job_heartbeat_s": 0.3}, port, delay_s=60)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
            a = c.post("/v1/analyses", json=BODY, headers=ASYNC).json()
            while c.get(f"/v1/analyses/{a['id']}").json()["status"] != "running":
                time.sleep(0.05)
    finally:
        proc.kill()  # SIGKILL: no shutdown code runs
        proc.wait(timeout=30)
    srv = serve(api=make_api(job_heartbeat_s=0.3, resume_jobs=resume))
    with srv.client() as c:
        done = wait_done(c, a["id"], timeout=30)
    if resume:
        assert done["status"] == "done" and done["attempts"] == 2
    else:
        assert done["status"] == "failed"
        assert done["error"]["code"] == "interrupted"
        assert "running" in done["error"]["message"]


def test_job_exceeding_attempts_fails(serve: Callable[..., LiveServer],
                                      make_api: Callable[..., ApiSettings]) -> None:
    """A job that keeps dying with its process is not retried forever."""
    api = make_api(job_max_attempts=1, job_heartbeat_s=30)
    first = serve(api=api, core=FakeCore(delay_s=20).core())
    with first.client() as c:
        a = c.post("/v1/analyses", json=BODY, headers=ASYNC).json()
        while c.get(a["links"]["self"]).json()["status"] != "running":
            time.sleep(0.05)
    first.stop()
    second = serve(api=api)
    with second.client() as c:
        done = wait_done(c, a["id"])
    assert done["status"] == "failed" and done["error"]["code"] == "interrupted"


@pytest.mark.skipif(
    not os.environ.get("AGROSTRESS_TEST_DATABASE_URL"),
    reason="set AGROSTRESS_TEST_DATABASE_URL=postgresql+psycopg://... to test PostgreSQL",
)
def test_postgresql_restart_and_takeover(serve: Callable[..., LiveServer],
                                         make_api: Callable[..., ApiSettings]) -> None:
    api = make_api(database_url=os.environ["AGROSTRESS_TEST_DATABASE_URL"], job_heartbeat_s=30)
    first = serve(api=api, core=FakeCore(delay_s=20).core())
    with first.client() as c:
        running = c.post("/v1/analyses", json=BODY, headers=ASYNC).json()
        while c.get(running["links"]["self"]).json()["status"] != "running":
            time.sleep(0.05)
    first.stop()
    second = serve(api=api)
    with second.client() as c:
        done = c.post("/v1/analyses", json=BODY).json()
        assert done["status"] == "done"
        resumed = wait_done(c, running["id"])
        assert resumed["status"] == "done" and resumed["attempts"] == 2
    second.stop()
    third = serve(api=api)
    with third.client() as c:
        assert c.get(done["links"]["self"]).json() == done
        assert c.get(done["links"]["stress_map.tif"]).status_code == 200
