"""The service over the real core path (simulated source): answers equal the library's own.

Skipped until ``agrostress.analysis.analyse`` is implemented. The model is the tiny
random-weight checkpoint of ``conftest`` (the plumbing, not the science, is under test).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import geopandas as gpd
import httpx
import numpy as np
import pytest
import rasterio
import shapely

from agrostress.settings import Settings
from api.settings import ApiSettings
from tests.api.api_fakes import field_polygon
from tests.api.api_helpers import LiveServer, real_core_available

pytestmark = [
    pytest.mark.network,
    pytest.mark.slow,
    pytest.mark.skipif(not real_core_available(), reason="agrostress.analysis not implemented yet"),
]

START, END = "2024-03-01", "2024-07-20"


def body(fields: dict[str, Any], **over: Any) -> dict[str, Any]:
    return {"fields": fields, "start": START, "end": END, "source": "simulated", **over}


def library_answer(fields: dict[str, Any], settings: Settings, model_dir: Path) -> list[dict[str, Any]]:
    """What the core path itself says for the field (through the same ingestion cache)."""
    from agrostress.analysis import analyse
    from agrostress.ingest.fetch import fetch_cube
    from agrostress.models import load

    geom = shapely.geometry.shape(fields)
    cube = fetch_cube("simulated", geom, START, END, cache_dir=settings.cache_dir,
                      settings=settings, max_area_km2=None, aoi_crs="EPSG:4326")
    gdf = gpd.GeoDataFrame({"field_id": [1]}, geometry=[geom], crs="EPSG:4326")
    return [f.to_dict() for f in analyse(cube, load(model_dir), fields=gdf).fields]


def same_field(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert got["call"] == want["call"]
    assert got["valid_pixel_share"] == pytest.approx(want["valid_pixel_share"])
    assert got["area_ha"] == pytest.approx(want["area_ha"])
    for k, v in want["class_fractions"].items():
        assert got["class_fractions"][k] == pytest.approx(v, abs=1e-9)
    for k, v in want["mean_probabilities"].items():
        assert got["mean_probabilities"][k] == pytest.approx(v, rel=1e-5, abs=1e-7)


def test_simulated_field_end_to_end(serve: Callable[..., LiveServer],
                                    make_settings: Callable[..., Settings], tiny_model_dir: Path) -> None:
    settings = make_settings()
    srv = serve(settings, core=None)
    field = field_polygon(5.0, 51.0, 300)
    with srv.client(timeout=600) as c:
        r = c.post("/v1/analyses", json=body(field, explain=True))
        assert r.status_code == 201, r.text
        a = r.json()
        assert {"stress_map.tif", "probabilities.tif", "stress_map.png", "zones.geojson",
                "attributions.json", "attributions.png"} <= set(a["links"])
        (got,) = a["result"]["fields"]
        assert got["call"] in (None, "healthy", "nitrogen_deficiency", "yellow_rust")
        tif = c.get(a["links"]["stress_map.tif"]).content
        zones = c.get(a["links"]["zones.geojson"]).json()
        assert c.get(a["links"]["attributions.json"]).status_code == 200
    with rasterio.MemoryFile(tif) as mem, mem.open() as src:
        arr = src.read(1)
    counts = {z["properties"]["class_id"]: z["properties"]["pixels"] for z in zones["features"]}
    assert counts == {k: int(n) for k, n in zip(*np.unique(arr[arr != 255], return_counts=True),
                                                  strict=True)}
    (want,) = library_answer(field, settings, tiny_model_dir)
    same_field(got, want)


def test_twenty_simultaneous_real_analyses(serve: Callable[..., LiveServer],
                                           make_settings: Callable[..., Settings],
                                           make_api: Callable[..., ApiSettings],
                                           tiny_model_dir: Path) -> None:
    settings = make_settings()
    srv = serve(settings, make_api(job_workers=4, plots=False), core=None)
    fields = [field_polygon(5.0 + 0.006 * i, 51.0, 150 + 40 * i) for i in range(2)]
    expected = [library_answer(f, settings, tiny_model_dir)[0] for f in fields]  # also warms the cache
    jobs = [i % len(fields) for i in range(20)]

    def post(i: int) -> httpx.Response:
        with httpx.Client(base_url=srv.url, timeout=600) as c:
            return c.post("/v1/analyses", json=body(fields[i]))

    with ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(post, jobs))
    assert len({r.json()["id"] for r in responses}) == 20
    for i, r in zip(jobs, responses, strict=True):
        assert r.status_code == 201, r.text
        (got,) = r.json()["result"]["fields"]
        same_field(got, expected[i])


def test_lone_field_judged_against_a_buffer(serve: Callable[..., LiveServer],
                                            make_settings: Callable[..., Settings],
                                            make_api: Callable[..., ApiSettings],
                                            tmp_path: Path) -> None:
    """One field alone: with ``reference_buffer_m`` the service fetches the wheat around it
    for the reference; without, the model's built-in reference is used — and the result says
    which."""
    from tests.model_helpers import build_reference_model

    model = build_reference_model(tmp_path / "ref-model")
    field = field_polygon(5.0, 51.0, 300)
    seen = {}
    for buffer_m in (0.0, 800.0):
        settings = make_settings(model_dir=model, data_dir=tmp_path / f"data{int(buffer_m)}")
        srv = serve(settings, make_api(reference_buffer_m=buffer_m), core=None)
        with srv.client(timeout=600) as c:
            r = c.post("/v1/analyses", json=body(field))
            assert r.status_code == 201, r.text
            result = r.json()["result"]
        seen[buffer_m] = result["reference"]
        assert result["decision"]["priors"]["healthy"] == pytest.approx(0.7)
        (got,) = result["fields"]
        assert got["call"] in (None, "healthy", "nitrogen_deficiency", "yellow_rust", "uncertain")
    assert seen[0.0]["source"] == "built-in"
    assert seen[800.0]["source"] == "scene" and seen[800.0]["fields"] >= 3


def test_crop_property_gives_not_wheat(serve: Callable[..., LiveServer],
                                       make_settings: Callable[..., Settings]) -> None:
    """A FeatureCollection whose features name their crop (RPG codes): the maize field is
    'not_wheat' and none of its pixels gets a wheat class; the wheat field is judged."""
    settings = make_settings()
    srv = serve(settings, core=None)
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "wheat", "CODE_CULTU": "BTH"},
         "geometry": field_polygon(5.0, 51.0, 250)},
        {"type": "Feature", "properties": {"name": "maize", "CODE_CULTU": "MIS"},
         "geometry": field_polygon(5.006, 51.0, 250)}]}
    with srv.client(timeout=600) as c:
        r = c.post("/v1/analyses", json=body(fc, crop_preset="rpg"))
        assert r.status_code == 201, r.text
        a = r.json()
        calls = {f["name"]: f for f in a["result"]["fields"]}
        assert calls["maize"]["call"] == "not_wheat"
        assert calls["maize"]["class_fractions"]["not_wheat"] == 1.0
        assert calls["wheat"]["call"] != "not_wheat"
        zones = c.get(a["links"]["zones.geojson"]).json()
        names = {z["properties"]["class_name"] for z in zones["features"]
                 if "class_name" in z["properties"]}
        assert "not_wheat" in names
        tif = c.get(a["links"]["stress_map.tif"]).content
        for bad, msg in ((dict(crop_column="CODE_CULTU"), "wheat-values"),
                         (dict(crop_column="crop", wheat_values=["BTH"]), "no field has"),
                         (dict(crop_preset="nope"), "")):
            r = c.post("/v1/analyses", json=body(fc, **bad))
            assert r.status_code == 422 and msg in r.text, r.text
    with rasterio.MemoryFile(tif) as mem, mem.open() as src:
        arr, crs, transform = src.read(1), src.crs, src.transform
    from agrostress.analysis.fields import rasterise_fields

    feats = gpd.GeoDataFrame.from_features(fc["features"], crs="EPSG:4326").to_crs(crs)
    inside = rasterise_fields(feats, arr.shape, transform)
    assert (arr[inside == 2] == 5).all() and (inside == 2).any()
    assert not np.isin(arr[inside != 1], [0, 1, 2, 3, 4]).any()


def test_the_settings_detector_marks_what_is_not_wheat(
        serve: Callable[..., LiveServer], make_settings: Callable[..., Settings],
        detector_dir: Path) -> None:
    """Without a crop property the service runs the built-in detector of its settings."""
    srv = serve(make_settings(not_wheat_model_dir=detector_dir), core=None)
    with srv.client(timeout=600) as c:
        r = c.post("/v1/analyses", json=body(field_polygon(5.0, 51.0, 300)))
        assert r.status_code == 201, r.text
        summary = c.get(r.json()["links"]["summary.json"]).json()
    assert summary["scene"]["wheat_mask"]["source"] == "detector"
