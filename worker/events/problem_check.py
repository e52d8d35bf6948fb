"""Telling problem management about recurring incidents, in the apply transaction.

``check_problems`` runs for each ticket a batch applied, after its context is written. For each
problem key the ticket carries (the policy's ``problems``), it reads the tickets sharing it and
finds the runs that reached the threshold (`worker.notify.problem_rule`); a run nobody was told
about gets a fired checkpoint on its first ticket (key ``problem:<key>@<start>``, kind and
metric ``problem``) and notifications on the policy's ``problems.route``, written through the
outbox like any checkpoint's. A problem ticket (type ``problem``) resolved with the key gets
one checkpoint ``problem_solved:<key>`` the same way: its message lists who reported it.
At most once each: on PostgreSQL a transaction-scoped advisory lock serializes a key's
counting, and an existing checkpoint key is never written again.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

import structlog
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from scheduler.context import TicketContext
from shared.db.models import Checkpoint, Ticket
from shared.policy_problems import ProblemsSpec
from worker.notify.outbox import tell_now
from worker.notify.problem_rule import (
    NOTICE,
    PROBLEM_TYPE,
    SOLVED,
    Told,
    key_field,
    keys_of,
    recurring,
)
from worker.notify.problem_tickets import occurrences
from worker.policies.book import LoadedPolicy
from worker.report.tickets import DONE

log = structlog.get_logger("escalera.problems")


def check_problems(
    session: Session, loaded: LoadedPolicy, ticket_pk: int, now: datetime
) -> list[int]:
    """The new notification ids (deliver them after the commit); [] without ``problems``."""
    spec = loaded.policy.problems
    if spec is None:  # most policies: not a round trip per applied ticket
        return []
    ticket = session.get(Ticket, ticket_pk, populate_existing=True)
    if ticket is None or ticket.waiting:
        return []
    ids: list[int] = []
    for problem in keys_of(spec.key, TicketContext.from_row(ticket)):
        _lock(session, loaded.name, problem)
        if ticket.ticket_type == PROBLEM_TYPE:
            if ticket.status in DONE:
                ids += _solved(session, loaded, spec=spec, ticket=ticket, problem=problem, now=now)
            continue
        window = timedelta(seconds=spec.window.fixed_seconds() or 0)
        field = key_field(spec.key)
        found = occurrences(session, loaded.name, field, problem)
        for run in recurring(found, window, spec.threshold):
            key = Told(NOTICE, field, problem, run.start, window).key
            first = _ticket_of(session, loaded.name, run.tickets[0].ticket)
            if first is None or _told(session, loaded.name, key):
                continue
            due = run.tickets[spec.threshold - 1].created_at
            ids += _tell(
                session, loaded, spec=spec, ticket=first, key=key, kind=NOTICE, due_at=due, now=now
            )
            log.info("problem_recurring", problem=problem, checkpoint=key, tickets=len(run.tickets))
    return ids


def _solved(
    session: Session,
    loaded: LoadedPolicy,
    *,
    spec: ProblemsSpec,
    ticket: Ticket,
    problem: str,
    now: datetime,
) -> list[int]:
    key = Told(SOLVED, key_field(spec.key), problem).key
    if _told(session, loaded.name, key):
        return []
    log.info("problem_solved", problem=problem, source=ticket.source, ticket_id=ticket.ticket_id)
    return _tell(
        session, loaded, spec=spec, ticket=ticket, key=key, kind=SOLVED, due_at=now, now=now
    )


def _tell(
    session: Session,
    loaded: LoadedPolicy,
    *,
    spec: ProblemsSpec,
    ticket: Ticket,
    key: str,
    kind: str,
    due_at: datetime,
    now: datetime,
) -> list[int]:
    checkpoint = Checkpoint(ticket_pk=ticket.id, key=key, metric=kind, kind=kind, due_at=due_at)
    route = next(r for r in loaded.policy.routes if r.name == spec.route)  # policy check: exists
    return tell_now(session, checkpoint, [route], now)


def _ticket_of(session: Session, policy_name: str, name: str) -> Ticket | None:
    source, _, ticket_id = name.partition("/")
    query = select(Ticket).where(
        Ticket.policy == policy_name, Ticket.source == source, Ticket.ticket_id == ticket_id
    )
    return session.scalars(query).first()


def _told(session: Session, policy_name: str, key: str) -> bool:
    query = (
        select(Checkpoint.id)
        .join(Ticket, Checkpoint.ticket_pk == Ticket.id)
        .where(Checkpoint.key == key, Ticket.policy == policy_name)
        .limit(1)
    )
    return session.scalars(query).first() is not None


def _lock(session: Session, policy_name: str, problem: str) -> None:
    if session.get_bind().dialect.name != "postgresql":
        return
    digest = hashlib.blake2b(f"problem\0{policy_name}\0{problem}".encode(), digest_size=8).digest()
    session.execute(
        text("SELECT pg_advisory_xact_lock(:key)"),
        {"key": int.from_bytes(digest, "big", signed=True)},
    )
