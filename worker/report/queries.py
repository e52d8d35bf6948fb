"""Loading what the reports read: stored tickets evaluated as of an instant, their rows.

Everything here reads; nothing writes. Each ticket is evaluated from its stored events with the
same core the worker runs, so a report never disagrees with the checkpoints it explains.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, select
from sqlalchemy.orm import Session

from scheduler.context import TicketContext
from scheduler.evaluate import evaluate
from shared.db.models import Acknowledgement, Checkpoint, Notification, StoredEvent, Ticket
from shared.errors import TicketNotCreated
from shared.events import Event, EventType
from worker.policies.book import LoadedPolicy
from worker.report.acks import Page
from worker.report.allowances import ContactEvent, CreatedTicket
from worker.report.tickets import DONE, ReportTicket
from worker.report.timeline import StoredCheckpoint, StoredNotification

_CHUNK = 500  # tickets per IN (...) query: well under every database's parameter limit


def load_tickets(
    session: Session,
    loaded: LoadedPolicy,
    at: datetime,
    *,
    created: tuple[datetime, datetime] | None = None,
    open_only: bool = False,
) -> list[ReportTicket]:
    """The policy's tickets (created in ``[start, end)`` if given), evaluated as of ``at``."""
    query = select(Ticket).where(Ticket.policy == loaded.name, Ticket.waiting.is_(False))
    if created is not None:
        query = query.where(Ticket.created_at >= created[0], Ticket.created_at < created[1])
    if open_only:
        query = query.where(Ticket.status.not_in(DONE))
    tickets = list(session.scalars(query.order_by(Ticket.id)))
    return [
        evaluated
        for chunk in _chunks(tickets)
        for evaluated in evaluate_tickets(loaded, chunk, _events_of(session, chunk), at)
    ]


def find_ticket(session: Session, source: str, ticket_id: str) -> Ticket | None:
    query = select(Ticket).where(Ticket.source == source, Ticket.ticket_id == ticket_id)
    return session.scalars(query).first()


def events_of(session: Session, ticket: Ticket) -> list[Event]:
    return _events_of(session, [ticket])[ticket.id]


def checkpoints_of(session: Session, ticket: Ticket) -> list[StoredCheckpoint]:
    rows = session.scalars(
        select(Checkpoint).where(Checkpoint.ticket_pk == ticket.id).order_by(Checkpoint.id)
    )
    return [
        StoredCheckpoint(
            r.id, r.key, r.kind, r.due_at, r.state, r.fired_at, r.not_paged, r.caught_up_by
        )
        for r in rows
    ]


def notifications_of(session: Session, ticket: Ticket) -> list[StoredNotification]:
    """The ticket's notifications, each with its page's acknowledgement (who, when, how), which
    counts for every notification of its checkpoint on its route."""
    query = (
        select(Notification, Acknowledgement)
        .join(Checkpoint, Notification.checkpoint_id == Checkpoint.id)
        .outerjoin(
            Acknowledgement,
            (Acknowledgement.checkpoint_id == Notification.checkpoint_id)
            & (Acknowledgement.route == Notification.route),
        )
        .where(Checkpoint.ticket_pk == ticket.id)
        .order_by(Notification.id)
    )
    return [
        StoredNotification(
            n.checkpoint_id,
            n.route,
            n.channel,
            n.repeat,
            n.status,
            n.attempts,
            n.created_at,
            n.delivered_at,
            ack.acknowledged_at if ack else n.acknowledged_at,
            n.last_error,
            ack.acknowledged_by if ack else None,
            ack.via if ack else None,
        )
        for n, ack in session.execute(query)
    ]


def pages_sent(
    session: Session, policy_name: str, between: tuple[datetime, datetime]
) -> list[Page]:
    """The policy's pages (checkpoint and route) first delivered in ``[start, end)``, each with
    its acknowledgement if any."""
    first = (
        select(
            Notification.checkpoint_id.label("checkpoint_id"),
            Notification.route.label("route"),
            func.min(Notification.delivered_at).label("sent_at"),
        )
        .where(Notification.delivered_at.is_not(None))
        .group_by(Notification.checkpoint_id, Notification.route)
        .subquery()
    )
    query = (
        select(
            first.c.route,
            Ticket.source,
            Ticket.ticket_id,
            Checkpoint.key,
            first.c.sent_at,
            Acknowledgement.acknowledged_at,
            Acknowledgement.acknowledged_by,
        )
        .join(Checkpoint, Checkpoint.id == first.c.checkpoint_id)
        .join(Ticket, Ticket.id == Checkpoint.ticket_pk)
        .outerjoin(
            Acknowledgement,
            and_(
                Acknowledgement.checkpoint_id == first.c.checkpoint_id,
                Acknowledgement.route == first.c.route,
            ),
        )
        .where(Ticket.policy == policy_name)
        .where(first.c.sent_at >= between[0], first.c.sent_at < between[1])
        .order_by(first.c.sent_at, Checkpoint.id)
    )
    return [
        Page(route, f"{source}/{ticket_id}", key, sent_at, acked_at, acked_by)
        for route, source, ticket_id, key, sent_at, acked_at, acked_by in session.execute(query)
    ]


def created_tickets(
    session: Session,
    policy_name: str,
    *,
    customer: str | None = None,
    between: tuple[datetime, datetime] | None = None,
) -> list[CreatedTicket]:
    """One row per ticket of the policy with a customer: when it was created (its first
    ``created`` event)."""
    query = _created_query(policy_name, between)
    if customer is not None:
        query = query.where(StoredEvent.payload["customer"].as_string() == customer)
    first: dict[int, CreatedTicket] = {}
    for pk, ticket_id, payload, occurred_at in session.execute(query):
        name = payload.get("customer")
        known = first.get(pk)
        if name and (known is None or occurred_at < known.created_at):
            first[pk] = CreatedTicket(payload["source"], ticket_id, name, occurred_at)
    return list(first.values())


def contact_events(
    session: Session, policy_name: str, between: tuple[datetime, datetime]
) -> list[ContactEvent]:
    """Events of the policy's tickets that name a requester, with the ticket's customer."""
    customers = {(c.source, c.ticket_id): c.customer for c in created_tickets(session, policy_name)}
    query = (
        select(Ticket.ticket_id, StoredEvent.payload)
        .join(Ticket, StoredEvent.ticket_pk == Ticket.id)
        .where(Ticket.policy == policy_name)
        .where(StoredEvent.occurred_at >= between[0], StoredEvent.occurred_at < between[1])
        .order_by(StoredEvent.id)
    )
    out = []
    for ticket_id, payload in session.execute(query):
        event = Event.model_validate(payload)
        customer = event.customer or customers.get((event.source, ticket_id))
        if event.requester and customer:
            out.append(
                ContactEvent(
                    event.source,
                    ticket_id,
                    event.event_id,
                    event.type.value,
                    event.occurred_at,
                    customer,
                    event.requester,
                )
            )
    return out


def _created_query(
    policy_name: str, between: tuple[datetime, datetime] | None
) -> Select[tuple[int, str, dict[str, Any], datetime]]:
    query = (
        select(
            StoredEvent.ticket_pk, Ticket.ticket_id, StoredEvent.payload, StoredEvent.occurred_at
        )
        .join(Ticket, StoredEvent.ticket_pk == Ticket.id)
        .where(Ticket.policy == policy_name, StoredEvent.type == EventType.CREATED.value)
    )
    if between is not None:
        query = query.where(
            StoredEvent.occurred_at >= between[0], StoredEvent.occurred_at < between[1]
        )
    return query


def _events_of(session: Session, tickets: Sequence[Ticket]) -> dict[int, list[Event]]:
    grouped: dict[int, list[Event]] = defaultdict(list)
    query = (
        select(StoredEvent.ticket_pk, StoredEvent.payload)
        .where(StoredEvent.ticket_pk.in_([t.id for t in tickets]))
        .order_by(StoredEvent.id)
    )
    for pk, payload in session.execute(query):
        grouped[pk].append(Event.model_validate(payload))
    return grouped


def evaluate_tickets(
    loaded: LoadedPolicy, tickets: Sequence[Ticket], events: dict[int, list[Event]], at: datetime
) -> Iterator[ReportTicket]:
    for ticket in tickets:
        history = events.get(ticket.id, [])
        try:
            sla = evaluate(loaded.policy, history, at, calendars=loaded.calendars)
        except TicketNotCreated:  # created after ``at``
            continue
        customer = next((e.customer for e in history if e.type is EventType.CREATED), None)
        yield ReportTicket(sla, customer, TicketContext.of(history, at))


def _chunks(tickets: Sequence[Ticket]) -> Iterator[Sequence[Ticket]]:
    for start in range(0, len(tickets), _CHUNK):
        yield tickets[start : start + _CHUNK]
