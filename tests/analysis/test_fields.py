"""One set of rules for field polygons, wherever they come in (predict, API, batch)."""

from __future__ import annotations

import geopandas as gpd
import pytest
import shapely

from agrostress.analysis import read_fields
from agrostress.batch.manifest import BatchError
from agrostress.batch.stats import load_fields


def _gdf(ids, crs="EPSG:4326"):
    geoms = [shapely.box(i, 0, i + 0.5, 0.5) for i in range(len(ids))]
    return gpd.GeoDataFrame({"field_id": ids, "name": [f"f{i}" for i in range(len(ids))]},
                            geometry=geoms, crs=crs)


@pytest.mark.parametrize("load", [read_fields, load_fields])
def test_shared_ids_are_one_field(load):
    out = load(_gdf([7, 7, 9]))
    assert sorted(out["field_id"]) == [7, 9]
    assert out.set_index("field_id").loc[7, "geometry"].area == pytest.approx(0.5)
    assert out.set_index("field_id").loc[7, "name"] == "f0"  # the first row's attributes


def test_missing_crs_is_an_error_everywhere():
    with pytest.raises(ValueError, match="no CRS"):
        read_fields(_gdf([1], crs=None))
    with pytest.raises(BatchError, match="no CRS"):
        load_fields(_gdf([1], crs=None))
    assert read_fields(_gdf([1], crs=None), crs="EPSG:4326").crs.to_epsg() == 4326


def test_ids_assigned_and_invalid_geometry_repaired(tmp_path):
    bowtie = shapely.Polygon([(0, 0), (1, 1), (1, 0), (0, 1), (0, 0)])
    gdf = gpd.GeoDataFrame(geometry=[bowtie, shapely.box(2, 0, 3, 1)], crs="EPSG:4326")
    path = tmp_path / "f.geojson"
    gdf.to_file(path)
    out = read_fields(path)
    assert list(out["field_id"]) == [1, 2] and out.geometry.is_valid.all()
    with pytest.raises(FileNotFoundError):
        read_fields(tmp_path / "none.geojson")
