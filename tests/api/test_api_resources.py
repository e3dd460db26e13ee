"""Resources the service keeps bounded: the fair job queue, memory per job, the job workers
memory allows, retention of finished analyses, and the database's added columns."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agrostress.settings import Settings
from api.db import Store, default_url, utcnow
from api.errors import ApiError
from api.jobs.fair_queue import FairQueue
from api.jobs.memory import estimate_job_mb, job_workers
from api.schemas import AnalysisRequest
from api.settings import ApiSettings
from api.validation import prepare
from tests.api.api_fakes import FakeCore, LaterRenders, field_polygon
from tests.api.api_helpers import LiveServer


def test_fair_queue_serves_the_client_with_fewest_running() -> None:
    q: FairQueue[str] = FairQueue(max_running=2)
    for i in range(4):
        q.put("greedy", f"g{i}")
    q.put("polite", "p0")
    assert q.take() == ("greedy", "g0")
    assert q.take() == ("polite", "p0")  # fewer running than greedy: ahead of g1
    assert q.take() == ("greedy", "g1")
    assert q.running("greedy") == 2
    got: list[tuple[str, str] | None] = []
    t = threading.Thread(target=lambda: got.append(q.take()))
    t.start()
    time.sleep(0.1)
    assert not got  # greedy is at its running cap: g2 waits although it is next
    q.done("greedy")
    t.join(2)
    assert got == [("greedy", "g2")]
    assert q.close() == ["g3"]
    assert q.take() is None
    with pytest.raises(RuntimeError):
        q.put("x", "late")


def test_memory_estimate_and_workers() -> None:
    small = estimate_job_mb(70 * 70, 150)
    tile = estimate_job_mb(256 * 256, 150)
    big = estimate_job_mb(1000 * 1000, 150)
    assert 250 < small < 400 < tile < 1_500 < big < 3_000  # the tile's work is bounded
    assert estimate_job_mb(100_000, 150, explain=True) > estimate_job_mb(100_000, 150) + 1_000
    assert estimate_job_mb(100_000, 300) > estimate_job_mb(100_000, 150)
    api = ApiSettings(_env_file=None, job_workers=4, max_job_memory_mb=2_000)
    assert job_workers(api, available=100_000) == 4
    assert job_workers(api, available=5_000) == 2  # 0.9 × 5 GB holds two 2 GB jobs
    assert job_workers(api, available=500) == 1  # never none


def test_job_too_large_for_memory_is_refused(tiny_model_dir: Path) -> None:
    s = Settings(_env_file=None, model_dir=tiny_model_dir)
    api = ApiSettings(_env_file=None, sources=["simulated"], max_job_memory_mb=1_500)
    req = {"fields": field_polygon(5.0, 51.0, 2_000), "start": "2024-03-01",
           "end": "2024-07-20", "source": "simulated", "explain": True}
    with pytest.raises(ApiError) as e:
        prepare(AnalysisRequest.model_validate(req), s, api, "m")
    assert e.value.status_code == 413 and e.value.code == "job_too_large"
    assert "AGROSTRESS_API_MAX_JOB_MEMORY_MB" in e.value.message
    # the same fields without attributions fit
    ok = prepare(AnalysisRequest.model_validate({**req, "explain": False}), s, api, "m")
    assert 0 < ok.stored["memory_mb"] <= 1_500


def test_retention_deletes_old_and_oversize_finished_analyses_only(
        serve: Callable[..., LiveServer], make_api: Callable[..., ApiSettings]) -> None:
    srv = serve(api=make_api(retention_days=7, artefacts_max_gb=0),
                core=FakeCore(delay_s=0.0).core())
    with srv.client() as c:
        ids = [c.post("/v1/analyses", json={"fields": field_polygon(5.0 + 0.01 * i, 51.0, 300),
                                            "start": "2024-03-01", "end": "2024-07-20",
                                            "source": "simulated"}).json()["id"]
               for i in range(3)]
        runner = srv.service.runner
        store = srv.service.store
        old = utcnow() - dt.timedelta(days=8)
        store.update(ids[0], finished_at=old)
        store.update(ids[1], finished_at=old, status="running")  # active: never deleted
        assert runner.clean_analyses() == [ids[0]]
        assert c.get(f"/v1/analyses/{ids[0]}").status_code == 404
        assert not runner.artefact_dir(ids[0]).exists()
        assert runner.artefact_dir(ids[1]).exists() and runner.artefact_dir(ids[2]).exists()
        # over the size limit: the oldest finished go first, until the rest fits
        store.update(ids[1], status="done")
        store.update(ids[1], finished_at=utcnow() - dt.timedelta(days=2))
        size = sum(p.stat().st_size for p in runner.artefact_dir(ids[2]).rglob("*"))
        runner.api = runner.api.model_copy(update={"artefacts_max_gb": 1.5 * size / 1e9,
                                                   "retention_days": 0})
        assert runner.clean_analyses() == [ids[1]]
        assert c.get(f"/v1/analyses/{ids[2]}").status_code == 200


def test_old_database_gets_the_client_column(tmp_path: Path) -> None:
    db = tmp_path / "agrostress.db"
    with sqlite3.connect(db) as conn:  # the table as it was before clients
        conn.execute("CREATE TABLE analyses (id VARCHAR(32) PRIMARY KEY, status VARCHAR(16), "
                     "progress FLOAT, stage VARCHAR(32), request JSON, result JSON, "
                     "error_code VARCHAR(64), error_message TEXT, model_id VARCHAR(128), "
                     "model_version VARCHAR(64), model_name VARCHAR(128), attempts INTEGER, "
                     "owner VARCHAR(32), heartbeat_at DATETIME, created_at DATETIME, "
                     "started_at DATETIME, finished_at DATETIME, updated_at DATETIME)")
        conn.execute("INSERT INTO analyses (id, status, request, model_id, created_at, "
                     "updated_at) VALUES ('a' , 'done', '{}', 'm', '2024-01-01', '2024-01-01')")
    store = Store(default_url(tmp_path))
    assert store.get("a")["client"] is None
    row = store.create({}, {"id": "m", "name": "m", "version": "1"}, "owner", client="alice")
    assert store.get(row["id"], "alice") is not None and store.get(row["id"], "bob") is None
    assert store.list_rows(client="alice")[1] == 1 and store.list_rows()[1] == 2
    store.close()


def test_worker_count_follows_memory_at_start(serve: Callable[..., LiveServer],
                                              make_api: Callable[..., ApiSettings]) -> None:
    import psutil

    avail_mb = psutil.virtual_memory().available / 1e6
    srv = serve(api=make_api(job_workers=8, max_job_memory_mb=max(100.0, avail_mb / 2.5)))
    assert srv.service.runner.workers == 2
    with srv.client() as c:
        r = c.post("/v1/analyses", json={"fields": field_polygon(5.0, 51.0, 300),
                                         "start": "2024-03-01", "end": "2024-07-20",
                                         "source": "simulated"})
        assert r.status_code == 201, r.text



def _post_sync(c: Any) -> Any:
    return c.post("/v1/analyses", json={"fields": field_polygon(5.0, 51.0, 300),
                                        "start": "2024-03-01", "end": "2024-07-20",
                                        "source": "simulated"})


def test_pngs_are_drawn_after_the_answer(serve: Callable[..., LiveServer]) -> None:
    """The answer does not wait for the PNGs; asking for one waits until it is drawn."""
    srv = serve(core=LaterRenders(delay_s=1.5).core())
    with srv.client() as c:
        t0 = time.monotonic()
        r = _post_sync(c)
        answered = time.monotonic() - t0
        assert r.status_code == 201, r.text
        res = r.json()["result"]
        assert answered < 1.5, answered  # before the drawing is done
        assert res["rendering"] == ["stress_map.png", "zones.geojson"]  # drawn after the answer
        assert "stress_map.png" in res["artefacts"] and "zones.geojson" in res["artefacts"]
        assert "stress_map.tif" in res["artefacts"]
        png = c.get(r.json()["links"]["stress_map.png"])  # waits for the drawing
        assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
        after = c.get(r.json()["links"]["self"]).json()["result"]
        assert after["rendering"] == [] and "stress_map.png" in after["artefacts"]
        zones = c.get(r.json()["links"]["zones.geojson"])
        assert zones.status_code == 200 and zones.json()["type"] == "FeatureCollection"


def test_failed_drawing_leaves_the_answer_and_drops_the_png(
        serve: Callable[..., LiveServer]) -> None:
    srv = serve(core=LaterRenders(delay_s=0.2, fail=True).core())
    with srv.client() as c:
        r = _post_sync(c)
        assert r.status_code == 201, r.text
        aid = r.json()["id"]
        png = c.get(f"/v1/analyses/{aid}/stress_map.png")
        assert png.status_code == 404 and png.json()["error"]["code"] == "artefact_not_found"
        after = c.get(f"/v1/analyses/{aid}").json()["result"]
        assert after["rendering"] == [] and "stress_map.png" not in after["artefacts"]
        assert c.get(f"/v1/analyses/{aid}/stress_map.tif").status_code == 200


def test_pngs_drawn_when_idle_without_being_asked(serve: Callable[..., LiveServer]) -> None:
    srv = serve(core=LaterRenders(delay_s=0.1).core())
    with srv.client() as c:
        r = _post_sync(c)
        aid = r.json()["id"]
        deadline = time.monotonic() + 10
        while c.get(f"/v1/analyses/{aid}").json()["result"]["rendering"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert (srv.service.runner.artefact_dir(aid) / "stress_map.png").is_file()


def test_renders_keep_a_bounded_number_of_results(tmp_path: Path) -> None:
    """Beyond ``keep`` results the oldest are dropped: their PNGs leave the artefacts."""
    from api.jobs.renders import Renders

    store = Store(default_url(tmp_path))
    ids = []
    for _ in range(2):
        row = store.create({}, {"id": "m", "name": "m", "version": "1"}, "o")
        store.update(row["id"], status="done", result={
            "artefacts": ["stress_map.png", "stress_map.tif"], "rendering": ["stress_map.png"]})
        ids.append(row["id"])
    drawn: list[str] = []

    def drawing(res: str) -> Callable[[Path], list[str]]:
        return lambda folder: drawn.append(res) or ["stress_map.png"]  # type: ignore[func-returns-value]

    renders = Renders(store, lambda i: tmp_path / i, idle=lambda: False, keep=1)
    renders.add(ids[0], drawing("r0"), ["stress_map.png"])
    renders.add(ids[1], drawing("r1"), ["stress_map.png"])  # drops r0
    assert store.get(ids[0])["result"] == {"artefacts": ["stress_map.tif"], "rendering": []}
    renders.draw(ids[0])  # nothing left to draw for it
    renders.draw(ids[1])
    assert drawn == ["r1"]
    assert store.get(ids[1])["result"]["artefacts"] == ["stress_map.png", "stress_map.tif"]
    renders.close()
    store.close()
