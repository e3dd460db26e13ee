"""Pieces of the service without a server: settings, zones, error mapping, request checks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from affine import Affine

from agrostress.ingest import CoverageError, CredentialsError, UpstreamError
from agrostress.settings import Settings
from api.errors import jsonable
from api.jobs.core import ERROR_STATUS, classify
from api.schemas import AnalysisRequest
from api.settings import ApiSettings
from api.validation import prepare
from api.zones import class_zones, map_bounds_wgs84
from tests.api.api_fakes import field_polygon
from tests.api.api_helpers import LiveServer


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGROSTRESS_API_KEY", "zz-secret-zz")
    monkeypatch.setenv("AGROSTRESS_API_CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("AGROSTRESS_API_SOURCES", '["simulated"]')
    monkeypatch.setenv("AGROSTRESS_API_MAX_AREA_HA", "123.5")
    s = ApiSettings(_env_file=None)
    assert s.key.get_secret_value() == "zz-secret-zz" and "zz-secret" not in repr(s)
    assert s.cors_origins == ["https://a.example", "https://b.example"]
    assert s.sources == ["simulated"] and s.max_area_ha == 123.5
    assert ApiSettings(_env_file=None, key="").database_url is None


def test_class_zones(tmp_path: Path) -> None:
    arr = np.full((20, 30), 255, np.uint8)
    arr[2:10, 2:12] = 0
    arr[10:18, 2:12] = 2
    arr[5:15, 15:28] = 1
    tif = tmp_path / "map.tif"
    transform = Affine(10, 0, 640000, 0, -10, 5652000)
    with rasterio.open(tif, "w", driver="GTiff", width=30, height=20, count=1, dtype="uint8",
                       crs="EPSG:32631", transform=transform, nodata=255) as dst:
        dst.write(arr, 1)
    fc = class_zones(tif, ["healthy", "nitrogen_deficiency", "yellow_rust"])
    props = {f["properties"]["class_name"]: f["properties"] for f in fc["features"]}
    assert props["healthy"]["pixels"] == 80 and props["healthy"]["area_ha"] == pytest.approx(0.8)
    assert props["nitrogen_deficiency"]["pixels"] == 130
    assert props["yellow_rust"]["share"] == pytest.approx(80 / 290)
    lon, lat = np.array(fc["features"][0]["geometry"]["coordinates"][0]).T
    assert 4.9 < lon.min() < lon.max() < 5.1 and 50.9 < lat.min() < lat.max() < 51.1
    w, s, e, n = map_bounds_wgs84(tif)
    assert w < lon.min() and e > lon.max() and s < lat.min() and n > lat.max()


@pytest.mark.parametrize(
    ("exc", "code"),
    [(CoverageError("x"), "no_coverage"), (CredentialsError("x"), "source_credentials"),
     (UpstreamError("x"), "upstream_error"), (ValueError("x"), "analysis_rejected"),
     (MemoryError(), "out_of_memory"), (KeyError("internal"), "analysis_failed")],
)
def test_classify(exc: BaseException, code: str) -> None:
    got, message = classify(exc)
    assert got == code and code in ERROR_STATUS
    if code == "analysis_failed":
        assert "internal" not in message


def test_jsonable() -> None:
    out = jsonable({"a": np.float32(1.5), "b": float("nan"), "c": np.arange(2), "d": (np.int64(3),)})
    assert out == {"a": 1.5, "b": None, "c": [0, 1], "d": [3]}


def test_prepare_normalises(tiny_model_dir: Path) -> None:
    s = Settings(_env_file=None, model_dir=tiny_model_dir)
    api = ApiSettings(_env_file=None, sources=["simulated"])
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "A"}, "geometry": field_polygon(5.0, 51.0, 300)},
        {"type": "Feature", "id": 7, "geometry": field_polygon(5.005, 51.0, 300)},
    ]}
    req = AnalysisRequest.model_validate({"fields": fc, "start": "2024-03-01", "end": "2024-07-20",
                                          "source": "simulated", "explain": True})
    p = prepare(req, s, api, "m")
    feats = p.stored["fields"]["features"]
    assert [f["properties"] for f in feats] == [{"field_id": 1, "name": "A"},
                                                {"field_id": 2, "name": "7"}]
    assert p.stored["n_fields"] == 2 and p.stored["explain"] is True and p.stored["model"] == "m"
    assert p.area_ha == pytest.approx(18.0, rel=0.01)
    assert p.extent_ha >= p.area_ha


def test_model_loaded_once(serve: Callable[..., LiveServer],
                           monkeypatch: pytest.MonkeyPatch) -> None:
    import api.registry

    calls: list[Any] = []
    real = api.registry.load
    monkeypatch.setattr(api.registry, "load", lambda p: calls.append(p) or real(p))
    srv = serve()
    body = {"fields": field_polygon(5.0, 51.0, 300), "start": "2024-03-01", "end": "2024-07-20",
            "source": "simulated"}
    with srv.client() as c:
        for _ in range(3):
            assert c.post("/v1/analyses", json=body).status_code == 201
    assert len(calls) == 1


def test_every_written_artefact_can_be_served() -> None:
    """One list: the API serves every file the core path writes (QGIS style, categories and
    per-pixel attributions included), plus its own zones."""
    from agrostress.outputs import ARTEFACTS as OUTPUT_FILES
    from api.jobs.artefacts import ARTEFACTS

    assert set(ARTEFACTS) == {*OUTPUT_FILES.values(), "zones.geojson"}
    assert ARTEFACTS["stress_map.qml"] == "application/xml"
    assert ARTEFACTS["pixel_attributions.npz"] == "application/octet-stream"


def test_serving_torch_threads_share_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    api = ApiSettings(_env_file=None, job_workers=2)
    assert api.serving_torch_threads() == 4
    assert api.serving_torch_threads(processes=2) == 2
    assert ApiSettings(_env_file=None, job_workers=16).serving_torch_threads() == 1
