"""Geometry checks and every limit, over HTTP: 413/422 with a stable code naming the limit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from agrostress.settings import Settings
from api.app import create_app
from api.settings import ApiSettings
from tests.api.api_fakes import FakeCore, field_polygon
from tests.api.api_helpers import LiveServer

pytestmark = pytest.mark.network

LIMITS = {
    "max_body_bytes": 20_000,
    "max_vertices": 50,
    "max_fields": 3,
    "max_area_ha": 200.0,
    "max_extent_ha": 400.0,
    "max_date_span_days": 200,
}


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Any) -> Iterator[httpx.Client]:
    tmp = tmp_path_factory.mktemp("limits")
    settings = Settings(
        _env_file=None, data_dir=tmp / "data", cache_dir=tmp / "cache", model_dir=tiny_model_dir
    )
    api = ApiSettings(_env_file=None, sources=["simulated", "stac"], **LIMITS)
    fake = FakeCore()
    srv = LiveServer(create_app(settings, api, core=fake.core())).start()
    with srv.client() as client:
        client.fake = fake  # type: ignore[attr-defined]
        yield client
    srv.stop()


def body(fields: Any, **over: Any) -> dict[str, Any]:
    b = {"fields": fields, "start": "2024-03-01", "end": "2024-07-20", "source": "simulated"}
    b.update(over)
    return b


def error_of(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    err = r.json()["error"]
    assert err["code"] == code, err
    assert err["message"]
    assert "Traceback" not in r.text
    return err


def test_valid_request_passes(limited: httpx.Client) -> None:
    r = limited.post("/v1/analyses", json=body(field_polygon(5.0, 51.0, 400)))
    assert r.status_code == 201, r.text


def test_body_size_declared(limited: httpx.Client) -> None:
    r = limited.post("/v1/analyses", content=b" " * 30_000,
                     headers={"content-type": "application/json"})
    err = error_of(r, 413, "body_too_large")
    assert "20000" in err["message"] and "AGROSTRESS_API_MAX_BODY_BYTES" in err["message"]
    assert r.headers["x-content-type-options"] == "nosniff"  # the documented headers, on 413 too
    assert r.headers["referrer-policy"] == "no-referrer"


def test_body_size_streamed_without_length(limited: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b" " * 1000

    r = limited.post("/v1/analyses", content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in r.request.headers
    error_of(r, 413, "body_too_large")
    assert r.headers["connection"] == "close"  # the server stops reading the rest
    assert r.headers["x-content-type-options"] == "nosniff"


def test_body_size_streamed_closes_the_connection(limited: httpx.Client) -> None:
    """After a streamed 413 the server reads no further: the connection is closed, and a
    body that keeps coming is not consumed (the client sees the 413, not a hang)."""
    import socket

    url = httpx.URL(str(limited.base_url))
    with socket.create_connection((url.host, url.port), timeout=10) as sock:
        sock.sendall(b"POST /v1/analyses HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                     b"\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b" " * 4096
        sent, answer = 0, b""
        sock.settimeout(0.05)
        while sent < 2_000_000:  # far beyond the 20 kB limit
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
            except OSError:
                break  # the server closed its side
            try:
                answer += sock.recv(65536)
            except TimeoutError:
                continue
            if b"\r\n\r\n" in answer:
                break
        sock.settimeout(10)
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert b"connection: close" in answer.lower()
        assert sent < 2_000_000
        rest = b""
        try:
            while data := sock.recv(65536):
                rest += data
        except OSError:
            pass  # reset: closed with unread data
        # end of stream: the server closed the connection after its answer


def test_too_many_vertices(limited: httpx.Client) -> None:
    import math

    ring = [[5.0 + 0.004 * math.cos(a / 60 * 2 * math.pi), 51.0 + 0.0025 * math.sin(a / 60 * 2 * math.pi)]
            for a in range(60)]
    ring.append(ring[0])
    r = limited.post("/v1/analyses", json=body({"type": "Polygon", "coordinates": [ring]}))
    err = error_of(r, 413, "too_many_vertices")
    assert "61 vertices" in err["message"] and "limit 50" in err["message"]
    assert err["details"]["setting"] == "AGROSTRESS_API_MAX_VERTICES"


def test_too_many_fields(limited: httpx.Client) -> None:
    feats = [{"type": "Feature", "properties": {}, "geometry": field_polygon(5.0 + i * 0.01, 51.0, 100)}
             for i in range(4)]
    r = limited.post("/v1/analyses", json=body({"type": "FeatureCollection", "features": feats}))
    err = error_of(r, 413, "too_many_fields")
    assert "4 fields" in err["message"] and "limit 3" in err["message"]


def test_area_limit(limited: httpx.Client) -> None:
    r = limited.post("/v1/analyses", json=body(field_polygon(5.0, 51.0, 1600)))  # 256 ha
    err = error_of(r, 413, "area_too_large")
    assert "limit 200" in err["message"] and "AGROSTRESS_API_MAX_AREA_HA" in err["message"]


def test_extent_limit(limited: httpx.Client) -> None:
    feats = [{"type": "Feature", "geometry": field_polygon(5.0 + d, 51.0 + d / 2, 300)}
             for d in (0.0, 0.05)]  # 2 × 9 ha, ~3.5 km × 2.8 km apart
    r = limited.post("/v1/analyses", json=body({"type": "FeatureCollection", "features": feats}))
    err = error_of(r, 413, "extent_too_large")
    assert "limit 400" in err["message"]


def test_date_span_limit(limited: httpx.Client) -> None:
    r = limited.post("/v1/analyses", json=body(field_polygon(5.0, 51.0), start="2024-01-01",
                                               end="2024-12-31"))
    err = error_of(r, 422, "date_span_too_long")
    assert "366 days" in err["message"] and "limit 200" in err["message"]


def test_reversed_period(limited: httpx.Client) -> None:
    r = limited.post("/v1/analyses", json=body(field_polygon(5.0, 51.0), start="2024-07-01",
                                               end="2024-03-01"))
    error_of(r, 422, "invalid_period")


@pytest.mark.parametrize(("start", "end", "needle"), [
    ("2024-05-01", "2024-05-01", "not before end"),       # a single day: no season
    ("0001-01-01", "0001-03-01", "outside 2015-06-23"),   # before Sentinel-2
    ("2263-01-01", "2263-03-01", "outside 2015-06-23"),   # past what timestamps hold
])
def test_impossible_dates_are_refused_at_once(limited: httpx.Client, start: str, end: str,
                                              needle: str) -> None:
    """Refused before anything runs, with the service's own words (no pandas text)."""
    before = limited.fake.calls  # type: ignore[attr-defined]
    r = limited.post("/v1/analyses", json=body(field_polygon(5.0, 51.0), start=start, end=end))
    err = error_of(r, 422, "invalid_period")
    assert needle in err["message"] and "Timestamp" not in err["message"]
    assert limited.fake.calls == before  # type: ignore[attr-defined]


def test_openapi_documents_the_error_body_for_422_and_no_slash_redirect(
        limited: httpx.Client) -> None:
    schema = limited.get("/openapi.json").json()
    assert "HTTPValidationError" not in json.dumps(schema)
    ref = schema["paths"]["/v1/analyses"]["get"]["responses"]["422"]
    assert ref["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
    r = limited.get("/v1/analyses/", headers={"Host": "evil.example"}, follow_redirects=False)
    assert r.status_code == 404 and "location" not in r.headers
    assert r.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"type": "Polygon", "coordinates": [[[5, 51], [5.01, 51.01], [5.01, 51], [5, 51.01], [5, 51]]]},
         "Self-intersection"),
        ({"type": "Polygon", "coordinates": [[[5, 51], [5.01, 51], [5.02, 51], [5, 51]]]}, "empty"),
        ({"type": "Polygon", "coordinates": [[[5, 51], [5.01, 51], [5.01, 51.01], [5, 51.01]]]},
         "not closed"),
        ({"type": "Polygon", "coordinates": [[[5, 51], [5.01, 51], [5, 51]]]}, "at least 4"),
        ({"type": "Polygon", "coordinates": [[[200, 51], [201, 51], [201, 52], [200, 51]]]},
         "out of range"),
        ({"type": "Polygon", "coordinates": [[[5, 95], [5.01, 95], [5.01, 96], [5, 95]]]},
         "out of range"),
        ({"type": "Point", "coordinates": [5, 51]}, "Point"),
        ({"type": "LineString", "coordinates": [[5, 51], [5.01, 51]]}, "LineString"),
        ({"type": "Feature", "geometry": {"type": "Point", "coordinates": [5, 51]}}, "Point"),
        ({"type": "FeatureCollection", "features": []}, "at least 1"),
        ({"type": "Polygon", "coordinates": []}, "at least 1"),
        ({"type": "Polygon", "coordinates": [[[5, 51], [5.0000001, 51], [5.0000001, 51.0000001],
                                              [5, 51]]]}, "too small"),
    ],
    ids=["self-intersection", "zero-area", "unclosed", "short-ring", "lon-range", "lat-range",
         "point", "line", "feature-point", "empty-collection", "no-rings", "sub-pixel"],
)
def test_invalid_geometry(limited: httpx.Client, fields: dict[str, Any], needle: str) -> None:
    err = error_of(limited.post("/v1/analyses", json=body(fields)), 422, "invalid_geometry")
    assert needle.lower() in err["message"].lower(), err["message"]


def test_non_finite_and_garbage(limited: httpx.Client) -> None:
    raw = json.dumps(body(field_polygon(5.0, 51.0))).replace("5.0,", "NaN,", 1)
    r = limited.post("/v1/analyses", content=raw, headers={"content-type": "application/json"})
    error_of(r, 422, "invalid_geometry")
    r = limited.post("/v1/analyses", content=b"{not json", headers={"content-type": "application/json"})
    error_of(r, 422, "validation_error")
    r = limited.post("/v1/analyses", json=body(field_polygon(5.0, 51.0), start="2024-13-40"))
    error_of(r, 422, "validation_error")
    r = limited.post("/v1/analyses", json=body(field_polygon(5.0, 51.0), source="gee"))
    error_of(r, 422, "validation_error")
    r = limited.post("/v1/analyses", json=body(field_polygon(5.0, 51.0), model="../../etc"))
    error_of(r, 422, "validation_error")
    r = limited.post("/v1/analyses", json=body(field_polygon(5.0, 51.0), extra=1))
    error_of(r, 422, "validation_error")


def test_unknown_model_and_disabled_source(limited: httpx.Client) -> None:
    err = error_of(limited.post("/v1/analyses", json=body(field_polygon(5.0, 51.0), model="nope")),
                   422, "unknown_model")
    assert "ffdnn-test" in err["message"]
    err = error_of(limited.post("/v1/analyses", json=body(field_polygon(5.0, 51.0), source="files")),
                   422, "source_unavailable")
    assert "AGROSTRESS_API_SOURCES" in err["message"]


def test_rejected_requests_run_nothing(limited: httpx.Client) -> None:
    before = limited.fake.calls  # type: ignore[attr-defined]
    limited.post("/v1/analyses", json=body(field_polygon(5.0, 51.0, 1600)))
    limited.post("/v1/analyses", content=b" " * 30_000, headers={"content-type": "application/json"})
    assert limited.fake.calls == before  # type: ignore[attr-defined]


@pytest.mark.parametrize(("content", "needle"), [
    (b"\xff\xfe", "not valid JSON"),                           # not UTF-8
    (b"{not json", "not valid JSON (at character 1"),
    (b'{"start": ' + b"1" * 5000 + b"}", "could not be read as JSON"),  # a 5000-digit number
    (b"[" * 5000 + b"]" * 5000, "could not be read as JSON"),         # nested too deep
])
def test_malformed_bodies_get_a_documented_422(limited: httpx.Client, content: bytes,
                                               needle: str) -> None:
    r = limited.post("/v1/analyses", content=content, headers={"content-type": "application/json"})
    err = error_of(r, 422, "validation_error")
    assert needle in err["message"]

