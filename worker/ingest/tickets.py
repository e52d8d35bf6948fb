"""``GET /v1/tickets/{source}/{ticket_id}``: one ticket's SLA, in the shape of `simulate`."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from sqlalchemy import select

from scheduler.evaluate import evaluate
from shared.db.models import Ticket
from shared.errors import TicketNotCreated
from worker.apply import stored_events
from worker.ingest.problems import problem
from worker.ingest.services import Services


def tickets_router(services: Services) -> APIRouter:
    router = APIRouter(tags=["tickets"])

    @router.get("/v1/tickets/{source}/{ticket_id}", summary="A ticket's SLA, in the simulate shape")
    def get_ticket(source: str, ticket_id: str, at: datetime | None = None) -> Response:
        if at is not None and at.tzinfo is None:
            return problem(400, "`at` needs a UTC offset", field="at")
        return _ticket_sla(services, source, ticket_id, at or datetime.now(UTC))

    return router


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
