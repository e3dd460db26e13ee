"""The served models and the data sources this server accepts."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from agrostress.settings import Settings
from api.schemas import ErrorResponse, ModelInfo, SourceInfo, SourceName
from api.service import (
    Service,
    get_api_settings,
    get_library_settings,
    get_service,
    require_api_key,
)
from api.settings import ApiSettings
from api.validation import source_problem

router = APIRouter(
    prefix="/v1",
    tags=["models"],
    dependencies=[Depends(require_api_key)],
    responses={401: {"model": ErrorResponse, "description": "missing or wrong API key"},
               422: {"model": ErrorResponse, "description": "invalid request"}},
)


@router.get("/models", response_model=list[ModelInfo], summary="Models served (from their cards)")
def list_models(svc: Service = Depends(get_service)) -> list[ModelInfo]:
    return [ModelInfo(**m.info()) for m in svc.models.models.values()]


@router.get(
    "/sources", response_model=list[SourceInfo], summary="Data sources and their availability"
)
def list_sources(
    settings: Settings = Depends(get_library_settings),
    api: ApiSettings = Depends(get_api_settings),
) -> list[SourceInfo]:
    out = []
    for s in SourceName:
        problem = source_problem(s.value, settings, api)
        out.append(SourceInfo(name=s.value, available=problem is None, reason=problem))
    return out
