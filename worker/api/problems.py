"""Refusals as RFC 9457 problem documents (``application/problem+json``), naming the field.

A store that does not answer (Redis, the database) is a 503 with ``Retry-After``, never a 500.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis
import sqlalchemy.exc
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = structlog.get_logger("escalera.ingest")

_TITLES = {
    400: "Malformed request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    413: "Body too large",
    410: "Gone",
    415: "Unsupported media type",
    422: "Invalid events",
    503: "Unavailable",
}


def problem(
    status: int,
    detail: str,
    *,
    field: str | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if field is not None:
        body["field"] = field
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


def framework_refusals(app: FastAPI) -> None:
    """FastAPI's own refusals as problem documents too: a bad path or query parameter (422,
    naming it), an unknown path (404), a method a path does not take (405)."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _where(error.get("loc", ())), "message": str(error.get("msg", "invalid"))}
            for error in exc.errors()
        ]
        first = errors[0] if errors else {"field": "request", "message": "invalid"}
        return problem(
            422, f"{first['field']}: {first['message']}", field=first["field"], errors=errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail))


# What a client library raises when its store does not answer (refused, timed out, gone away).
STORE_DOWN: dict[type[Exception], str] = {
    redis.exceptions.ConnectionError: "redis",
    redis.exceptions.TimeoutError: "redis",
    sqlalchemy.exc.OperationalError: "database",
    sqlalchemy.exc.InterfaceError: "database",
    sqlalchemy.exc.TimeoutError: "database",  # no pooled connection came free in time
}
RETRY_AFTER_S = 5


def store_outages(app: FastAPI) -> None:
    """A store down: 503 with ``Retry-After``, logged by store and error class (the error's
    text can hold a statement's parameters, so it is not logged)."""

    async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
        store = next(name for kind, name in STORE_DOWN.items() if isinstance(exc, kind))
        log.warning(
            "store_unavailable", store=store, path=request.url.path, error=type(exc).__name__
        )
        response = problem(503, f"the {store} does not answer: try again in a few seconds")
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return response

    for kind in STORE_DOWN:
        app.add_exception_handler(kind, _unavailable)


def _where(loc: Sequence[Any]) -> str:
    """``("query", "at")`` -> ``at``: the parameter's name, without where it was sent."""
    parts = [str(part) for part in loc]
    if parts and parts[0] in ("query", "path", "header", "body"):
        parts = parts[1:]
    return ".".join(parts) or "request"
