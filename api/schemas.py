"""Request and response models (pydantic), with the examples shown in the OpenAPI schema.

Geometry here is only *shape-checked* (GeoJSON structure, finite numbers); the geometric checks
(closure, validity, coordinate ranges, limits) live in :mod:`api.validation`, which has the
settings.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# --------------------------------------------------------------------------- GeoJSON (RFC 7946)

Coordinate = Annotated[float, Field(allow_inf_nan=False)]
Position = Annotated[list[Coordinate], Field(min_length=2, max_length=3)]
Ring = Annotated[list[Position], Field(min_length=1)]

EXAMPLE_POLYGON: dict[str, Any] = {
    "type": "Polygon",
    "coordinates": [
        [[5.0, 51.0], [5.01, 51.0], [5.01, 51.0063], [5.0, 51.0063], [5.0, 51.0]]
    ],
}
"""About 44 ha of land near 5°E 51°N (about 73×73 pixels of 10 m)."""


class GeoModel(BaseModel):
    """GeoJSON objects may carry foreign members; they are ignored."""

    model_config = ConfigDict(extra="ignore")


class PolygonGeometry(GeoModel):
    type: Literal["Polygon"]
    coordinates: Annotated[list[Ring], Field(min_length=1)]


class MultiPolygonGeometry(GeoModel):
    type: Literal["MultiPolygon"]
    coordinates: Annotated[list[Annotated[list[Ring], Field(min_length=1)]], Field(min_length=1)]


PolygonalGeometry = Annotated[
    PolygonGeometry | MultiPolygonGeometry, Field(discriminator="type")
]


class Feature(GeoModel):
    type: Literal["Feature"]
    geometry: PolygonalGeometry
    properties: dict[str, Any] | None = None
    id: str | int | None = None


class FeatureCollection(GeoModel):
    type: Literal["FeatureCollection"]
    features: Annotated[list[Feature], Field(min_length=1)]


FieldsGeoJSON = Annotated[
    PolygonGeometry | MultiPolygonGeometry | Feature | FeatureCollection,
    Field(discriminator="type"),
]


# --------------------------------------------------------------------------- requests


class SourceName(enum.StrEnum):
    sentinelhub = "sentinelhub"
    stac = "stac"
    files = "files"
    simulated = "simulated"


class ExplainMethod(enum.StrEnum):
    ig = "ig"
    saliency = "saliency"
    gradientshap = "gradientshap"
    occlusion = "occlusion"


class CropPreset(enum.StrEnum):
    rpg = "rpg"
    eurocrops = "eurocrops"
    eurocrops_code = "eurocrops-code"


class AnalysisRequest(BaseModel):
    """One analysis: fields (GeoJSON, EPSG:4326), a period and a data source."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "fields": EXAMPLE_POLYGON,
                    "start": "2024-03-01",
                    "end": "2024-07-20",
                    "source": "simulated",
                    "explain": True,
                },
                {
                    "fields": {
                        "type": "FeatureCollection",
                        "features": [
                            {
                                "type": "Feature",
                                "properties": {"name": "north"},
                                "geometry": EXAMPLE_POLYGON,
                            }
                        ],
                    },
                    "start": "2024-03-01",
                    "end": "2024-07-20",
                    "source": "sentinelhub",
                },
            ]
        },
    )

    fields: FieldsGeoJSON = Field(
        description=(
            "GeoJSON in EPSG:4326 (lon, lat): a Polygon, MultiPolygon or Feature (one field) "
            "or a FeatureCollection (one field per feature; `properties.name` names it)"
        )
    )
    start: dt.date = Field(description="first date (inclusive), YYYY-MM-DD")
    end: dt.date = Field(description="last date (inclusive), YYYY-MM-DD")
    as_of: dt.date | None = Field(
        None, description="the date the call is made on, within the period (default: `end`): "
        "nothing acquired later is fetched or seen; in season, calls that are not confident "
        "yet are 'too_early'")
    source: SourceName = Field(description="where the Sentinel-2 L2A data come from")
    model: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@:+-]{0,63}$")] | None = Field(
        None, description="model id from GET /v1/models (default: the server's default model)"
    )
    explain: bool = Field(False, description="compute attributions (why this call)")
    method: ExplainMethod = Field(ExplainMethod.ig, description="attribution method")
    crop_column: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        None, description="the feature property that names each field's crop: fields whose "
        "crop is not winter wheat are 'not_wheat' (no stress call)")
    wheat_values: Annotated[list[Annotated[str, Field(max_length=64)]],
                            Field(min_length=1, max_length=50)] | None = Field(
        None, description="values of `crop_column` that mean winter wheat (case-insensitive)")
    crop_preset: CropPreset | None = Field(
        None, description="a parcel register's crop property and winter-wheat codes: rpg "
        "(CODE_CULTU: BTH, BDH), eurocrops (EC_hcat_n), eurocrops-code (EC_hcat_c)")


# --------------------------------------------------------------------------- responses


class Status(enum.StrEnum):
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"


class ErrorInfo(BaseModel):
    code: str = Field(examples=["invalid_geometry"])
    message: str = Field(examples=["fields: Self-intersection at (5.005, 51.003)"])
    details: Any = None


class ErrorResponse(BaseModel):
    """The body of every error response."""

    error: ErrorInfo


class FieldResult(BaseModel):
    """The analysis of one field."""

    model_config = ConfigDict(extra="allow")

    field_id: int = Field(description="1..n in request order")
    name: str | None = Field(None, description="properties.name / feature id, when given")
    call: str | None = Field(
        description="healthy | nitrogen_deficiency | yellow_rust | uncertain (the model does "
        "not know: weak evidence or input unlike its training) | too_early (in season: the "
        "evidence is not there yet) | not_wheat (its crop is not winter wheat: no stress "
        "call), or null (insufficient data)"
    )
    confidence: float | None = None
    class_fractions: dict[str, float | None] = Field(
        description="share of the field's pixels with an answer per class, 'uncertain', "
        "'too_early' and 'not_wheat'"
    )
    mean_probabilities: dict[str, float | None] = Field(default_factory=dict)
    valid_pixel_share: float | None = None
    area_ha: float | None = None
    call_since: str | None = Field(
        None, description="the first date from which the current call has held (a stress "
        "class only; in-season models)")
    timeline: dict[str, Any] | None = Field(
        None, description="the call as it would have been on every past date: dates, doys, "
        "calls and per-class mean probabilities, the as-of date last (in-season models)")


class AnalysisResultBody(BaseModel):
    model_config = ConfigDict(extra="allow")

    fields: list[FieldResult]
    totals: dict[str, Any] = Field(default_factory=dict)
    artefacts: list[str] = Field(default_factory=list)
    rendering: list[str] = Field(
        default_factory=list, description="PNG artefacts still being drawn after the answer: "
        "listed in `artefacts` already; asking for one waits until it is drawn")
    map_bounds_wgs84: list[float] | None = Field(
        None, description="west, south, east, north of the map rasters"
    )
    decision: dict[str, Any] | None = Field(
        None, description="the priors (and training prior) and abstention thresholds used"
    )
    reference: dict[str, Any] | None = Field(
        None, description="the wheat reference the fields were judged against (source: "
        "'scene' from the request's fields, or the model's 'built-in' one)"
    )
    season: dict[str, Any] | None = Field(
        None, description="the as-of date, the last acquisition on or before it, the grid "
        "steps the model saw and whether later ones were masked")


class ModelRef(BaseModel):
    id: str
    name: str
    version: str


class RequestSummary(BaseModel):
    source: str
    start: dt.date
    end: dt.date
    as_of: dt.date | None = None
    explain: bool
    method: str
    crops: dict[str, Any] | None = Field(
        None, description="the crop property and the values that mean winter wheat, when the "
        "request named them")
    n_fields: int
    area_ha: float
    extent_ha: float


class Analysis(BaseModel):
    """An analysis and, when done, its result and artefact links."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "3f2b6c1e9a0d4e5f8a7b6c5d4e3f2a1b",
                    "status": "done",
                    "progress": 1.0,
                    "stage": "done",
                    "created_at": "2024-07-21T10:00:00Z",
                    "started_at": "2024-07-21T10:00:00Z",
                    "finished_at": "2024-07-21T10:00:09Z",
                    "model": {"id": "ffdnn", "name": "ffdnn", "version": "1.0.0"},
                    "request": {
                        "source": "simulated",
                        "start": "2024-03-01",
                        "end": "2024-07-20",
                        "explain": False,
                        "method": "ig",
                        "n_fields": 1,
                        "area_ha": 44.1,
                        "extent_ha": 53.3,
                    },
                    "result": {
                        "fields": [
                            {
                                "field_id": 1,
                                "name": None,
                                "call": "yellow_rust",
                                "confidence": 0.81,
                                "class_fractions": {
                                    "healthy": 0.12,
                                    "nitrogen_deficiency": 0.07,
                                    "yellow_rust": 0.81,
                                },
                                "mean_probabilities": {
                                    "healthy": 0.15,
                                    "nitrogen_deficiency": 0.1,
                                    "yellow_rust": 0.75,
                                },
                                "valid_pixel_share": 0.97,
                                "area_ha": 44.1,
                            }
                        ],
                        "totals": {"total_ha": 53.3},
                        "artefacts": ["stress_map.tif", "stress_map.png", "zones.geojson"],
                    },
                    "error": None,
                    "links": {
                        "self": "/v1/analyses/3f2b6c1e9a0d4e5f8a7b6c5d4e3f2a1b",
                        "stress_map.png": (
                            "/v1/analyses/3f2b6c1e9a0d4e5f8a7b6c5d4e3f2a1b/stress_map.png"
                        ),
                    },
                }
            ]
        }
    )

    id: str
    status: Status
    progress: float = Field(ge=0, le=1)
    stage: str | None = Field(None, description="queued, fetch, simulate, analyse, write, done…")
    created_at: dt.datetime
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    model: ModelRef | None = None
    request: RequestSummary | None = None
    result: AnalysisResultBody | None = None
    error: ErrorInfo | None = None
    attempts: int = 0
    links: dict[str, str] = Field(default_factory=dict)


class AnalysisList(BaseModel):
    items: list[Analysis]
    total: int
    limit: int
    offset: int


class ModelInfo(BaseModel):
    """A served model (from its card)."""

    id: str = Field(description="use as `model` in POST /v1/analyses")
    name: str
    version: str
    architecture: str
    default: bool
    class_names: list[str]
    feature_spec: list[str]
    grid: str
    metrics: dict[str, Any] = Field(default_factory=dict)
    created: str = ""
    training_data_hash: str | None = None


class SourceInfo(BaseModel):
    name: str
    available: bool
    reason: str | None = None


class Health(BaseModel):
    status: str = Field(examples=["ok"])
    version: str | None = None


class Readiness(BaseModel):
    status: str = Field(examples=["ready"])
    checks: dict[str, str]
