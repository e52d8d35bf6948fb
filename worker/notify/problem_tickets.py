"""The stored tickets that share a problem key, read for a recurring incident's notice."""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.context import TicketContext
from shared.db.models import StoredEvent, Ticket
from shared.db.statements import among
from worker.notify.problem_rule import PROBLEM_TYPE, Occurrence

_COLUMNS = {"subject": Ticket.subject, "group": Ticket.group_name, "channel": Ticket.channel}


def occurrences(session: Session, policy_name: str, field: str, problem: str) -> list[Occurrence]:
    """The policy's created tickets whose ``field`` (`key_field`) holds the problem key
    ``problem``, the problem ticket aside, each with its customer."""
    query = select(Ticket).where(Ticket.policy == policy_name, Ticket.waiting.is_(False))
    if field == "tags":  # a JSON text array on every database: find it, then read it
        query = query.where(Ticket.tags.contains(json.dumps(problem), autoescape=True))
    else:
        query = query.where(_COLUMNS[field] == problem)
    rows = [
        t
        for t in session.scalars(query.order_by(Ticket.id))
        if t.created_at is not None
        and t.ticket_type != PROBLEM_TYPE
        and (field != "tags" or problem in (TicketContext.from_row(t).tags or ()))
    ]
    customers = _customers(session, [t.id for t in rows])
    return [
        Occurrence(f"{t.source}/{t.ticket_id}", t.created_at, customers.get(t.id))
        for t in rows
        if t.created_at is not None
    ]


def _customers(session: Session, ticket_pks: list[int]) -> dict[int, str]:
    if not ticket_pks:
        return {}
    query = (
        select(StoredEvent.ticket_pk, StoredEvent.payload["customer"].as_string())
        .where(among(session, StoredEvent.ticket_pk, ticket_pks), StoredEvent.type == "created")
        .order_by(StoredEvent.id)
    )
    found: dict[int, str] = {}
    for pk, customer in session.execute(query):
        if customer:
            found.setdefault(int(pk), customer)
    return found
