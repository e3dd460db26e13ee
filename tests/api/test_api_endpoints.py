"""The endpoints over HTTP (uvicorn on 127.0.0.1) with the contract-following fake core."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import rasterio
import shapely
from PIL import Image

from agrostress.ingest import CoverageError
from agrostress.settings import Settings
from api.settings import ApiSettings
from tests.api.api_fakes import FakeCore, expected_fields, field_polygon
from tests.api.api_helpers import LiveServer, wait_done

pytestmark = pytest.mark.network

FIELD = field_polygon(5.0, 51.0, 700)  # 49 ha


def body(fields: Any = FIELD, **over: Any) -> dict[str, Any]:
    b = {"fields": fields, "start": "2024-03-01", "end": "2024-07-20", "source": "simulated"}
    b.update(over)
    return b


def test_probes_models_sources(server: LiveServer) -> None:
    with server.client() as c:
        assert c.get("/healthz").json()["status"] == "ok"
        ready = c.get("/readyz").json()
        assert ready["status"] == "ready" and set(ready["checks"]) == {"database", "model", "core", "jobs"}
        (model,) = c.get("/v1/models").json()
        assert model["id"] == "ffdnn-test" and model["version"] == "0.0.1" and model["default"]
        assert model["metrics"] == {"field": {"overall_accuracy": 0.5}}
        assert model["class_names"] == ["healthy", "nitrogen_deficiency", "yellow_rust"]
        sources = {s["name"]: s for s in c.get("/v1/sources").json()}
        assert sources["simulated"]["available"]
        assert not sources["sentinelhub"]["available"] and "credentials" in sources["sentinelhub"]["reason"]


def test_sync_analysis_result_and_artefacts(server: LiveServer) -> None:
    with server.client() as c:
        r = c.post("/v1/analyses", json=body(explain=True))
        assert r.status_code == 201, r.text
        a = r.json()
        assert r.headers["location"] == f"/v1/analyses/{a['id']}"
        assert a["status"] == "done" and a["progress"] == 1.0 and a["error"] is None
        assert a["model"] == {"id": "ffdnn-test", "name": "ffdnn-test", "version": "0.0.1"}
        assert a["request"]["source"] == "simulated" and a["request"]["n_fields"] == 1
        assert 45 < a["request"]["area_ha"] < 52
        (f,) = a["result"]["fields"]
        (want,) = expected_fields(FIELD)
        assert f["call"] == want["call"]
        assert f["class_fractions"] == pytest.approx(want["class_fractions"])
        assert f["area_ha"] == pytest.approx(want["area_ha"])
        assert set(a["links"]) == {"self", "stress_map.tif", "stress_map.png", "summary.json",
                                   "zones.geojson", "attributions.json", "attributions.png"}
        assert c.get(a["links"]["self"]).json() == a

        tif = c.get(a["links"]["stress_map.tif"])
        assert tif.status_code == 200 and tif.headers["content-type"] == "image/tiff"
        with rasterio.MemoryFile(tif.content) as mem, mem.open() as src:
            arr = src.read(1)
            assert src.nodata == 255 and set(np.unique(arr)) <= {0, 1, 2, 255}
        png = c.get(a["links"]["stress_map.png"])
        assert png.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(png.content)).size == arr.shape[::-1]
        assert c.get(a["links"]["attributions.json"]).json()["method"] == "ig"
        assert c.get(a["links"]["attributions.png"]).headers["content-type"] == "image/png"

        zones = c.get(a["links"]["zones.geojson"])
        assert zones.headers["content-type"] == "application/geo+json"
        fc = zones.json()
        assert {z["properties"]["class_name"] for z in fc["features"]} == {
            "healthy", "nitrogen_deficiency", "yellow_rust"}
        counts = {z["properties"]["class_id"]: z["properties"]["pixels"] for z in fc["features"]}
        assert counts == {k: int((arr == k).sum()) for k in (0, 1, 2)}
        field = shapely.geometry.shape(FIELD)
        union = shapely.union_all([shapely.geometry.shape(z["geometry"]) for z in fc["features"]])
        assert union.intersection(field).area / field.area > 0.95  # zones cover the field
        w, s, e, n = a["result"]["map_bounds_wgs84"]
        assert w <= field.bounds[0] and e >= field.bounds[2] and s <= field.bounds[1]


def test_feature_collection_names_and_order(server: LiveServer) -> None:
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "north"}, "geometry": field_polygon(5.0, 51.004, 300)},
        {"type": "Feature", "id": "b-7", "geometry": field_polygon(5.0, 51.0, 300)},
        {"type": "Feature", "geometry": {"type": "MultiPolygon",
                                         "coordinates": [field_polygon(5.006, 51.0, 200)["coordinates"]]}},
    ]}
    with server.client() as c:
        a = c.post("/v1/analyses", json=body(fc)).json()
    got = a["result"]["fields"]
    assert [(f["field_id"], f["name"]) for f in got] == [(1, "north"), (2, "b-7"), (3, None)]
    for f, want in zip(got, expected_fields(fc), strict=True):
        assert f["call"] == want["call"]
        assert f["class_fractions"] == pytest.approx(want["class_fractions"])


def test_async_progress_and_409(serve: Callable[..., LiveServer]) -> None:
    srv = serve(core=FakeCore(delay_s=1.5).core())
    with srv.client() as c:
        r = c.post("/v1/analyses", json=body(), headers={"Prefer": "respond-async"})
        assert r.status_code == 202 and r.headers["retry-after"]
        a = r.json()
        assert a["status"] in ("queued", "running") and a["result"] is None
        time.sleep(0.6)
        mid = c.get(a["links"]["self"]).json()
        assert mid["status"] == "running" and 0 < mid["progress"] < 1 and mid["stage"] == "fetch"
        r = c.get(f"{a['links']['self']}/stress_map.png")
        assert r.status_code == 409 and r.json()["error"]["code"] == "analysis_not_done"
        done = wait_done(c, a["id"])
        assert done["status"] == "done" and done["progress"] == 1.0
        assert c.get(done["links"]["stress_map.png"]).status_code == 200


def test_large_request_is_async(serve: Callable[..., LiveServer],
                                make_api: Callable[..., ApiSettings]) -> None:
    srv = serve(api=make_api(sync_max_ha=10))
    with srv.client() as c:
        r = c.post("/v1/analyses", json=body())
        assert r.status_code == 202
        assert wait_done(c, r.json()["id"])["status"] == "done"


def test_sync_timeout_answers_202(serve: Callable[..., LiveServer],
                                  make_api: Callable[..., ApiSettings]) -> None:
    srv = serve(api=make_api(sync_timeout_s=0.3), core=FakeCore(delay_s=1.0).core())
    with srv.client() as c:
        r = c.post("/v1/analyses", json=body())
        assert r.status_code == 202
        assert wait_done(c, r.json()["id"])["status"] == "done"


def test_not_found_and_missing_artefacts(server: LiveServer) -> None:
    with server.client() as c:
        a = c.post("/v1/analyses", json=body(explain=False)).json()
        for path in ("/v1/analyses/" + "0" * 32, "/v1/analyses/nothex", "/v1/analyses/..%2F..%2Fetc",
                     "/v1/analyses/" + "0" * 32 + "/stress_map.png", "/nope"):
            r = c.get(path)
            assert r.status_code == 404, path
            assert r.json()["error"]["code"] == "not_found"
        r = c.get(f"{a['links']['self']}/attributions.png")
        assert r.status_code == 404 and r.json()["error"]["code"] == "artefact_not_found"
        assert "explain" in r.json()["error"]["message"]
        r = c.get(f"{a['links']['self']}/passwd")
        assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
        r = c.delete(a["links"]["self"])
        assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"


def test_list_analyses(server: LiveServer) -> None:
    with server.client() as c:
        ids = [c.post("/v1/analyses", json=body()).json()["id"] for _ in range(3)]
        page = c.get("/v1/analyses", params={"limit": 2}).json()
        assert page["total"] == 3 and len(page["items"]) == 2
        assert {i["id"] for i in page["items"]} <= set(ids)
        assert all(i["result"] is None for i in page["items"])
        assert c.get("/v1/analyses", params={"status": "failed"}).json()["total"] == 0
        assert c.get("/v1/analyses", params={"limit": 1000}).status_code == 422


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (CoverageError("the AOI lies outside the data's coverage"), 422, "no_coverage"),
        (ValueError("only 2 dates inside the model's temporal grid"), 422, "analysis_rejected"),
        (RuntimeError("secret internal detail"), 500, "analysis_failed"),
    ],
)
def test_job_failures_are_json(serve: Callable[..., LiveServer],
                               exc: Exception, status: int, code: str) -> None:
    srv = serve(core=FakeCore(fail_with=exc).core())
    with srv.client() as c:
        r = c.post("/v1/analyses", json=body())
        assert r.status_code == status
        err = r.json()["error"]
        assert err["code"] == code
        assert "Traceback" not in r.text and "secret internal detail" not in r.text
        stored = c.get(f"/v1/analyses/{err['details']['analysis_id']}").json()
        assert stored["status"] == "failed" and stored["error"]["code"] == code


def test_auth(serve: Callable[..., LiveServer], make_api: Callable[..., ApiSettings]) -> None:
    srv = serve(api=make_api(key="s3cret-key"))
    with srv.client() as c:
        assert c.get("/healthz").status_code == 200 and c.get("/readyz").status_code == 200
        assert c.get("/").status_code == 200  # the page loads; it asks for the key
        for method, path in (("GET", "/v1/models"), ("GET", "/v1/analyses"),
                             ("POST", "/v1/analyses"), ("GET", "/v1/analyses/" + "a" * 32)):
            for headers in ({}, {"X-API-Key": "wrong"}):
                r = c.request(method, path, headers=headers, json=body())
                assert r.status_code == 401, (method, path)
                assert r.json()["error"]["code"] == "unauthorized"
                assert r.headers["www-authenticate"] == "X-API-Key"
                assert r.headers["x-content-type-options"] == "nosniff"
        # the key is checked before the body is read: malformed or wrong bodies get 401 too
        for content in (b"{not json", b"\xff\xfe", json.dumps({"fields": 1}).encode()):
            r = c.post("/v1/analyses", content=content,
                       headers={"content-type": "application/json"})
            assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
        ok = {"X-API-Key": "s3cret-key"}
        r = c.post("/v1/analyses", content=b"{not json",
                   headers={**ok, "content-type": "application/json"})
        assert r.status_code in (400, 422)  # with the key, the body's own error
        a = c.post("/v1/analyses", json=body(), headers=ok)
        assert a.status_code == 201
        link = a.json()["links"]["stress_map.png"]
        assert c.get(link).status_code == 401
        assert c.get(link, headers=ok).status_code == 200
        schema = c.get("/openapi.json").json()
        assert "X-API-Key" in json.dumps(schema["components"]["securitySchemes"])


def test_auth_off_by_default(server: LiveServer) -> None:
    with server.client() as c:
        assert c.get("/v1/models").status_code == 200


def test_cors(serve: Callable[..., LiveServer], make_api: Callable[..., ApiSettings]) -> None:
    pre = {"Origin": "https://farm.example", "Access-Control-Request-Method": "POST",
           "Access-Control-Request-Headers": "content-type,x-api-key"}
    off = serve()
    with off.client() as c:
        r = c.get("/healthz", headers={"Origin": "https://farm.example"})
        assert "access-control-allow-origin" not in r.headers
    on = serve(api=make_api(cors_origins=["https://farm.example"]))
    with on.client() as c:
        r = c.options("/v1/analyses", headers=pre)
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://farm.example"
        assert "x-api-key" in r.headers["access-control-allow-headers"].lower()
        r = c.get("/healthz", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers


def test_queue_full_is_429(serve: Callable[..., LiveServer],
                           make_api: Callable[..., ApiSettings]) -> None:
    srv = serve(api=make_api(max_pending_jobs=1, job_workers=1),
                core=FakeCore(delay_s=1.0).core())
    with srv.client() as c:
        first = c.post("/v1/analyses", json=body(), headers={"Prefer": "respond-async"})
        assert first.status_code == 202
        r = c.post("/v1/analyses", json=body(), headers={"Prefer": "respond-async"})
        assert r.status_code == 429 and r.json()["error"]["code"] == "queue_full"
        assert r.headers["retry-after"]
        assert "limit 1" in r.json()["error"]["message"]
        for _ in range(5):  # refusals leave no row: only the accepted analysis is listed
            assert c.post("/v1/analyses", json=body(),
                          headers={"Prefer": "respond-async"}).status_code == 429
        listed = c.get("/v1/analyses").json()
        assert listed["total"] == 1 and [a["id"] for a in listed["items"]] == [first.json()["id"]]
        assert wait_done(c, first.json()["id"])["status"] == "done"


def test_core_or_model_unavailable(serve: Callable[..., LiveServer],
                                   make_settings: Callable[..., Settings], tmp_path: Any) -> None:
    srv = serve(make_settings(model_dir=tmp_path / "no-model"))
    with srv.client() as c:
        assert c.get("/healthz").status_code == 200
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json()["error"]["code"] == "not_ready"
        assert r.json()["error"]["details"]["model"].startswith("error")
        r = c.post("/v1/analyses", json=body())
        assert r.status_code == 503 and r.json()["error"]["code"] == "model_unavailable"
        assert c.get("/v1/models").json() == []


def test_openapi_documents_endpoints_with_examples(server: LiveServer) -> None:
    with server.client() as c:
        schema = c.get("/openapi.json").json()
    paths = schema["paths"]
    for p in ("/v1/analyses", "/v1/analyses/{analysis_id}", "/v1/analyses/{analysis_id}/{artefact}",
              "/v1/models", "/v1/sources", "/healthz", "/readyz"):
        assert p in paths, p
    req = schema["components"]["schemas"]["AnalysisRequest"]
    assert req["examples"][0]["source"] == "simulated"
    assert {"202", "413", "422", "429"} <= set(paths["/v1/analyses"]["post"]["responses"])
    artefacts = paths["/v1/analyses/{analysis_id}/{artefact}"]["get"]["parameters"][1]
    assert "zones.geojson" in json.dumps(schema["components"]["schemas"].get("ArtefactName", artefacts))


def test_viewer_is_served_without_external_resources(server: LiveServer) -> None:
    with server.client() as c:
        page = c.get("/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "default-src 'self'" in page.headers["content-security-policy"]
        for asset in ("/static/app.js", "/static/style.css"):
            r = c.get(asset)
            assert r.status_code == 200
            text = r.text.replace("http://www.w3.org/2000/svg", "")  # a namespace, not a fetch
            assert "http://" not in text and "https://" not in text
        assert "https://" not in page.text and "http://" not in page.text
        assert c.get("/static/../api/app.py").status_code == 404
