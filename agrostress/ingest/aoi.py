"""Areas of interest: load, check and put on the local UTM 10 m grid.

An AOI comes from a GeoJSON (or any vector file geopandas reads), a GeoJSON-like dict, a
shapely geometry or a GeoDataFrame, in any CRS (GeoJSON without ``crs`` member: EPSG:4326).
It must be a non-empty, valid (not self-intersecting) Polygon or MultiPolygon of at most
``max_area_km2``. Several polygon features are merged into one.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyproj import CRS, Transformer
from shapely.geometry import MultiPolygon, Polygon, box, shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from agrostress.ingest.base import AOIError

WGS84 = CRS.from_epsg(4326)
DEFAULT_RESOLUTION = 10.0


@dataclass(frozen=True)
class AOI:
    """A checked area of interest and its pixel grid.

    ``bounds`` (xmin, ymin, xmax, ymax) in the UTM CRS ``epsg`` are aligned to multiples of
    ``resolution`` (so 10 m Sentinel-2 pixels map 1:1); ``x``/``y`` are pixel centres.
    """

    geometry_wgs84: Polygon | MultiPolygon
    geometry_utm: Polygon | MultiPolygon
    epsg: int
    bounds: tuple[float, float, float, float]
    resolution: float = DEFAULT_RESOLUTION
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, hash=False)

    @property
    def crs(self) -> CRS:
        return CRS.from_epsg(self.epsg)

    @property
    def width(self) -> int:
        return round((self.bounds[2] - self.bounds[0]) / self.resolution)

    @property
    def height(self) -> int:
        return round((self.bounds[3] - self.bounds[1]) / self.resolution)

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        return self.height, self.width

    @property
    def transform(self) -> Any:
        """The affine transform of the grid (north-up)."""
        from affine import Affine

        r = self.resolution
        return Affine(r, 0.0, self.bounds[0], 0.0, -r, self.bounds[3])

    @property
    def x(self) -> np.ndarray:
        return self.bounds[0] + self.resolution * (np.arange(self.width) + 0.5)

    @property
    def y(self) -> np.ndarray:
        return self.bounds[3] - self.resolution * (np.arange(self.height) + 0.5)

    @property
    def area_km2(self) -> float:
        return float(self.geometry_utm.area) / 1e6

    @cached_property
    def bbox_wgs84(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) of the grid's bounding box in degrees (densified)."""
        t = Transformer.from_crs(self.crs, WGS84, always_xy=True)
        return tuple(float(v) for v in t.transform_bounds(*self.bounds, densify_pts=21))  # type: ignore[return-value]

    def mask(self) -> np.ndarray:
        """Boolean (y, x): True where the pixel centre lies inside the polygon."""
        if "mask" not in self._cache:
            from rasterio.features import geometry_mask

            self._cache["mask"] = geometry_mask(
                [self.geometry_utm], out_shape=self.shape, transform=self.transform, invert=True
            )
        return self._cache["mask"].copy()

    def fingerprint(self) -> dict[str, Any]:
        """A stable description of the AOI and grid (used in cache keys and cube attrs)."""
        wkb = shapely.to_wkb(shapely.normalize(self.geometry_utm), output_dimension=2, byte_order=1)
        return {
            "epsg": self.epsg,
            "bounds": [float(v) for v in self.bounds],
            "resolution": float(self.resolution),
            "geometry_sha256": hashlib.sha256(wkb).hexdigest(),
        }

    def to_geojson(self) -> dict[str, Any]:
        """The polygon in EPSG:4326 as a GeoJSON geometry."""
        return json.loads(shapely.to_geojson(self.geometry_wgs84))


def snap_bounds(
    bounds: tuple[float, float, float, float], step: float
) -> tuple[float, float, float, float]:
    """``bounds`` grown outward to multiples of ``step`` (metres)."""
    xmin, ymin, xmax, ymax = bounds
    return (
        math.floor(xmin / step) * step,
        math.floor(ymin / step) * step,
        math.ceil(xmax / step) * step,
        math.ceil(ymax / step) * step,
    )


def rectangle_aoi(
    epsg: int, bounds: tuple[float, float, float, float], resolution: float = DEFAULT_RESOLUTION
) -> AOI:
    """The AOI whose polygon is the grid rectangle ``bounds`` itself (in UTM ``epsg``).

    ``bounds`` must be multiples of ``resolution``; every pixel of the grid is inside. The
    WGS 84 polygon is densified (a vertex every 10 pixels) so it follows the UTM edges.
    """
    r = float(resolution)
    b = tuple(float(v) for v in bounds)
    if any(abs(v / r - round(v / r)) > 1e-9 for v in b) or b[2] <= b[0] or b[3] <= b[1]:
        raise AOIError(f"rectangle {b} is not a non-empty grid rectangle at {r:g} m")
    geom_utm = box(*b)
    dense = shapely.segmentize(geom_utm, 10 * r)
    geom_wgs84 = _to_crs(dense, CRS.from_epsg(epsg), WGS84)
    return AOI(geom_wgs84, geom_utm, int(epsg), b, r)  # type: ignore[arg-type]


def utm_epsg(lon: float, lat: float) -> int:
    """The EPSG code of the WGS 84 / UTM zone containing (lon, lat)."""
    if not -80.0 <= lat <= 84.0:
        raise AOIError(f"latitude {lat:.3f} is outside the UTM range (80°S to 84°N)")
    zone = min(int(math.floor((lon + 180.0) / 6.0)) + 1, 60)
    return (32600 if lat >= 0 else 32700) + zone


def load_aoi(
    src: Any,
    *,
    crs: Any = None,
    max_area_km2: float | None = 100.0,
    resolution: float = DEFAULT_RESOLUTION,
    epsg: int | None = None,
) -> AOI:
    """Load and check an AOI; return it with its local UTM grid.

    ``src``: path to a vector file, GeoJSON text, GeoJSON dict (geometry, Feature or
    FeatureCollection), shapely geometry, GeoDataFrame/GeoSeries or an :class:`AOI` (returned
    as is). ``crs`` overrides/sets the input CRS (default: the file's, else EPSG:4326).
    ``max_area_km2=None`` disables the size limit (batch). ``epsg`` forces the output CRS.
    Raises :class:`AOIError` with a message naming the problem.
    """
    if isinstance(src, AOI):
        return src
    geom, src_crs = _read_geometry(src, crs)
    geom = _check_geometry(geom)
    src_crs = src_crs or WGS84
    geom_wgs84 = _to_crs(geom, src_crs, WGS84) if not src_crs.equals(WGS84) else geom
    w, s, e, n = geom_wgs84.bounds
    if not (
        -180.0 <= w <= 180.0 and -180.0 <= e <= 180.0 and -90.0 <= s <= 90.0 and -90.0 <= n <= 90.0
    ):
        raise AOIError(
            f"AOI coordinates {geom.bounds} are not valid longitudes/latitudes; if the AOI is in "
            "a projected CRS, say which (GeoJSON 'crs' member, a file with a CRS, or --aoi-crs)"
        )
    if e - w > 6.0:
        raise AOIError(f"AOI spans {e - w:.1f}° of longitude: more than one UTM zone; split it")
    c = geom_wgs84.centroid
    out_epsg = int(epsg) if epsg else utm_epsg(c.x, c.y)
    geom_utm = _to_crs(geom, src_crs, CRS.from_epsg(out_epsg))
    if not geom_utm.is_valid:
        geom_utm = shapely.make_valid(geom_utm)
    area_km2 = geom_utm.area / 1e6
    if max_area_km2 is not None and area_km2 > max_area_km2:
        raise AOIError(
            f"AOI is too large: {area_km2:,.1f} km² > limit {max_area_km2:,.1f} km² "
            "(raise AGROSTRESS_INGEST_MAX_AREA_KM2 or use the batch pipeline)"
        )
    r = float(resolution)
    xmin, ymin, xmax, ymax = geom_utm.bounds
    bounds = (
        math.floor(xmin / r) * r,
        math.floor(ymin / r) * r,
        math.ceil(xmax / r) * r,
        math.ceil(ymax / r) * r,
    )
    if bounds[2] == bounds[0] or bounds[3] == bounds[1]:
        bounds = (
            bounds[0],
            bounds[1],
            max(bounds[2], bounds[0] + r),
            max(bounds[3], bounds[1] + r),
        )
    aoi = AOI(geom_wgs84, geom_utm, out_epsg, bounds, r)
    if area_km2 < 0.01 and not aoi.mask().any():  # larger AOIs always cover pixel centres
        raise AOIError(
            f"AOI covers no {r:g} m pixel centre (area {area_km2 * 1e6:,.0f} m²): it is too small"
        )
    return aoi


# --------------------------------------------------------------------------- internals


def read_vector(path: Path, what: str, error: type[Exception]) -> Any:
    """A vector file (any OGR format) as a GeoDataFrame; a missing or unreadable file raises
    ``error`` naming ``what`` it should have held."""
    import geopandas as gpd

    if not path.exists():
        raise error(f"{what} file not found: {path}")
    try:
        return gpd.read_file(path)
    except Exception as e:  # pyogrio/fiona raise their own error types
        raise error(f"cannot read {what} file {path}: {e}") from None


def _read_geometry(src: Any, crs: Any) -> tuple[BaseGeometry, CRS | None]:
    import geopandas as gpd

    given = CRS.from_user_input(crs) if crs is not None else None
    if isinstance(src, gpd.GeoDataFrame | gpd.GeoSeries):
        gs = src.geometry if isinstance(src, gpd.GeoDataFrame) else src
        return _union(list(gs.values)), given or (CRS.from_user_input(gs.crs) if gs.crs else None)
    if isinstance(src, BaseGeometry):
        return src, given
    if isinstance(src, str) and src.lstrip().startswith("{"):
        try:
            src = json.loads(src)
        except json.JSONDecodeError as e:
            raise AOIError(f"AOI is not valid GeoJSON: {e}") from e
    if isinstance(src, Mapping):
        return _from_geojson(src), given or _geojson_crs(src)
    if isinstance(src, str | Path):
        path = Path(src)
        gdf = read_vector(path, "AOI", AOIError)
        if gdf.empty:
            raise AOIError(f"AOI file {path} holds no features (empty AOI)")
        file_crs = CRS.from_user_input(gdf.crs) if gdf.crs else None
        return _union(list(gdf.geometry.values)), given or file_crs
    raise AOIError(f"cannot use {type(src).__name__} as an AOI")


def _from_geojson(obj: Mapping[str, Any]) -> BaseGeometry:
    kind = obj.get("type")
    try:
        if kind == "FeatureCollection":
            feats = obj.get("features") or []
            if not feats:
                raise AOIError("AOI FeatureCollection holds no features (empty AOI)")
            return _union([_from_geojson(f) for f in feats])
        if kind == "Feature":
            g = obj.get("geometry")
            if not g:
                raise AOIError("AOI Feature has no geometry (empty AOI)")
            return shape(g)
        if kind is None:
            raise AOIError("AOI GeoJSON has no 'type'")
        return shape(obj)
    except AOIError:
        raise
    except Exception as e:
        raise AOIError(f"AOI is not valid GeoJSON ({kind}): {e}") from e


def _geojson_crs(obj: Mapping[str, Any]) -> CRS | None:
    member = obj.get("crs")
    if not member:
        return None
    try:
        name = member.get("properties", {}).get("name") if isinstance(member, Mapping) else member
        return CRS.from_user_input(name)
    except Exception as e:
        raise AOIError(f"AOI GeoJSON has an unreadable 'crs' member {member!r}: {e}") from e


def _union(geoms: list[BaseGeometry | None]) -> BaseGeometry:
    geoms = [g for g in geoms if g is not None and not g.is_empty]
    if not geoms:
        raise AOIError("AOI geometry is empty")
    if len(geoms) == 1:
        return geoms[0]
    for g in geoms:
        _check_geometry(g)
    return shapely.union_all(geoms)


def _check_geometry(geom: BaseGeometry) -> Polygon | MultiPolygon:
    if geom is None or geom.is_empty:
        raise AOIError("AOI geometry is empty")
    if geom.geom_type == "GeometryCollection":
        parts = list(geom.geoms)
        if parts and all(p.geom_type in ("Polygon", "MultiPolygon") for p in parts):
            geom = shapely.union_all(parts)
    if geom.geom_type not in ("Polygon", "MultiPolygon"):
        raise AOIError(f"AOI must be a Polygon or MultiPolygon, got {geom.geom_type}")
    if geom.has_z:
        geom = shapely.force_2d(geom)
    if not geom.is_valid:
        raise AOIError(f"AOI geometry is invalid: {explain_validity(geom)} (fix it, e.g. in QGIS)")
    if geom.area <= 0:
        raise AOIError("AOI polygon has zero area")
    return geom


def _to_crs(geom: BaseGeometry, src: CRS, dst: CRS) -> Any:
    t = Transformer.from_crs(src, dst, always_xy=True)
    out = shapely.transform(geom, t.transform, interleaved=False)
    if not np.all(np.isfinite(np.asarray(out.bounds))):
        raise AOIError(f"AOI cannot be projected from {src.to_string()} to {dst.to_string()}")
    return out
