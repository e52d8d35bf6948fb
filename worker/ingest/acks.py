"""Acknowledging a page: by the signed link in its message, or by the API with a token."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import structlog
from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse

from worker.adapters.base import Unauthorized
from worker.ingest.problems import problem
from worker.ingest.services import Services
from worker.ingest.signatures import verify_bearer
from worker.notify.paging import ack_signature_valid, acknowledge

log = structlog.get_logger("escalera.ingest")
MAX_ROW_ID = 2**63 - 1  # a BIGINT: a larger id is no row, and the database driver would raise


def acks_router(services: Services) -> APIRouter:
    router = APIRouter(tags=["acknowledgements"])
    config = services.settings

    @router.post(
        "/v1/notifications/{notification_id}/ack",
        summary="Acknowledge a page: it stops repeating",
    )
    @router.get("/v1/notifications/{notification_id}/ack", include_in_schema=False)
    def acknowledge_page(
        notification_id: Annotated[int, Path(ge=1, le=MAX_ROW_ID)],
        request: Request,
        sig: str | None = None,
    ) -> Response:
        if sig is not None:  # the signed link in the message
            secret = config.ack_secret.get_secret_value() if config.ack_secret else None
            if secret is None or not ack_signature_valid(secret, notification_id, sig):
                raise Unauthorized("this acknowledgement link is not valid", field="sig")
        else:
            verify_bearer(
                {k.lower(): v for k, v in request.headers.items()},
                [token.get_secret_value() for token in config.api_tokens],
            )
        with services.sessions.begin() as session:
            ids = acknowledge(session, notification_id, datetime.now(UTC))
        if not ids:
            return problem(404, f"no notification {notification_id}")
        if services.repeats is not None:
            services.repeats.disarm(ids)
        log.info("page_acknowledged", notification_id=notification_id, via="link" if sig else "api")
        return JSONResponse({"acknowledged": len(ids)})

    return router
