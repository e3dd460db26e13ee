"""Several API keys, over HTTP: each client sees only its own analyses, has its own rate limit
and queue share (429 with Retry-After), and a greedy client cannot starve a polite one."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from api.settings import ApiSettings
from tests.api.api_fakes import FakeCore, field_polygon
from tests.api.api_helpers import LiveServer

pytestmark = pytest.mark.network

KEYS = {"alice": "alice-key-0123456789", "bob": "bob-key-0123456789"}


def body(lon: float = 5.0, **over: Any) -> dict[str, Any]:
    b = {"fields": field_polygon(lon, 51.0, 300), "start": "2024-03-01", "end": "2024-07-20",
         "source": "simulated"}
    b.update(over)
    return b


def as_(client: str) -> dict[str, str]:
    return {"X-API-Key": KEYS[client]}


def test_keys_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGROSTRESS_API_KEYS", "alice=k-a, bob=k-b")
    monkeypatch.setenv("AGROSTRESS_API_KEY", "k-default")
    s = ApiSettings(_env_file=None)
    assert s.client_keys() == {"alice": "k-a", "bob": "k-b", "default": "k-default"}
    assert "k-a" not in repr(s)
    assert ApiSettings(_env_file=None, keys='{"c": "k"}').client_keys()["c"] == "k"
    for bad in ("alice", "a=k,b=k", "=k", "bad name=k"):
        with pytest.raises(ValueError):
            ApiSettings(_env_file=None, keys=bad)


def test_each_client_sees_only_its_own(serve: Callable[..., LiveServer],
                                       make_api: Callable[..., ApiSettings]) -> None:
    srv = serve(api=make_api(keys=KEYS))
    with srv.client() as c:
        a = c.post("/v1/analyses", json=body(5.0), headers=as_("alice"))
        b = c.post("/v1/analyses", json=body(5.02), headers=as_("bob"))
        assert a.status_code == b.status_code == 201, (a.text, b.text)
        aid, bid = a.json()["id"], b.json()["id"]
        listed = c.get("/v1/analyses", headers=as_("alice")).json()
        assert [x["id"] for x in listed["items"]] == [aid] and listed["total"] == 1
        assert c.get(f"/v1/analyses/{aid}", headers=as_("alice")).status_code == 200
        # bob cannot read, list or download alice's analysis: 404, as if it did not exist
        r = c.get(f"/v1/analyses/{aid}", headers=as_("bob"))
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        r = c.get(f"/v1/analyses/{aid}/stress_map.png", headers=as_("bob"))
        assert r.status_code == 404
        assert c.get(f"/v1/analyses/{aid}/stress_map.png", headers=as_("alice")).status_code == 200
        assert [x["id"] for x in c.get("/v1/analyses", headers=as_("bob")).json()["items"]] == [bid]
        r = c.get("/v1/analyses", headers={"X-API-Key": "nobody"})
        assert r.status_code == 401


def test_rate_limit_per_client(serve: Callable[..., LiveServer],
                               make_api: Callable[..., ApiSettings]) -> None:
    srv = serve(api=make_api(keys=KEYS, client_rate_per_min=6, client_burst=2))
    with srv.client() as c:
        codes = [c.post("/v1/analyses", json=body(), headers=as_("alice")) for _ in range(3)]
        assert [r.status_code for r in codes[:2]] == [201, 201]
        r = codes[2]
        assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(r.headers["retry-after"]) <= 10
        assert "AGROSTRESS_API_CLIENT_RATE_PER_MIN" in r.json()["error"]["message"]
        # bob's bucket is his own; refused requests are not stored
        assert c.post("/v1/analyses", json=body(), headers=as_("bob")).status_code == 201
        assert c.get("/v1/analyses", headers=as_("alice")).json()["total"] == 2


def test_queue_share_per_client(serve: Callable[..., LiveServer],
                                make_api: Callable[..., ApiSettings]) -> None:
    srv = serve(api=make_api(keys=KEYS, client_max_pending=2, job_workers=2),
                core=FakeCore(delay_s=1.0).core())
    async_ = {**as_("alice"), "Prefer": "respond-async"}
    with srv.client() as c:
        assert [c.post("/v1/analyses", json=body(), headers=async_).status_code
                for _ in range(2)] == [202, 202]
        r = c.post("/v1/analyses", json=body(), headers=async_)
        assert r.status_code == 429 and r.json()["error"]["code"] == "client_queue_full"
        assert r.headers["retry-after"] == "10"
        assert r.json()["error"]["details"]["setting"] == "AGROSTRESS_API_CLIENT_MAX_PENDING"
        assert c.get("/v1/analyses", headers=as_("alice")).json()["total"] == 2  # no row kept
        # another client is not held by alice's share
        assert c.post("/v1/analyses", json=body(), headers={**as_("bob"), "Prefer":
                                                          "respond-async"}).status_code == 202


def test_greedy_client_does_not_starve_a_polite_one(
        serve: Callable[..., LiveServer], make_api: Callable[..., ApiSettings]) -> None:
    """Two workers, alice queues eight slow analyses: bob's one starts on the worker kept free
    of alice (one fewer than all with several clients) and finishes long before hers."""
    srv = serve(api=make_api(keys=KEYS, job_workers=2), core=FakeCore(delay_s=1.5).core())
    async_ = {**as_("alice"), "Prefer": "respond-async"}
    with srv.client() as c:
        greedy = [c.post("/v1/analyses", json=body(), headers=async_) for _ in range(8)]
        assert all(r.status_code == 202 for r in greedy)
        t0 = time.monotonic()
        polite = c.post("/v1/analyses", json=body(5.03), headers=as_("bob"))
        waited = time.monotonic() - t0
        assert polite.status_code == 201, polite.text
        assert waited < 4.0, waited  # one analysis (1.5 s), not behind alice's 12 s of work
        states = [c.get(f"/v1/analyses/{r.json()['id']}", headers=as_("alice")).json()["status"]
                  for r in greedy]
        assert states.count("done") <= 2  # alice kept to one worker meanwhile
        assert states.count("running") == 1


def test_clients_submitting_at_once(serve: Callable[..., LiveServer],
                                    make_api: Callable[..., ApiSettings]) -> None:
    srv = serve(api=make_api(keys=KEYS, job_workers=2))

    def post(i: int) -> httpx.Response:
        who = "alice" if i % 2 else "bob"
        return httpx.post(f"{srv.url}/v1/analyses", json=body(5.0 + 0.01 * i),
                          headers=as_(who), timeout=60)

    with ThreadPoolExecutor(8) as pool:
        rs = list(pool.map(post, range(8)))
    assert all(r.status_code == 201 for r in rs), [r.text for r in rs]
    with srv.client() as c:
        assert c.get("/v1/analyses", headers=as_("alice")).json()["total"] == 4
        assert c.get("/v1/analyses", headers=as_("bob")).json()["total"] == 4
