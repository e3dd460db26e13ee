"""20 simultaneous analyses: every answer belongs to its own request and is correct."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from api.settings import ApiSettings
from tests.api.api_fakes import FakeCore, expected_fields, field_polygon
from tests.api.api_helpers import LiveServer

pytestmark = pytest.mark.network

N = 20


def _post(url: str, fields: dict[str, Any]) -> httpx.Response:
    body = {"fields": fields, "start": "2024-03-01", "end": "2024-07-20", "source": "simulated"}
    with httpx.Client(base_url=url, timeout=120) as c:
        return c.post("/v1/analyses", json=body)


def test_twenty_simultaneous_analyses(serve: Callable[..., LiveServer],
                                      make_api: Callable[..., ApiSettings]) -> None:
    srv = serve(api=make_api(job_workers=4), core=FakeCore(delay_s=0.2).core())
    # different fields (position and size) so that any mix-up shows in the results
    fields = [field_polygon(5.0 + 0.013 * (i % 5), 51.0 + 0.011 * (i // 5), 250 + 37 * i)
              for i in range(N)]
    with ThreadPoolExecutor(N) as pool:
        responses = list(pool.map(lambda f: _post(srv.url, f), fields))
    ids = set()
    for f, r in zip(fields, responses, strict=True):
        assert r.status_code == 201, r.text
        a = r.json()
        ids.add(a["id"])
        (got,) = a["result"]["fields"]
        (want,) = expected_fields(f)
        assert got["area_ha"] == pytest.approx(want["area_ha"])
        assert got["class_fractions"] == pytest.approx(want["class_fractions"])
        assert got["call"] == want["call"]
    assert len(ids) == N
    with srv.client() as c:
        assert c.get("/v1/analyses", params={"status": "done"}).json()["total"] == N
