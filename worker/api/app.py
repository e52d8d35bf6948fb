"""The ingest service: verify, parse, validate, enqueue; then 202, or a problem naming the reason.

Every write is refused whole or accepted whole: a 202 means every event of the request is on the
queue, and nothing from a refused request is queued.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import structlog
from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError

from scheduler.timeline import check_event
from shared import metrics
from shared.config import Settings
from shared.errors import EvaluationError
from shared.events import Event
from worker.adapters.base import RejectedRequest, Unauthorized, Unmappable, WebhookRequest
from worker.adapters.signatures import verify_escalera_hmac
from worker.api.acks import acks_router
from worker.api.board.routes import (
    SIGN_IN_REQUIRED,
    STATIC,
    board_router,
    now_utc,
    sign_in_redirect,
)
from worker.api.body import parse_json, read_body
from worker.api.direct import IngestApp
from worker.api.keys import (
    Key,
    Scope,
    authorize,
    check_namespace,
    check_not_namespaced,
    check_sources,
    hmac_key,
    keys,
    namespaced,
    requires,
)
from worker.api.openapi import events_body, webhook_body
from worker.api.probes import probes_router
from worker.api.problems import framework_refusals, problem, store_outages
from worker.api.read_slots import ReadSlots
from worker.api.reports import reports_router
from worker.api.scrape import scrape_router
from worker.api.services import Services, Webhook
from worker.api.tickets import tickets_router
from worker.api.window import EventWindow
from worker.policies.book import PolicyBook

__all__ = ["Services", "Webhook", "create_app"]

log = structlog.get_logger("escalera.ingest")


def _refusals(services: Services) -> Any:
    """Every refusal: counted, logged (never with a secret) and answered as problem+json."""

    async def refused(request: Request, exc: RejectedRequest) -> JSONResponse:
        if source := _ingest_source(request, services.webhooks):
            metrics.request_refused(source, exc.status, getattr(exc, "metric_reason", None))
        log.info(
            "request_refused",
            source=request.path_params.get("source", "api"),
            path=request.url.path,
            status=exc.status,
            reason=exc.reason,
            field=exc.field,
        )
        response = problem(
            exc.status, exc.reason, field=exc.field, errors=getattr(exc, "errors", None)
        )
        if (after := getattr(exc, "retry_after", None)) is not None:  # come back then (a 503)
            response.headers["Retry-After"] = str(after)
        return response

    return refused


def create_app(services: Services, *, clock: Callable[[], datetime] = now_utc) -> FastAPI:
    """The ingest app; ``clock`` is the board's (a test puts its own)."""
    config = services.settings
    docs = config.api_docs
    app = IngestApp(
        title="Escalera ingest",
        version="0.1.0",
        description="Ticket events in (canonical or portal webhooks); SLA state out.",
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    metrics.label_sources(config.metric_sources() | set(services.webhooks))
    readers = [Depends(requires(config, Scope.READ))]
    # Ticket reads and reports evaluate tickets: they take turns, the same ones.
    turns = ReadSlots(config.ticket_reads_at_once, config.ticket_reads_waiting)
    app.include_router(
        reports_router(config, services.policies, services.sessions, turns, services.directory),
        dependencies=readers,
    )
    framework_refusals(app)
    store_outages(app)

    app.exception_handler(RejectedRequest)(_refusals(services))
    window = EventWindow.from_settings(config)  # the settings are the process's, fixed

    @app.post(
        "/v1/events",
        status_code=202,
        summary="Canonical events: one object or an array",
        openapi_extra=events_body(config.max_batch),
    )
    async def post_events(request: Request) -> Response:
        body = await read_body(request, config.max_body_bytes)
        key = _authenticate_api(config, body, request)
        payload = parse_json(request, body)
        indexed = isinstance(payload, list)
        events = _canonical_events(payload, config.max_batch)
        check_sources(key, events, indexed=indexed)
        check_namespace(events, indexed=indexed)
        _check_events(services, window, events, indexed=indexed)
        events = namespaced(events)
        await services.publisher.publish(events)
        metrics.events_ingested(events)
        log.debug("events_accepted", source="api", key=key.name, count=len(events))
        return _accepted(len(events))

    app.direct("POST", "/v1/events", post_events)  # the hot route: no middleware layers

    @app.post(
        "/v1/webhooks/{source}",
        status_code=202,
        summary="A portal's own webhook payload",
        openapi_extra=webhook_body(),
    )
    async def post_webhook(source: str, request: Request) -> Response:
        webhook = services.webhooks.get(source)
        if webhook is None:
            raise RejectedRequest(
                f"unknown source {source!r} (known: {', '.join(services.webhooks)})"
            )
        body = await read_body(request, config.max_body_bytes)
        received = WebhookRequest(
            body, {k.lower(): v for k, v in request.headers.items()}, datetime.now(UTC)
        )
        if webhook.secret is None:
            raise Unauthorized(
                f"no secret is configured for {source} webhooks (ESCALERA_{source.upper()}_SECRET)"
            )
        webhook.adapter.verify(received, webhook.secret)
        events = webhook.adapter.to_events(parse_json(request, body), received)
        check_not_namespaced(events)
        _check_events(services, window, events, indexed=False)
        await services.publisher.publish(events)
        metrics.events_ingested(events)
        # the worker logs every applied event; per-request lines here are for debugging
        log.debug(
            "events_accepted",
            source=source,
            count=len(events),
            ticket_id=events[0].ticket_id if events else None,
        )
        return _accepted(len(events))

    app.include_router(tickets_router(services, turns), dependencies=readers)
    app.include_router(acks_router(services))
    app.include_router(probes_router(services))
    app.include_router(scrape_router(services), dependencies=readers)
    # The board: pages for people, signed in by a session cookie (worker/api/board/).
    app.include_router(board_router(services, turns, clock))
    app.exception_handler(SIGN_IN_REQUIRED)(sign_in_redirect)
    app.mount("/board/static", StaticFiles(directory=STATIC), name="board-static")
    return app


def _ingest_source(request: Request, webhooks: Mapping[str, Webhook]) -> str | None:
    """The source label of a refused ingest request (bounded: a path names any source)."""
    if request.url.path == "/v1/events":
        return "api"
    if request.url.path.startswith("/v1/webhooks/"):
        source = request.path_params.get("source")
        return source if source in webhooks else "unknown"
    return None  # not an ingest request (an acknowledgement)


def _accepted(count: int) -> Response:
    # a ready response: FastAPI's encoding of a returned dict costs ~5% of a request's CPU
    return Response(b'{"accepted":%d}' % count, status_code=202, media_type="application/json")


def _authenticate_api(config: Settings, body: bytes, request: Request) -> Key:
    """The writer: the HMAC signer when the request is signed, else a write-scoped key."""
    headers = request.headers  # looked up without regard to case, as a lower-cased copy was
    if "x-escalera-signature" in headers and config.api_hmac_secret is not None:
        verify_escalera_hmac(
            body, headers, config.api_hmac_secret.get_secret_value(), datetime.now(UTC)
        )
        return hmac_key(config)
    if not keys(config) and config.api_hmac_secret is None:
        raise Unauthorized(
            "no API credentials are configured "
            "(ESCALERA_API_KEYS, ESCALERA_API_TOKENS or ESCALERA_API_HMAC_SECRET)"
        )
    return authorize(config, headers, Scope.WRITE)


def _canonical_events(payload: Any, max_batch: int) -> list[Event]:
    items = payload if isinstance(payload, list) else [payload]
    if isinstance(payload, list) and not payload:
        raise Unmappable("an empty array holds no events")
    if len(items) > max_batch:
        raise RejectedRequest(f"{len(items)} events in one request; the limit is {max_batch}")
    events, errors = [], []
    for index, item in enumerate(items):
        prefix = f"[{index}]." if isinstance(payload, list) else ""
        if not isinstance(item, dict):
            errors.append(
                {"field": prefix.rstrip(".") or "body", "message": "an event is a JSON object"}
            )
            continue
        try:
            events.append(Event.model_validate(item))
        except ValidationError as exc:
            errors += [
                {
                    "field": _field(prefix, err["loc"]),
                    "message": err["msg"].removeprefix("Value error, "),
                }
                for err in exc.errors()
            ]
    if errors:
        first = errors[0]
        raise _Invalid(f"{first['field']}: {first['message']}", errors)
    return events


def _field(prefix: str, loc: tuple[int | str, ...]) -> str:
    """``[3].occurred_at``; an error of the whole event names the event (``[3]``, ``body``)."""
    path = ".".join(str(part) for part in loc)
    return prefix + path if path else prefix.rstrip(".") or "body"


class _Invalid(Unmappable):
    def __init__(self, reason: str, errors: list[dict[str, str]]) -> None:
        super().__init__(reason, field=errors[0]["field"])
        self.errors = errors


def _check_events(
    services: Services, window: EventWindow, events: Sequence[Event], *, indexed: bool
) -> None:
    """Refuse at the door events dated out of bounds, or that the policy can never evaluate."""
    errors = window.problems(events, datetime.now(UTC), indexed=indexed)
    if errors:
        raise _Invalid(f"{errors[0]['field']}: {errors[0]['message']}", errors)
    _check_against_policies(services.policies, events)


def _check_against_policies(policies: PolicyBook, events: Sequence[Event]) -> None:
    """Refuse at the door what the policy can never evaluate (unknown priority or plan)."""
    for event in events:
        try:
            check_event(policies.for_source(event.source).policy, event)
        except EvaluationError as exc:
            raise Unmappable(
                str(exc), field="priority" if "priority" in str(exc) else "plan"
            ) from exc
