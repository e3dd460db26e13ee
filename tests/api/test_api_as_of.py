"""``as_of`` over REST: the call of a date in the season, nothing acquired later seen."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import pytest
import shapely

from agrostress.settings import Settings
from tests.api.api_fakes import field_polygon
from tests.api.api_helpers import LiveServer

pytestmark = [pytest.mark.network, pytest.mark.slow]

START, END, AS_OF = "2024-03-01", "2024-07-20", "2024-05-15"


def test_as_of_call_equals_the_library_call_of_that_date(
        serve: Callable[..., LiveServer], make_settings: Callable[..., Settings],
        tiny_model_dir: Path) -> None:
    from agrostress.analysis import analyse
    from agrostress.ingest.fetch import fetch_cube
    from agrostress.models import load

    settings = make_settings()
    srv = serve(settings, core=None)
    field = field_polygon(5.0, 51.0, 300)
    req = {"fields": field, "start": START, "end": END, "as_of": AS_OF, "source": "simulated"}
    with srv.client(timeout=600) as c:
        r = c.post("/v1/analyses", json=req)
        assert r.status_code == 201, r.text
        a = r.json()
        bad = c.post("/v1/analyses", json={**req, "as_of": "2024-08-01"})
    assert a["request"]["as_of"] == AS_OF
    season = a["result"]["season"]
    assert season["as_of"] == AS_OF and season["last_acquisition"] <= AS_OF
    geom = shapely.geometry.shape(field)
    cube = fetch_cube("simulated", geom, START, AS_OF, cache_dir=settings.cache_dir,
                      settings=settings, max_area_km2=None, aoi_crs="EPSG:4326")
    gdf = gpd.GeoDataFrame({"field_id": [1]}, geometry=[geom], crs="EPSG:4326")
    (want,) = [f.to_dict() for f in
               analyse(cube, load(tiny_model_dir), fields=gdf, as_of=AS_OF).fields]
    (got,) = a["result"]["fields"]
    assert got["call"] == want["call"]
    for k, v in want["mean_probabilities"].items():
        assert got["mean_probabilities"][k] == pytest.approx(v, rel=1e-5, abs=1e-7)
    assert bad.status_code == 422 and "outside the period" in bad.text
