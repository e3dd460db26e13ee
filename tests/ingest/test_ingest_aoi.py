"""AOI loading: any CRS, local UTM grid, and clear rejection of bad AOIs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
from pyproj import Transformer
from shapely.geometry import Polygon, box

from agrostress.ingest import AOIError, load_aoi, utm_epsg


def _square(lon: float, lat: float, d: float) -> dict[str, Any]:
    return {
        "type": "Polygon",
        "coordinates": [
            [[lon, lat], [lon + d, lat], [lon + d, lat + d], [lon, lat + d], [lon, lat]]
        ],
    }


def test_grid_is_utm_and_10m_aligned(aoi_dict: dict[str, Any]) -> None:
    aoi = load_aoi(aoi_dict)
    assert aoi.epsg == 32631
    assert all(v % 10 == 0 for v in aoi.bounds)
    assert aoi.shape == (len(aoi.y), len(aoi.x))
    assert aoi.transform.a == 10 and aoi.transform.e == -10
    mask = aoi.mask()
    assert mask.shape == aoi.shape and 0 < mask.sum() < mask.size  # pentagon: corners outside
    assert aoi.area_km2 == pytest.approx(mask.sum() * 1e-4, rel=0.1)


def test_any_crs_gives_the_same_grid(aoi_dict: dict[str, Any], tmp_path: Path) -> None:
    ref = load_aoi(aoi_dict)
    # the same polygon given in UTM through the legacy GeoJSON 'crs' member
    t = Transformer.from_crs(4326, 32631, always_xy=True)
    ring = aoi_dict["features"][0]["geometry"]["coordinates"][0]
    utm = [list(t.transform(x, y)) for x, y in ring]
    gj = {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32631"}},
        "features": [
            {
                "type": "Feature",
                "properties": {},
                "geometry": {"type": "Polygon", "coordinates": [utm]},
            }
        ],
    }
    assert load_aoi(gj).bounds == ref.bounds
    # a GeoPackage in EPSG:3857
    gdf = gpd.GeoDataFrame(geometry=[Polygon(ring)], crs=4326).to_crs(3857)
    gdf.to_file(tmp_path / "aoi.gpkg")
    assert load_aoi(tmp_path / "aoi.gpkg").bounds == ref.bounds
    # a GeoJSON file (EPSG:4326 by default) and GeoJSON text
    (tmp_path / "aoi.geojson").write_text(json.dumps(aoi_dict))
    assert load_aoi(str(tmp_path / "aoi.geojson")).bounds == ref.bounds
    assert load_aoi(json.dumps(aoi_dict)).bounds == ref.bounds
    # an explicit CRS for coordinates given without one
    assert load_aoi(Polygon(utm), crs="EPSG:32631").bounds == ref.bounds


def test_utm_zone_selection() -> None:
    assert utm_epsg(2.35, 48.85) == 32631
    assert utm_epsg(-58.4, -34.6) == 32721
    assert load_aoi(_square(-58.40, -34.60, 0.01)).epsg == 32721


def test_multipolygon_and_several_features_are_merged() -> None:
    a, b = _square(2.30, 48.80, 0.01), _square(2.33, 48.80, 0.01)
    multi = {"type": "MultiPolygon", "coordinates": [a["coordinates"], b["coordinates"]]}
    fc = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "properties": {}, "geometry": g} for g in (a, b)],
    }
    assert load_aoi(multi).bounds == load_aoi(fc).bounds


@pytest.mark.parametrize(
    ("aoi", "message"),
    [
        (  # bow-tie
            {
                "type": "Polygon",
                "coordinates": [
                    [[2.3, 48.8], [2.31, 48.81], [2.31, 48.8], [2.3, 48.81], [2.3, 48.8]]
                ],
            },
            "Self-intersection",
        ),
        ({"type": "FeatureCollection", "features": []}, "empty"),
        ({"type": "Polygon", "coordinates": []}, "empty"),
        ({"type": "Feature", "properties": {}, "geometry": None}, "empty"),
        ({"type": "Point", "coordinates": [2.3, 48.8]}, "Polygon or MultiPolygon, got Point"),
        (
            {"type": "LineString", "coordinates": [[2.3, 48.8], [2.4, 48.9]]},
            "Polygon or MultiPolygon, got LineString",
        ),
        (_square(2.0, 48.0, 1.0), "too large"),
        (_square(0.5, 40.0, 8.0), "more than one UTM zone"),
        (_square(2.3, 48.8, 0.00002), "too small"),
        (
            {
                "type": "Polygon",
                "coordinates": [
                    [[600000, 5000000], [600100, 5000000], [600100, 5000100], [600000, 5000000]]
                ],
            },
            "projected CRS",
        ),
        (
            {
                "type": "Polygon",
                "coordinates": [[[2.3, 85.0], [2.31, 85.0], [2.31, 85.01], [2.3, 85.0]]],
            },
            "UTM range",
        ),
        ({"coordinates": [[1, 2]]}, "no 'type'"),
        ("{not json", "not valid GeoJSON"),
    ],
)
def test_bad_aois_are_rejected_with_a_clear_message(aoi: Any, message: str) -> None:
    with pytest.raises(AOIError, match=message):
        load_aoi(aoi)


def test_area_limit_is_a_parameter() -> None:
    big = _square(2.0, 48.0, 0.2)  # ~330 km²
    with pytest.raises(AOIError, match="too large"):
        load_aoi(big)
    aoi = load_aoi(big, max_area_km2=None)
    assert aoi.area_km2 > 100
    assert np.isfinite(aoi.bounds).all()


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AOIError, match="not found"):
        load_aoi(tmp_path / "nope.geojson")


def test_aoi_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        load_aoi(box(0, 0, 0, 0))
