"""Every failure is JSON: ``{"error": {"code": "...", "message": "...", "details": ...}}``.

Codes are stable (clients may switch on them); messages are for people. Unexpected exceptions
are logged with their traceback and answered ``500 internal_error`` without one.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from agrostress.jsonable import jsonable

LOGGER = logging.getLogger("agrostress.api")

STATUS_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


class ApiError(StarletteHTTPException):
    """An expected failure with a stable ``code`` (an HTTPException, so FastAPI passes it on)."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        *,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status_code=status_code, detail=message, headers=headers)
        self.code = code
        self.message = message
        self.details = details


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """The JSON body of an error response."""
    err: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        err["details"] = details
    return {"error": err}


def error_response(
    status_code: int,
    code: str,
    message: str,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A JSON error response."""
    return JSONResponse(
        error_body(code, message, jsonable(details)), status_code=status_code, headers=headers
    )


#: the detail FastAPI gives a body its JSON parser raised on (RecursionError, ValueError, …)
UNPARSABLE_BODY = "There was an error parsing the body"


def _validation_summary(exc: RequestValidationError) -> tuple[str, str, list[dict[str, Any]]]:
    errors = list(exc.errors())
    details = []
    for e in errors[:20]:
        loc = [str(p) for p in e.get("loc", ())]
        msg = str(e.get("msg", ""))
        ctx = e.get("ctx") or {}
        if e.get("type") == "json_invalid":  # loc is (body, character position)
            loc = ["body"]
            msg = (f"the body is not valid JSON (at character {e['loc'][-1]}: "
                   f"{ctx.get('error', 'decode error')})" if len(e.get("loc", ())) > 1
                   else "the body is not valid JSON")
        elif e.get("type") == "union_tag_invalid" and "tag" in ctx:
            msg = (
                f"GeoJSON type {ctx['tag']!r} is not accepted here; expected "
                f"{ctx.get('expected_tags', 'a polygonal type')}"
            )
        details.append({"loc": loc, "message": msg, "type": e.get("type", "")})
    geometry = any(len(d["loc"]) > 1 and d["loc"][:2] == ["body", "fields"] for d in details)
    code = "invalid_geometry" if geometry else "validation_error"
    parts = [f"{'.'.join(d['loc'][1:] or d['loc'])}: {d['message']}" for d in details[:3]]
    more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
    message = "invalid request: " + "; ".join(parts) + more if parts else "invalid request"
    return code, message, details


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that turn every exception into the JSON error shape."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status_code, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == UNPARSABLE_BODY:  # FastAPI's own words
            return error_response(
                422, "validation_error", "the body could not be read as JSON: not UTF-8, "
                "nested too deep or a number with too many digits",
                [{"loc": ["body"], "message": "unparsable JSON", "type": "json_invalid"}])
        code = STATUS_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return error_response(exc.status_code, code, message, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        code, message, details = _validation_summary(exc)
        return error_response(422, code, message, details)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        LOGGER.error(
            "unhandled error on %s %s", request.method, request.url.path, exc_info=exc
        )
        return error_response(500, "internal_error", "internal server error (logged)")
