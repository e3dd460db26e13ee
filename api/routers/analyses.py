"""``/v1/analyses``: submit an analysis, follow it, fetch its artefacts."""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse

from agrostress.settings import Settings
from api.clients import RateLimiter, owner_filter
from api.db import utcnow
from api.errors import ApiError, error_response, jsonable
from api.jobs.artefacts import ARTEFACTS, ID_RE
from api.jobs.core import ERROR_STATUS
from api.schemas import Analysis, AnalysisList, AnalysisRequest, ErrorResponse, Status
from api.service import (
    Service,
    get_api_settings,
    get_library_settings,
    get_service,
    require_api_key,
)
from api.settings import ApiSettings
from api.validation import prepare

ArtefactName = enum.StrEnum("ArtefactName", {n.replace(".", "_"): n for n in ARTEFACTS})

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "missing or wrong API key"},
    404: {"model": ErrorResponse, "description": "no such analysis"},
    422: {"model": ErrorResponse, "description": "invalid request"},
}

router = APIRouter(
    prefix="/v1/analyses",
    tags=["analyses"],
    dependencies=[Depends(require_api_key)],
    responses={401: ERRORS[401], 422: ERRORS[422]},  # every 422 is the service's error body
)

AnalysisId = Annotated[
    str, Path(description="analysis id (32 hex digits)", examples=["3f2b6c1e9a0d4e5f8a7b6c5d4e3f2a1b"])
]


def _iso(t: dt.datetime | None) -> str | None:
    if t is None:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.isoformat(timespec="seconds").replace("+00:00", "Z")


def _links(request: Request, row: dict[str, Any]) -> dict[str, str]:
    base = f"{request.scope.get('root_path', '')}/v1/analyses/{row['id']}"
    links = {"self": base}
    for name in (row.get("result") or {}).get("artefacts", []):
        if name in ARTEFACTS:
            links[name] = f"{base}/{name}"
    return links


def render(request: Request, row: dict[str, Any], *, with_result: bool = True) -> dict[str, Any]:
    """The public JSON of an analysis row."""
    req = row["request"] or {}
    error = None
    if row.get("error_code"):
        error = {"code": row["error_code"], "message": row.get("error_message") or ""}
    return jsonable(
        {
            "id": row["id"],
            "status": row["status"],
            "progress": float(row.get("progress") or 0.0),
            "stage": row.get("stage"),
            "created_at": _iso(row["created_at"]),
            "started_at": _iso(row.get("started_at")),
            "finished_at": _iso(row.get("finished_at")),
            "model": {
                "id": row["model_id"],
                "name": row.get("model_name") or row["model_id"],
                "version": row.get("model_version") or "",
            },
            "request": {
                k: req.get(k)
                for k in ("source", "start", "end", "as_of", "explain", "method", "crops",
                          "n_fields", "area_ha", "extent_ha")
            },
            "result": row.get("result") if with_result else None,
            "error": error,
            "attempts": int(row.get("attempts") or 0),
            "links": _links(request, row),
        }
    )


def _get_row(svc: Service, analysis_id: str, client: str) -> dict[str, Any]:
    """The row of an analysis ``client`` may see (404 for every other: no hint it exists)."""
    visible = owner_filter(svc.api, client)
    row = svc.store.get(analysis_id, visible) if ID_RE.fullmatch(analysis_id) else None
    if row is None:
        raise ApiError(404, "not_found", f"no analysis with id {analysis_id[:64]!r}")
    return row


@router.post(
    "",
    response_model=Analysis,
    status_code=201,
    summary="Analyse fields: yellow rust or nitrogen deficiency, where, and why",
    description=(
        "Checks the fields and period, then runs the analysis. Requests whose pixel grid "
        "(the fields' bounding box) is at most `AGROSTRESS_API_SYNC_MAX_HA` (500 ha) answer "
        "**201** with the result when it finishes within `AGROSTRESS_API_SYNC_TIMEOUT_S`; "
        "larger ones (or with the header `Prefer: respond-async`) answer **202** at once: "
        "follow `Location` / `links.self` for progress and the result. A synchronous analysis "
        "that fails answers the error (with `details.analysis_id`)."
    ),
    responses={
        202: {"model": Analysis, "description": "accepted: running in the background"},
        413: {"model": ErrorResponse,
              "description": "a size limit (body, vertices, area, estimated memory)"},
        422: ERRORS[422],
        429: {"model": ErrorResponse,
              "description": "too many analyses queued (on the server or of this client) or "
              "submitted too fast; see Retry-After"},
        502: {"model": ErrorResponse, "description": "the data source failed"},
        503: {"model": ErrorResponse, "description": "model / core / source unavailable"},
    },
)
async def create_analysis(
    body: AnalysisRequest,
    request: Request,
    prefer: Annotated[
        str | None, Header(description="`respond-async` to always answer 202 at once")
    ] = None,
    svc: Service = Depends(get_service),
    settings: Settings = Depends(get_library_settings),
    api: ApiSettings = Depends(get_api_settings),
    client: str = Depends(require_api_key),
) -> JSONResponse:
    runner = svc.runner
    wait_s = svc.limiter.take(client) if owner_filter(api, client) is not None else 0.0
    if wait_s > 0:  # clients have limits of their own once they have keys
        raise ApiError(
            429, "rate_limited",
            f"more than {api.client_rate_per_min:g} analyses a minute "
            f"({ApiSettings.env_name('client_rate_per_min')}); retry in {wait_s:.0f} s",
            details={"limit": api.client_rate_per_min,
                     "setting": ApiSettings.env_name("client_rate_per_min")},
            headers={"Retry-After": RateLimiter.retry_after(wait_s)},
        )
    if runner.core is None:
        raise ApiError(503, "core_unavailable", f"analyses are unavailable: {svc.core_error}")
    served = svc.models.get(body.model)
    if served is None:
        if body.model is not None:
            raise ApiError(
                422,
                "unknown_model",
                f"unknown model {body.model!r}; available: "
                + (", ".join(sorted(svc.models.models)) or "none"),
            )
        raise ApiError(503, "model_unavailable", "the default model is not loaded")
    prepared = await run_in_threadpool(prepare, body, settings, api, served.id)
    runner.admit(client)  # a refused request leaves no row
    row = await run_in_threadpool(svc.store.create, prepared.stored, served.ref(),
                                  runner.instance, client)
    try:
        fut = runner.submit(row["id"], client)
    except ApiError:  # the queue filled up in between: nothing is kept either
        await run_in_threadpool(svc.store.delete, row["id"])
        raise
    sync = "respond-async" not in (prefer or "").lower() and (
        prepared.extent_ha <= api.sync_max_ha
    )
    if sync:
        await asyncio.wait({asyncio.wrap_future(fut)}, timeout=api.sync_timeout_s)
    row = await run_in_threadpool(svc.store.get, row["id"])
    assert row is not None
    out = render(request, row)
    location = {"Location": out["links"]["self"]}
    if row["status"] == Status.done:
        return JSONResponse(out, status_code=201, headers=location)
    if row["status"] == Status.failed and sync:
        code = row["error_code"] or "analysis_failed"
        return error_response(
            ERROR_STATUS.get(code, 500),
            code,
            row.get("error_message") or code,
            {"analysis_id": row["id"], "links": out["links"]},
            headers=location,
        )
    return JSONResponse(out, status_code=202, headers={**location, "Retry-After": "2"})


@router.get("", response_model=AnalysisList,
            summary="Your recent analyses (newest first, no results)")
def list_analyses(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    status: Status | None = None,
    svc: Service = Depends(get_service),
    client: str = Depends(require_api_key),
) -> dict[str, Any]:
    rows, total = svc.store.list_rows(
        limit=limit, offset=offset, status=status.value if status else None,
        client=owner_filter(svc.api, client),
    )
    return {
        "items": [render(request, r, with_result=False) for r in rows],
        "total": total,
        "limit": limit,
        "offset": offset,
    }


@router.get(
    "/{analysis_id}",
    response_model=Analysis,
    summary="Status, progress and result of an analysis",
    responses={404: ERRORS[404]},
)
def get_analysis(
    analysis_id: AnalysisId, request: Request, svc: Service = Depends(get_service),
    client: str = Depends(require_api_key),
) -> dict[str, Any]:
    return render(request, _get_row(svc, analysis_id, client))


RENDER_STALE_S = 300.0
"""A PNG another process has been drawing for longer is taken as never coming (it stopped)."""


def _after_rendering(svc: Service, row: dict[str, Any], client: str) -> dict[str, Any]:
    """The row once its PNGs are drawn: drawn now when this process holds the result (see
    :mod:`api.jobs.renders`), else 503 ``artefact_rendering`` with Retry-After while another
    process may still draw them."""
    analysis_id = row["id"]
    if svc.runner.renders.pending_here(analysis_id):
        svc.runner.renders.draw(analysis_id)
        return _get_row(svc, analysis_id, client)
    updated = row.get("updated_at") or row.get("finished_at")
    if updated is not None and (utcnow() - updated).total_seconds() < RENDER_STALE_S:
        raise ApiError(503, "artefact_rendering",
                       f"analysis {analysis_id}'s PNGs are still being drawn; retry shortly",
                       headers={"Retry-After": "1"})
    return row


@router.get(
    "/{analysis_id}/{artefact}",
    summary="An artefact of a finished analysis",
    description=(
        "`stress_map.tif` (uint8 COG: 0 healthy, 1 nitrogen_deficiency, 2 yellow_rust, 255 no "
        "data), `probabilities.tif`, `stress_map.png`, `zones.geojson` (the map's class zones, "
        "EPSG:4326), `summary.json`; with `explain`: `attributions.json`, `attributions.png`, "
        "`evidence.tif`."
    ),
    response_class=FileResponse,
    responses={
        200: {
            "content": {media: {} for media in sorted(set(ARTEFACTS.values()))},
            "description": "the file",
        },
        404: {"model": ErrorResponse, "description": "no such analysis or artefact"},
        409: {"model": ErrorResponse, "description": "the analysis has not finished"},
        503: {"model": ErrorResponse,
              "description": "the PNG is still being drawn by another server process "
              "(`Retry-After`)"},
    },
)
def get_artefact(
    analysis_id: AnalysisId,
    artefact: ArtefactName,  # type: ignore[valid-type]
    svc: Service = Depends(get_service),
    client: str = Depends(require_api_key),
) -> FileResponse:
    row = _get_row(svc, analysis_id, client)
    name = str(artefact.value)  # type: ignore[attr-defined]
    if row["status"] != Status.done:
        raise ApiError(
            409,
            "analysis_not_done",
            f"analysis {analysis_id} is {row['status']}; artefacts exist once it is done",
        )
    path = svc.runner.artefact_dir(analysis_id) / name
    if name in (row.get("result") or {}).get("rendering", []) and not path.is_file():
        row = _after_rendering(svc, row, client)
    if name not in (row.get("result") or {}).get("artefacts", []) or not path.is_file():
        hint = " (request explain=true)" if name.startswith(("attributions", "evidence")) else ""
        raise ApiError(
            404, "artefact_not_found", f"analysis {analysis_id} has no {name}{hint}"
        )
    return FileResponse(
        path,
        media_type=ARTEFACTS[name],
        headers={
            "Cache-Control": "private, max-age=86400",
            "Content-Disposition": f'inline; filename="{analysis_id}_{name}"',
        },
    )
