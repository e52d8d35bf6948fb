"""Refusals as RFC 9457 problem documents (``application/problem+json``), naming the field."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

_TITLES = {
    400: "Malformed request",
    401: "Unauthorized",
    404: "Not found",
    413: "Body too large",
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
