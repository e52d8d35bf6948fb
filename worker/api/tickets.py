"""``GET /v1/tickets/{source}/{ticket_id}``: one ticket's SLA, in the shape of `simulate`, with
its context as of the same instant under ``ticket`` (subject, group, assignee, tags...), and,
where the policy's targets have names or conditions, the one in force under ``target``.

Each read is bounded: ``at`` lies in a window around the ticket's life (an evaluation walks
every working day up to it), and reads take turns (`ReadSlots`): a few evaluate at once on the
thread pool, the next ones wait on the event loop, and beyond the queue a read is answered 503
with ``Retry-After``. ``/healthz`` and the event intake never wait behind them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import structlog
from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse
from sqlalchemy import func, select

from scheduler.context import TicketContext
from scheduler.evaluate import evaluate
from scheduler.target_changes import shows_targets, target_changes
from shared.db.models import StoredEvent, Ticket
from shared.errors import TicketNotCreated
from shared.events import Event
from shared.policy import Policy
from worker.api.problems import problem
from worker.api.read_slots import ReadSlots
from worker.api.services import Services
from worker.events.apply import stored_events

log = structlog.get_logger("escalera.ingest")

_AT = (
    "The instant to evaluate the ticket at (ISO 8601 with a UTC offset; default: now). It lies "
    "between the ticket's first event and `ESCALERA_TICKET_READ_HORIZON_DAYS` (366) days past "
    "its last event or now, whichever is later; outside, 422 naming `at` and the range."
)


def tickets_router(services: Services, slots: ReadSlots | None = None) -> APIRouter:
    """The ticket read; ``slots`` are the read turns (by default from the settings)."""
    router = APIRouter(tags=["tickets"])
    config = services.settings
    turns = slots or ReadSlots(config.ticket_reads_at_once, config.ticket_reads_waiting)

    @router.get(
        "/v1/tickets/{source}/{ticket_id}",
        summary="A ticket's SLA, in the simulate shape, and its context",
        description="`ticket` is the ticket's context as of `at`, from its events: `subject`, "
        "`group`, `assignee`, `tags`, `ticket_type`, `channel`, `requester_id` (null: no event "
        "said). Reads take turns: when every turn and place in the queue is taken, the "
        "answer is 503 with `Retry-After` (`ESCALERA_TICKET_READS_AT_ONCE`, `_WAITING`).",
    )
    async def get_ticket(
        source: str, ticket_id: str, at: Annotated[datetime | None, Query(description=_AT)] = None
    ) -> Response:
        if at is not None and at.tzinfo is None:
            return problem(400, "`at` needs a UTC offset", field="at")
        # past the turns' queue, ReadsBusy: a 503 problem with Retry-After (app.py's refusals)
        return await turns.run(_ticket_sla, services, source, ticket_id, at, datetime.now(UTC))

    return router


def read_window(
    first: datetime, last: datetime, now: datetime, horizon: timedelta
) -> tuple[datetime, datetime]:
    """The instants a ticket may be read at: from its first event to ``horizon`` past the later
    of its last event and now."""
    return first, max(last, now) + horizon


def _ticket_sla(
    services: Services, source: str, ticket_id: str, at: datetime | None, now: datetime
) -> Response:
    with services.sessions() as session:
        ticket = session.scalars(
            select(Ticket).where(Ticket.source == source, Ticket.ticket_id == ticket_id)
        ).first()
        if ticket is None:
            return problem(404, f"no events for ticket {source}/{ticket_id}")
        if at is not None:
            first, last = session.execute(
                select(func.min(StoredEvent.occurred_at), func.max(StoredEvent.occurred_at)).where(
                    StoredEvent.ticket_pk == ticket.id
                )
            ).one()
            if first is not None and last is not None:
                horizon = timedelta(days=services.settings.ticket_read_horizon_days)
                refused = _outside(at, read_window(first, last, now, horizon), source, ticket_id)
                if refused is not None:
                    return refused
        events = stored_events(session, ticket)
        loaded = services.policies.named(ticket.policy)
    try:
        sla = evaluate(loaded.policy, events, at or now, calendars=loaded.calendars)
    except TicketNotCreated:
        return problem(
            404, f"ticket {source}/{ticket_id} has {len(events)} events but no created event yet"
        )
    context = TicketContext.of(events, at or now)
    body = {**sla.to_json(), "ticket": context.to_json()}
    if shows_targets(loaded.policy):
        body["target"] = _target_in_force(loaded.policy, events, at or now, sla.tz)
    return JSONResponse(body)


def _target_in_force(
    policy: Policy, events: list[Event], at: datetime, zone: ZoneInfo
) -> dict[str, Any]:
    """The target in force (its name, else its place in the file), since when, and why."""
    last = target_changes(policy, events, at)[-1]
    since = last.at.astimezone(zone).isoformat()
    return {"name": last.name, "since": since, "why": ", ".join(last.why) or None}


def _outside(
    at: datetime, window: tuple[datetime, datetime], source: str, ticket_id: str
) -> Response | None:
    """A 422 naming ``at`` and the allowed range when ``at`` is outside ``window``, else None."""
    earliest, latest = window
    if earliest <= at <= latest:
        return None
    log.info("ticket_read_refused", source=source, ticket_id=ticket_id, field="at")
    return problem(
        422,
        f"`at` must lie between {_iso(earliest)} (the ticket's first event) and {_iso(latest)} "
        "(ESCALERA_TICKET_READ_HORIZON_DAYS past its last event or now, whichever is later)",
        field="at",
    )


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")
