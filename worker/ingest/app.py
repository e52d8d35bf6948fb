"""The ingest service: verify, parse, validate, enqueue; then 202, or a problem naming the reason.

Every write is refused whole or accepted whole: a 202 means every event of the request is on the
queue, and nothing from a refused request is queued.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import structlog
from fastapi import FastAPI, Path, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from scheduler.evaluate import evaluate
from scheduler.timeline import check_event
from scheduler.timer_index import TimerIndex
from shared import metrics
from shared.config import Settings
from shared.db.models import Ticket
from shared.errors import EvaluationError, TicketNotCreated
from shared.events import Event
from worker.adapters.base import Adapter, RejectedRequest, Unauthorized, Unmappable, WebhookRequest
from worker.apply import stored_events
from worker.ingest.body import parse_json, read_body
from worker.ingest.openapi import events_body, webhook_body
from worker.ingest.problems import framework_refusals, problem
from worker.ingest.publisher import Publisher
from worker.ingest.reports import reports_router
from worker.ingest.signatures import verify_bearer, verify_escalera_hmac
from worker.ingest.window import EventWindow
from worker.metrics_export import QueueDepth, scrape_registry
from worker.notify.paging import ack_signature_valid, acknowledge
from worker.policies import PolicyBook

log = structlog.get_logger("escalera.ingest")
MAX_ROW_ID = 2**63 - 1  # a BIGINT: a larger id is no row, and the database driver would raise


@dataclass(frozen=True)
class Webhook:
    adapter: Adapter
    secret: str | None  # None: not configured, every request is refused


@dataclass(frozen=True)
class Services:
    settings: Settings
    policies: PolicyBook
    publisher: Publisher
    sessions: sessionmaker[Session]
    webhooks: Mapping[str, Webhook]
    redis_ping: Any  # () -> bool
    repeats: TimerIndex | None = None  # acknowledged pages stop repeating
    queue_depth: QueueDepth | None = None  # reported by /metrics


def _refusals(services: Services) -> Any:
    """Every refusal: counted, logged (never with a secret) and answered as problem+json."""

    async def refused(request: Request, exc: RejectedRequest) -> JSONResponse:
        if source := _ingest_source(request, services.webhooks):
            metrics.request_refused(source, exc.status)
        log.info(
            "request_refused",
            source=request.path_params.get("source", "api"),
            path=request.url.path,
            status=exc.status,
            reason=exc.reason,
            field=exc.field,
        )
        return problem(exc.status, exc.reason, field=exc.field, errors=getattr(exc, "errors", None))

    return refused


def create_app(services: Services) -> FastAPI:
    app = FastAPI(
        title="Escalera ingest",
        version="0.1.0",
        description="Ticket events in (canonical or portal webhooks); SLA state out.",
    )
    config = services.settings
    registry = scrape_registry(services.queue_depth)
    app.include_router(reports_router(config, services.policies, services.sessions))
    framework_refusals(app)

    app.exception_handler(RejectedRequest)(_refusals(services))

    @app.post(
        "/v1/events",
        status_code=202,
        summary="Canonical events: one object or an array",
        openapi_extra=events_body(config.max_batch),
    )
    async def post_events(request: Request) -> Response:
        body = await read_body(request, config.max_body_bytes)
        _authenticate_api(config, body, request)
        payload = parse_json(request, body)
        events = _canonical_events(payload, config.max_batch)
        _check_events(services, events, indexed=isinstance(payload, list))
        await services.publisher.publish(events)
        metrics.events_ingested(events)
        log.debug("events_accepted", source="api", count=len(events))
        return _accepted(len(events))

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
        _check_events(services, events, indexed=False)
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

    @app.get("/v1/tickets/{source}/{ticket_id}", summary="A ticket's SLA, in the simulate shape")
    def get_ticket(source: str, ticket_id: str, at: datetime | None = None) -> Response:
        if at is not None and at.tzinfo is None:
            return problem(400, "`at` needs a UTC offset", field="at")
        return _ticket_sla(services, source, ticket_id, at or datetime.now(UTC))

    @app.post(
        "/v1/notifications/{notification_id}/ack", summary="Acknowledge a page: it stops repeating"
    )
    @app.get("/v1/notifications/{notification_id}/ack", include_in_schema=False)
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

    @app.get("/healthz", summary="Liveness")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics", summary="Prometheus metrics of every ingest process, and queue depths")
    def metrics_text() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/readyz", summary="Readiness: the database and Redis answer")
    def readyz() -> Response:
        checks = {
            "database": _database_answers(services.sessions),
            "redis": _redis_answers(services.redis_ping),
        }
        status = 200 if all(checks.values()) else 503
        return JSONResponse({"ready": status == 200, "checks": checks}, status_code=status)

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


def _authenticate_api(config: Settings, body: bytes, request: Request) -> None:
    headers = {k.lower(): v for k, v in request.headers.items()}
    if "x-escalera-signature" in headers and config.api_hmac_secret is not None:
        verify_escalera_hmac(
            body, headers, config.api_hmac_secret.get_secret_value(), datetime.now(UTC)
        )
        return
    tokens = [token.get_secret_value() for token in config.api_tokens]
    if not tokens and config.api_hmac_secret is None:
        raise Unauthorized(
            "no API credentials are configured (ESCALERA_API_TOKENS or ESCALERA_API_HMAC_SECRET)"
        )
    verify_bearer(headers, tokens)


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


def _check_events(services: Services, events: Sequence[Event], *, indexed: bool) -> None:
    """Refuse at the door events dated out of bounds, or that the policy can never evaluate."""
    window = EventWindow.from_settings(services.settings)
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


def _ticket_sla(services: Services, source: str, ticket_id: str, at: datetime) -> Response:
    with services.sessions() as session:
        ticket = session.scalars(
            select(Ticket).where(Ticket.source == source, Ticket.ticket_id == ticket_id)
        ).first()
        if ticket is None:
            return problem(404, f"no events for ticket {source}/{ticket_id}")
        events = stored_events(session, ticket)
        loaded = services.policies.named(ticket.policy)
    try:
        sla = evaluate(loaded.policy, events, at, calendars=loaded.calendars)
    except TicketNotCreated:
        return problem(
            404, f"ticket {source}/{ticket_id} has {len(events)} events but no created event yet"
        )
    return JSONResponse(sla.to_json())


def _database_answers(sessions: sessionmaker[Session]) -> bool:
    try:
        with sessions() as session:
            session.execute(text("SELECT 1"))
    except Exception:  # any failure at all means "not ready"
        return False
    return True


def _redis_answers(ping: Any) -> bool:
    try:
        return bool(ping())
    except Exception:  # any failure at all means "not ready"
        return False
