"""Liveness and readiness probes (no API key needed)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool

import agrostress
from api.errors import ApiError
from api.schemas import ErrorResponse, Health, Readiness
from api.service import Service, get_service

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="Liveness: the process answers")
def healthz() -> Health:
    return Health(status="ok", version=getattr(agrostress, "__version__", None))


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Readiness: database, default model, analysis core and job runner are up",
    responses={503: {"model": ErrorResponse, "description": "not ready (details per check)"}},
)
async def readyz(svc: Service = Depends(get_service)) -> Readiness:
    checks: dict[str, str] = {}
    try:
        await run_in_threadpool(svc.store.ping)
        checks["database"] = "ok"
    except Exception as e:  # noqa: BLE001 - reported, not raised
        checks["database"] = f"error: {type(e).__name__}"
    default = svc.models.get(None)
    checks["model"] = (
        f"ok ({default.id} v{default.card.version})"
        if default
        else "error: default model not loaded: " + "; ".join(svc.models.errors.values())
    )
    checks["core"] = "ok" if svc.runner.core is not None else f"error: {svc.core_error}"
    checks["jobs"] = "ok" if svc.runner.alive() else "error: job runner stopped"
    if any(v.startswith("error") for v in checks.values()):
        raise ApiError(503, "not_ready", "the service is not ready", details=checks)
    return Readiness(status="ready", checks=checks)
