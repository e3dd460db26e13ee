"""Region → tiles: exact cover, no overlaps, clipped edges, UTM zones, bad regions."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import shapely
from rasterio.features import geometry_mask
from shapely.geometry import box, mapping

from agrostress.batch.grid import MIN_EDGE_PX, make_grid
from agrostress.ingest import AOIError, load_aoi
from tests.batch.batch_helpers import region_polygon_utm, utm_to_wgs84


def _region_geojson(geom) -> dict:
    return {"type": "Feature", "properties": {}, "geometry": mapping(geom)}


@pytest.mark.parametrize("tile_size", [8, 16, 13, 40])
def test_tiles_cover_region_exactly(tile_size: int) -> None:
    region = _region_geojson(utm_to_wgs84(region_polygon_utm()))
    grid = make_grid(region, tile_size)
    aoi = load_aoi(region, max_area_km2=None)
    assert len(grid.zones) == 1
    zone = grid.zones[0]
    assert zone.epsg == aoi.epsg == 32631
    assert zone.bounds == aoi.bounds  # the zone grid is the single-field AOI grid
    tiles = grid.tiles
    # polygons: union = region, no overlaps
    union = shapely.union_all([t.geometry for t in tiles])
    assert union.symmetric_difference(aoi.geometry_utm).area < 1e-6
    assert sum(t.geometry.area for t in tiles) == pytest.approx(aoi.geometry_utm.area, rel=1e-9)
    for i, a in enumerate(tiles):
        for b in tiles[i + 1 :]:
            assert shapely.intersection(box(*a.bounds), box(*b.bounds)).area == 0
    # pixels: every region pixel in exactly one tile, tile boxes inside the zone grid
    cover = np.zeros(aoi.shape, np.int32)
    for t in tiles:
        assert zone.bounds[0] <= t.bounds[0] < t.bounds[2] <= zone.bounds[2]
        assert zone.bounds[1] <= t.bounds[1] < t.bounds[3] <= zone.bounds[3]
        r0 = round((zone.bounds[3] - t.bounds[3]) / 10)
        c0 = round((t.bounds[0] - zone.bounds[0]) / 10)
        assert (r0, c0) == (t.row * tile_size, t.col * tile_size)
        cover[r0 : r0 + t.height, c0 : c0 + t.width] += 1
    assert cover.max() == 1
    assert np.all(cover[aoi.mask()] == 1)
    # interior tiles are full size; edge tiles end at the grid edge, a remainder narrower
    # than MIN_EDGE_PX joining its neighbour (no sliver tiles)
    w, h = zone.width, zone.height
    for t in tiles:
        c0, r0 = t.col * tile_size, t.row * tile_size
        last_col = c0 + t.width == w
        last_row = r0 + t.height == h
        assert t.width == tile_size or last_col
        assert t.height == tile_size or last_row
        assert MIN_EDGE_PX <= t.width < tile_size + MIN_EDGE_PX or t.width == w
        assert MIN_EDGE_PX <= t.height < tile_size + MIN_EDGE_PX or t.height == h
        assert (t.width != tile_size) == (last_col and w % tile_size != 0) or t.width == w
    # ids
    ids = [t.id for t in tiles]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"32631_x\d{4}_y\d{4}", i) for i in ids)
    assert grid.area_km2 == pytest.approx(aoi.area_km2)


def test_tiles_outside_region_are_dropped() -> None:
    # an L-shaped region: the tile in the notch must not exist
    x0, y1 = 500000.0, 5320000.0
    l_shape = shapely.Polygon(
        [(x0 + 5, y1 - 5), (x0 + 315, y1 - 5), (x0 + 315, y1 - 155), (x0 + 155, y1 - 155),
         (x0 + 155, y1 - 315), (x0 + 5, y1 - 315)]
    )  # fmt: skip
    grid = make_grid(_region_geojson(utm_to_wgs84(l_shape)), 16)
    cells = {(t.col, t.row) for t in grid.tiles}
    assert (0, 0) in cells and (1, 0) in cells and (0, 1) in cells
    assert (1, 1) not in cells


def test_fetch_aoi_halo_and_min_size() -> None:
    grid = make_grid(_region_geojson(utm_to_wgs84(region_polygon_utm())), 24)
    zone = grid.zones[0]
    tile = min(grid.tiles, key=lambda t: t.height)  # a clipped edge tile (12 px tall)
    assert tile.height < 16
    aoi, (row, col) = tile.fetch_aoi(zone.geometry, halo_px=2, min_px=16)
    assert aoi.height >= 16 and aoi.width >= 16
    assert aoi.epsg == tile.epsg
    # the tile sits at (row, col) of the fetch grid
    assert aoi.bounds[3] - row * 10 == tile.bounds[3]
    assert aoi.bounds[0] + col * 10 == tile.bounds[0]
    assert row >= 2 and col >= 2
    # the fetch polygon is the region clipped to the fetch box: same pixel membership
    region_mask = geometry_mask(
        [zone.geometry], out_shape=aoi.shape, transform=aoi.transform, invert=True
    )
    np.testing.assert_array_equal(aoi.mask(), region_mask)


def test_region_across_two_utm_zones() -> None:
    region = shapely.Polygon([(5.97, 49.0), (6.05, 49.0), (6.05, 49.03), (5.97, 49.03)])
    grid = make_grid(_region_geojson(region), 64)
    assert [z.epsg for z in grid.zones] == [32631, 32632]
    # the parts, back in degrees, rebuild the region
    from pyproj import Transformer

    back = []
    for z in grid.zones:
        t = Transformer.from_crs(z.epsg, 4326, always_xy=True)
        back.append(shapely.transform(z.geometry, t.transform, interleaved=False))
        union = shapely.union_all([t.geometry for t in z.tiles])
        assert union.symmetric_difference(z.geometry).area < 1e-3
    rebuilt = shapely.union_all(back)
    assert rebuilt.symmetric_difference(region).area / region.area < 1e-6
    assert all(t.id.startswith(f"{t.epsg}_") for t in grid.tiles)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "not found"),
        ("{not json", "cannot read"),
        (json.dumps({"type": "Point", "coordinates": [3.0, 48.0]}), "Polygon"),
        (
            json.dumps(
                {
                    "type": "Polygon",
                    "coordinates": [[[3, 48], [3.01, 48.01], [3.01, 48], [3, 48.01], [3, 48]]],
                }
            ),
            "invalid",
        ),  # fmt: skip
        (json.dumps({"type": "FeatureCollection", "features": []}), "no features"),
        (
            json.dumps(
                {
                    "type": "Polygon",
                    "coordinates": [
                        [[500000, 5320000], [500100, 5320000], [500100, 5319900], [500000, 5320000]]
                    ],
                }
            ),
            "longitudes/latitudes",
        ),  # fmt: skip
    ],
)
def test_bad_region_files_are_rejected(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "region.geojson"
    if content is not None:
        path.write_text(content)
    with pytest.raises(AOIError, match=message):
        make_grid(path, 16)


def test_bad_tile_size() -> None:
    region = _region_geojson(utm_to_wgs84(region_polygon_utm()))
    with pytest.raises(ValueError, match="tile size"):
        make_grid(region, 4)
