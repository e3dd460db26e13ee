"""Region → tiles: per UTM zone, a 10 m-aligned grid of square tiles clipped to the region.

A region (any polygon file or object :func:`agrostress.ingest.load_aoi` accepts, with no area
limit) is split into the parts lying in each UTM zone (and hemisphere); each part is put on
its zone's 10 m grid (bounds aligned to multiples of the resolution, like a single-field AOI)
and cut into ``tile_size`` × ``tile_size`` pixel tiles starting at the part's north-west
corner. Only tiles intersecting the region are kept; edge tiles are clipped to the part's
grid (a remainder narrower than 8 px joins its neighbour, so no sliver tiles) and each tile
carries the region polygon clipped to its box. Every pixel of a zone's grid
belongs to exactly one tile, so the tiles' pixel sets partition the region's pixels.

Tile ids read ``<epsg>_x<col>_y<row>`` (e.g. ``32631_x0005_y0012``; row 0 is the north edge).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import shapely
from pyproj import CRS, Transformer
from shapely.geometry import MultiPolygon, Polygon, box
from shapely.geometry.base import BaseGeometry

from agrostress.ingest.aoi import AOI, WGS84, load_aoi, utm_epsg
from agrostress.ingest.base import AOIError

DEFAULT_TILE_SIZE = 256
MIN_TILE_SIZE = 8
MAX_TILE_SIZE = 4096
MIN_EDGE_PX = 8
"""Edge remainders narrower than this join the neighbouring tile."""


class _PixelBox:
    """Width and height in pixels of a ``bounds`` box at ``resolution`` (shared by tiles and grids)."""

    bounds: tuple[float, float, float, float]
    resolution: float

    @property
    def width(self) -> int:
        return round((self.bounds[2] - self.bounds[0]) / self.resolution)

    @property
    def height(self) -> int:
        return round((self.bounds[3] - self.bounds[1]) / self.resolution)


@dataclass(frozen=True)
class Tile(_PixelBox):
    """One tile: a pixel-aligned box on its zone's grid and the region part inside it."""

    id: str
    epsg: int
    col: int
    row: int
    bounds: tuple[float, float, float, float]
    geometry: Polygon | MultiPolygon = field(repr=False, compare=False)
    resolution: float = 10.0

    @property
    def area_km2(self) -> float:
        """Area of the region inside the tile (not of the tile box)."""
        return float(self.geometry.area) / 1e6

    def fetch_aoi(
        self, zone_geometry: BaseGeometry, *, halo_px: int = 0, min_px: int = 0
    ) -> tuple[AOI, tuple[int, int]]:
        """The AOI to fetch for this tile and the (row, col) offset of the tile inside it.

        The fetch grid is the tile box grown by ``halo_px`` pixels on every side (so spatial
        operations near the tile edge see the same neighbours as a single pass) and, when
        smaller, to ``min_px`` a side; its polygon is the region part clipped to that grid.
        """
        r = self.resolution
        x0, y0, x1, y1 = self.bounds
        pad = halo_px * r
        x0, y0, x1, y1 = x0 - pad, y0 - pad, x1 + pad, y1 + pad
        grow_x = max(0, min_px - round((x1 - x0) / r))
        grow_y = max(0, min_px - round((y1 - y0) / r))
        x0 -= (grow_x // 2) * r
        x1 += (grow_x - grow_x // 2) * r
        y0 -= (grow_y - grow_y // 2) * r
        y1 += (grow_y // 2) * r
        fetch_box = (x0, y0, x1, y1)
        geom = _polygonal(shapely.intersection(zone_geometry, box(*fetch_box)))
        if geom.is_empty:  # pragma: no cover - a tile always intersects its region part
            raise AOIError(f"tile {self.id} does not intersect the region")
        to_wgs = Transformer.from_crs(CRS.from_epsg(self.epsg), WGS84, always_xy=True)
        geom_wgs84 = shapely.transform(geom, to_wgs.transform, interleaved=False)
        aoi = AOI(geom_wgs84, geom, self.epsg, fetch_box, r)
        row_off = round((y1 - self.bounds[3]) / r)
        col_off = round((self.bounds[0] - x0) / r)
        return aoi, (row_off, col_off)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "epsg": self.epsg,
            "col": self.col,
            "row": self.row,
            "bounds": [float(v) for v in self.bounds],
            "width": self.width,
            "height": self.height,
            "area_km2": round(self.area_km2, 6),
        }


@dataclass(frozen=True)
class ZoneGrid(_PixelBox):
    """The region part in one UTM zone, its aligned grid bounds and its tiles."""

    epsg: int
    geometry: Polygon | MultiPolygon = field(repr=False)
    bounds: tuple[float, float, float, float]
    tile_size: int
    tiles: tuple[Tile, ...] = field(repr=False)
    resolution: float = 10.0

    @property
    def transform(self) -> Any:
        from affine import Affine

        r = self.resolution
        return Affine(r, 0.0, self.bounds[0], 0.0, -r, self.bounds[3])

    @property
    def area_km2(self) -> float:
        return float(self.geometry.area) / 1e6


@dataclass(frozen=True)
class TileGrid:
    """All zones of a region and their tiles."""

    region: AOI = field(repr=False)
    zones: tuple[ZoneGrid, ...]
    tile_size: int

    @property
    def tiles(self) -> list[Tile]:
        return [t for z in self.zones for t in z.tiles]

    def __iter__(self) -> Iterator[Tile]:
        return iter(self.tiles)

    def __len__(self) -> int:
        return sum(len(z.tiles) for z in self.zones)

    def zone(self, epsg: int) -> ZoneGrid:
        for z in self.zones:
            if z.epsg == epsg:
                return z
        raise KeyError(f"no zone EPSG:{epsg} in the grid")

    @property
    def area_km2(self) -> float:
        return sum(z.area_km2 for z in self.zones)

    def region_sha256(self) -> str:
        """A stable hash of the region polygon (WGS 84)."""
        wkb = shapely.to_wkb(
            shapely.normalize(self.region.geometry_wgs84), output_dimension=2, byte_order=1
        )
        return hashlib.sha256(wkb).hexdigest()


def load_region(src: Any, *, crs: Any = None, resolution: float = 10.0) -> AOI:
    """Load and check a region (no size limit); raises :class:`AOIError` naming the problem."""
    return load_aoi(src, crs=crs, max_area_km2=None, resolution=resolution)


def make_grid(
    region: Any,
    tile_size: int = DEFAULT_TILE_SIZE,
    *,
    crs: Any = None,
    resolution: float = 10.0,
) -> TileGrid:
    """Tile ``region`` (path, GeoJSON, geometry, GeoDataFrame or :class:`AOI`)."""
    tile_size = int(tile_size)
    if not MIN_TILE_SIZE <= tile_size <= MAX_TILE_SIZE:
        raise ValueError(f"tile size must be {MIN_TILE_SIZE}..{MAX_TILE_SIZE} px, got {tile_size}")
    aoi = region if isinstance(region, AOI) else load_region(region, crs=crs, resolution=resolution)
    zones = []
    for epsg, part in _zone_parts(aoi):
        zones.append(_zone_grid(epsg, part, tile_size, aoi.resolution))
    zones = [z for z in zones if z.tiles]
    if not zones:  # pragma: no cover - load_aoi guarantees a non-empty polygon
        raise AOIError("the region yields no tile")
    return TileGrid(aoi, tuple(zones), tile_size)


# --------------------------------------------------------------------------- internals


def _zone_parts(aoi: AOI) -> list[tuple[int, Polygon | MultiPolygon]]:
    """(epsg, region part in that zone's UTM coordinates) for each zone the region touches."""
    w, s, e, n = aoi.geometry_wgs84.bounds
    zones = {
        utm_epsg(min(max(lon, -180.0), 179.999999), lat)
        for lon in _zone_probe_lons(w, e)
        for lat in (s, n)
    }
    if zones == {aoi.epsg}:
        return [(aoi.epsg, aoi.geometry_utm)]
    parts = []
    geom = shapely.segmentize(aoi.geometry_wgs84, 0.01)
    for epsg in sorted(zones):
        zone = epsg % 100
        lon0 = -180.0 + 6.0 * (zone - 1)
        south = epsg >= 32700
        zbox = box(lon0, -80.0 if south else 0.0, lon0 + 6.0, 0.0 if south else 84.0)
        part = _polygonal(shapely.intersection(geom, shapely.segmentize(zbox, 0.01)))
        if part.is_empty or part.area <= 0:
            continue
        t = Transformer.from_crs(WGS84, CRS.from_epsg(epsg), always_xy=True)
        utm = shapely.transform(part, t.transform, interleaved=False)
        if not utm.is_valid:
            utm = _polygonal(shapely.make_valid(utm))
        parts.append((epsg, utm))
    return parts


def _zone_probe_lons(w: float, e: float) -> list[float]:
    first = math.floor((w + 180.0) / 6.0)
    last = math.floor((e + 180.0) / 6.0)
    return [w] + [-180.0 + 6.0 * k + 3.0 for k in range(first, last + 1)] + [e]


def _zone_grid(epsg: int, part: Polygon | MultiPolygon, tile_size: int, r: float) -> ZoneGrid:
    xmin, ymin, xmax, ymax = part.bounds
    x0, y0 = math.floor(xmin / r) * r, math.floor(ymin / r) * r
    x1, y1 = max(math.ceil(xmax / r) * r, x0 + r), max(math.ceil(ymax / r) * r, y0 + r)
    cols = _spans(round((x1 - x0) / r), tile_size)
    rows = _spans(round((y1 - y0) / r), tile_size)
    shapely.prepare(part)
    tiles = []
    for row, (r0, r1) in enumerate(rows):
        ty1, ty0 = y1 - r0 * r, y1 - r1 * r
        for col, (c0, c1) in enumerate(cols):
            tx0, tx1 = x0 + c0 * r, x0 + c1 * r
            cell = box(tx0, ty0, tx1, ty1)
            if not shapely.intersects(part, cell):
                continue
            clipped = _polygonal(shapely.intersection(part, cell))
            if clipped.is_empty or clipped.area <= 0:
                continue
            tiles.append(
                Tile(
                    id=f"{epsg}_x{col:04d}_y{row:04d}",
                    epsg=epsg,
                    col=col,
                    row=row,
                    bounds=(tx0, ty0, tx1, ty1),
                    geometry=clipped,
                    resolution=r,
                )
            )
    return ZoneGrid(epsg, part, (x0, y0, x1, y1), tile_size, tuple(tiles), r)


def _spans(n: int, size: int) -> list[tuple[int, int]]:
    """Pixel ranges cutting ``n`` px into ``size`` px pieces; a remainder narrower than
    :data:`MIN_EDGE_PX` joins the piece before it (no sliver tiles)."""
    starts = list(range(0, n, size))
    if len(starts) > 1 and n - starts[-1] < MIN_EDGE_PX:
        starts.pop()
    return [(a, b) for a, b in zip(starts, [*starts[1:], n], strict=True)]


def _polygonal(geom: BaseGeometry) -> Polygon | MultiPolygon:
    """The polygonal part of ``geom`` (drops points/lines left by intersections)."""
    if geom.is_empty or geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom  # type: ignore[return-value]
    polys: list[Polygon] = []
    for g in getattr(geom, "geoms", []):
        if g.geom_type == "Polygon":
            polys.append(g)
        elif g.geom_type == "MultiPolygon":
            polys.extend(g.geoms)
    return MultiPolygon(polys) if len(polys) > 1 else (polys[0] if polys else Polygon())
