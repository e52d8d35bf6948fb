"""Warning a desk when a customer uses up 80 % and 100 % of its yearly ticket allowance.

``check_allowance`` runs in the apply transaction of a ``created`` event. It counts the
customer's tickets in the event's allowance year (allowances.py decides what counts) and, for
each warning level reached that nobody was told about yet, records a fired checkpoint on this
ticket (key ``allowance:<customer>:<year start>:<percent>``, metric ``allowance``, kind
``warning``) and writes its notifications through the outbox, routed like any checkpoint (a route
can select them with ``metrics: [allowance]``). At most once per customer, year and level: on
PostgreSQL a transaction-scoped advisory lock serializes the customer's counting; SQLite
serializes every writer anyway.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, time, timedelta

import structlog
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from shared.db.models import Checkpoint, Ticket
from shared.events import Event, EventType
from worker.notify.outbox import tell_now
from worker.notify.routing import Fired, routes_for
from worker.policies.book import LoadedPolicy
from worker.report.allowances import allowance_of, allowance_year, local_day, usage
from worker.report.queries import created_tickets, find_ticket

log = structlog.get_logger("escalera.allowance")

METRIC = "allowance"
_MARGIN = timedelta(days=2)  # local days vs UTC instants: fetch wider, then count by local day


def check_allowance(
    session: Session, loaded: LoadedPolicy, event: Event, now: datetime
) -> list[int]:
    """The new notification ids (deliver them after the commit); [] for any other event."""
    if event.type is not EventType.CREATED or event.customer is None:
        return []
    policy, customer = loaded.policy, event.customer
    if allowance_of(policy, customer) is None:
        return []
    spec = policy.customers.get(customer)
    start, end = allowance_year(spec, local_day(policy, customer, event.occurred_at))
    _lock_customer(session, loaded.name, customer)
    between = (_utc(start) - _MARGIN, _utc(end) + _MARGIN)
    tickets = created_tickets(session, loaded.name, customer=customer, between=between)
    year = next((u for u in usage(policy, tickets) if u.year_start == start), None)
    ticket = find_ticket(session, event.source, event.ticket_id)
    if year is None or ticket is None:
        return []
    ids: list[int] = []
    for level in year.levels:
        key = f"{METRIC}:{customer}:{start.isoformat()}:{level}"
        if _already_warned(session, loaded.name, key):
            continue
        ids += _warn(
            session,
            loaded,
            ticket,
            customer=customer,
            key=key,
            level=level,
            due_at=event.occurred_at,
            now=now,
        )
        log.info(
            "allowance_warning",
            source=event.source,
            ticket_id=event.ticket_id,
            checkpoint=key,
            customer=customer,
            counted=year.counted,
            allowance=year.allowance,
        )
    return ids


def _warn(
    session: Session,
    loaded: LoadedPolicy,
    ticket: Ticket,
    *,
    customer: str,
    key: str,
    level: int,
    due_at: datetime,
    now: datetime,
) -> list[int]:
    checkpoint = Checkpoint(
        ticket_pk=ticket.id,
        key=key,
        metric=METRIC,
        kind="warning",
        percent=level,
        due_at=due_at,
    )
    # no priority: a route for, say, P1 pages must not take a contract warning
    plan = loaded.policy.plan_for(customer, None)
    fired = Fired(kind="warning", metric=METRIC, tier=None, priority="", plan=plan)
    return tell_now(session, checkpoint, routes_for(loaded.policy, fired), now)


def _already_warned(session: Session, policy_name: str, key: str) -> bool:
    query = (
        select(Checkpoint.id)
        .join(Ticket, Checkpoint.ticket_pk == Ticket.id)
        .where(Checkpoint.key == key, Checkpoint.metric == METRIC, Ticket.policy == policy_name)
        .limit(1)
    )
    return session.scalars(query).first() is not None


def _lock_customer(session: Session, policy_name: str, customer: str) -> None:
    if session.get_bind().dialect.name != "postgresql":
        return
    digest = hashlib.blake2b(f"{policy_name}\0{customer}".encode(), digest_size=8).digest()
    session.execute(
        text("SELECT pg_advisory_xact_lock(:key)"),
        {"key": int.from_bytes(digest, "big", signed=True)},
    )


def _utc(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)
