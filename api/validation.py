"""Checks of an analysis request against geometry rules and the configured limits.

Everything a job needs is checked here, before anything is queued, so a bad request answers
at once with 413/422 and a message naming the problem (and, for limits, the limit's value and
setting).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any

import shapely
from shapely.geometry import MultiPolygon, Polygon, shape
from shapely.validation import explain_validity

from agrostress.analysis.crops import CropSelection, crop_selection
from agrostress.ingest import AOIError, load_aoi
from agrostress.settings import Settings
from api.errors import ApiError
from api.jobs.memory import estimate_job_mb
from api.schemas import AnalysisRequest, Feature, FeatureCollection
from api.settings import ApiSettings

CRS84 = "EPSG:4326"


@dataclass(frozen=True)
class PreparedRequest:
    """A checked request in the normalised form stored with the analysis."""

    stored: dict[str, Any]
    area_ha: float
    extent_ha: float


FIRST_DATE = dt.date(2015, 6, 23)  # Sentinel-2A's launch
LAST_DATE = dt.date(2100, 12, 31)


def _invalid(message: str, **details: Any) -> ApiError:
    return ApiError(422, "invalid_geometry", message, details=details or None)


def _limit(status: int, code: str, message: str, limit: float, setting: str) -> ApiError:
    env = ApiSettings.env_name(setting)
    return ApiError(
        status,
        code,
        f"{message} (limit {limit:g}, {env})",
        details={"limit": limit, "setting": env},
    )


def _features(req: AnalysisRequest) -> list[tuple[dict[str, Any], str | None, dict[str, Any]]]:
    """(GeoJSON geometry dict, name, properties) per field, in request order."""
    f = req.fields
    if isinstance(f, FeatureCollection):
        feats = list(f.features)
    elif isinstance(f, Feature):
        feats = [f]
    else:
        return [(f.model_dump(), None, {})]
    out = []
    for feat in feats:
        props = feat.properties or {}
        name = props.get("name", feat.id)
        out.append((feat.geometry.model_dump(), None if name is None else str(name)[:200],
                    props))
    return out


def _crops(req: AnalysisRequest, feats: list[tuple[dict[str, Any], str | None, dict[str, Any]]]
           ) -> tuple[CropSelection | None, list[str | None]]:
    """The request's crop selection and each field's crop (text, or None without one)."""
    try:
        sel = crop_selection(None if req.crop_preset is None else req.crop_preset.value,
                             req.crop_column, req.wheat_values)
    except ValueError as e:
        raise ApiError(422, "invalid_crops", f"crops: {e}") from e
    if sel is None:
        return None, [None] * len(feats)
    crops = [props.get(sel.column) for _, _, props in feats]
    if all(c is None for c in crops):
        raise ApiError(422, "invalid_crops", f"crops: no field has the property "
                       f"{sel.column!r}; every feature of the FeatureCollection needs it")
    return sel, [None if c is None else str(c)[:200] for c in crops]


def _rings(geom: dict[str, Any]) -> list[list[list[float]]]:
    polys = [geom["coordinates"]] if geom["type"] == "Polygon" else geom["coordinates"]
    return [ring for poly in polys for ring in poly]


def _check_coordinates(geoms: list[dict[str, Any]], api: ApiSettings) -> None:
    n_vertices = sum(len(ring) for g in geoms for ring in _rings(g))
    if n_vertices > api.max_vertices:
        raise _limit(
            413,
            "too_many_vertices",
            f"the fields have {n_vertices} vertices",
            api.max_vertices,
            "max_vertices",
        )
    for i, g in enumerate(geoms, start=1):
        for ring in _rings(g):
            for lon, lat, *_ in ring:
                if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
                    raise _invalid(
                        f"field {i}: coordinate ({lon:g}, {lat:g}) is out of range; GeoJSON "
                        "positions are (longitude in [-180, 180], latitude in [-90, 90]) in "
                        "EPSG:4326",
                        field=i,
                    )
            if len(ring) < 4:
                raise _invalid(
                    f"field {i}: a polygon ring needs at least 4 positions (closed), "
                    f"got {len(ring)}",
                    field=i,
                )
            if ring[0][:2] != ring[-1][:2]:
                raise _invalid(
                    f"field {i}: polygon ring is not closed (first position {ring[0][:2]} "
                    f"≠ last {ring[-1][:2]})",
                    field=i,
                )


def _to_shape(geom: dict[str, Any], i: int) -> Polygon | MultiPolygon:
    try:
        shp = shape({"type": geom["type"], "coordinates": geom["coordinates"]})
    except (ValueError, TypeError, shapely.errors.ShapelyError) as e:
        raise _invalid(f"field {i}: not a valid {geom['type']}: {e}", field=i) from e
    shp = shapely.force_2d(shp)
    if shp.is_empty:
        raise _invalid(f"field {i}: the polygon is empty", field=i)
    if (shapely.make_valid(shp) if not shp.is_valid else shp).area == 0:
        raise _invalid(f"field {i}: the polygon is empty (zero area)", field=i)
    if not shp.is_valid:
        why = explain_validity(shp)
        m = re.fullmatch(r"(.+)\[(\S+) (\S+)\]", why)
        where = f" at ({m.group(2)}, {m.group(3)})" if m else ""
        raise _invalid(
            f"field {i}: invalid polygon: {m.group(1) if m else why}{where}", field=i
        )
    return shp


def source_problem(name: str, settings: Settings, api: ApiSettings) -> str | None:
    """Why ``name`` cannot be used on this server, or None."""
    if name not in api.sources:
        return f"source {name!r} is disabled on this server (AGROSTRESS_API_SOURCES)"
    if name == "sentinelhub" and not (
        settings.sh_client_id or settings.sh_config_profile
    ):
        return "source 'sentinelhub' has no credentials on this server (AGROSTRESS_SH_CLIENT_ID)"
    if name == "files" and settings.files_dir is None:
        return "source 'files' has no folder on this server (AGROSTRESS_FILES_DIR)"
    return None


def prepare(
    req: AnalysisRequest, settings: Settings, api: ApiSettings, model_id: str
) -> PreparedRequest:
    """Check ``req`` (geometry, limits, period, source) and normalise it for storage."""
    problem = source_problem(req.source.value, settings, api)
    if problem:
        raise ApiError(422, "source_unavailable", problem)
    if req.start >= req.end:
        raise ApiError(
            422, "invalid_period", f"start {req.start} is not before end {req.end}"
        )
    for name, day in (("start", req.start), ("end", req.end)):
        if not FIRST_DATE <= day <= LAST_DATE:
            raise ApiError(
                422, "invalid_period", f"{name} {day} lies outside {FIRST_DATE}..{LAST_DATE} "
                "(Sentinel-2 L2A series begin in 2015)")
    if req.as_of is not None and not req.start <= req.as_of <= req.end:
        raise ApiError(
            422, "invalid_period", f"as_of {req.as_of} lies outside the period "
            f"{req.start}..{req.end}"
        )
    span = (req.end - req.start).days + 1
    if span > api.max_date_span_days:
        raise _limit(
            422,
            "date_span_too_long",
            f"the period {req.start}..{req.end} spans {span} days",
            api.max_date_span_days,
            "max_date_span_days",
        )
    feats = _features(req)
    if len(feats) > api.max_fields:
        raise _limit(
            413,
            "too_many_fields",
            f"the request has {len(feats)} fields",
            api.max_fields,
            "max_fields",
        )
    crops, crop_of = _crops(req, feats)
    geoms = [g for g, _, _ in feats]
    _check_coordinates(geoms, api)
    shapes = [_to_shape(g, i) for i, g in enumerate(geoms, start=1)]
    union = shapely.union_all(shapes) if len(shapes) > 1 else shapes[0]
    try:
        aoi = load_aoi(union, crs=CRS84, max_area_km2=None)
    except AOIError as e:
        raise _invalid(f"fields: {e}") from e
    area_ha = aoi.area_km2 * 100.0
    if area_ha > api.max_area_ha:
        raise _limit(
            413,
            "area_too_large",
            f"the fields cover {area_ha:,.1f} ha",
            api.max_area_ha,
            "max_area_ha",
        )
    extent_ha = aoi.width * aoi.height * aoi.resolution**2 / 1e4
    if extent_ha > api.max_extent_ha:
        raise _limit(
            413,
            "extent_too_large",
            f"the fields' bounding box covers {extent_ha:,.1f} ha",
            api.max_extent_ha,
            "max_extent_ha",
        )
    fetched_days = ((req.as_of or req.end) - req.start).days + 1  # nothing later is fetched
    margin = 2 * settings.cache_tile_px if api.use_cache else 0  # the cache's snapped block
    memory_mb = estimate_job_mb((aoi.width + margin) * (aoi.height + margin), fetched_days,
                                bool(req.explain))
    if memory_mb > api.max_job_memory_mb:
        raise _limit(
            413,
            "job_too_large",
            f"this analysis would need about {memory_mb:,.0f} MB of memory "
            f"({extent_ha:,.1f} ha grid over {fetched_days} days); send fewer or closer fields "
            "or a shorter period",
            api.max_job_memory_mb,
            "max_job_memory_mb",
        )
    features = [
        {
            "type": "Feature",
            "properties": {"field_id": i, "name": name,
                           **({"crop": crop} if crops is not None else {})},
            "geometry": json.loads(shapely.to_geojson(shp)),
        }
        for i, ((_, name, _), shp, crop) in enumerate(zip(feats, shapes, crop_of, strict=True),
                                                      start=1)
    ]
    stored = {
        "fields": {"type": "FeatureCollection", "features": features},
        "start": req.start.isoformat(),
        "end": req.end.isoformat(),
        "as_of": (req.as_of or req.end).isoformat(),
        "source": req.source.value,
        "model": model_id,
        "explain": bool(req.explain),
        "method": req.method.value,
        **({"crops": crops.describe()} if crops is not None else {}),
        "n_fields": len(features),
        "area_ha": round(area_ha, 4),
        "extent_ha": round(extent_ha, 4),
        "memory_mb": round(memory_mb),
        "received_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    return PreparedRequest(stored=stored, area_ha=area_ha, extent_ha=extent_ha)
