"""Applying one canonical event: store it, re-evaluate its ticket, re-plan its checkpoints.

All of it happens in one transaction with the ticket's row locked, so concurrent workers
serialize per ticket and any order or repetition of the same events leaves the same stored
state. At-least-once in, exactly-once in effect: a repeat of ``(source, event_id)`` is a no-op.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.evaluate import evaluate
from scheduler.sla import TicketSla
from scheduler.timeline import check_event
from shared.db.models import Checkpoint, CheckpointState, DeadLetter, StoredEvent, Ticket
from shared.db.statements import insert_ignore
from shared.errors import EvaluationError, TicketNotCreated
from shared.events import Event
from worker.policies import LoadedPolicy, PolicyBook
from worker.report.allowance_check import check_allowance


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"  # (source, event_id) seen before: nothing changed
    WAITING = "waiting"  # stored; the ticket's created event has not arrived yet
    DEAD_LETTERED = "dead_lettered"  # cannot be evaluated under the policy: kept aside


@dataclass
class CheckpointChanges:
    """What re-planning did to a ticket's checkpoints (the timer index follows these)."""

    added: list[Checkpoint] = field(default_factory=list)
    moved: list[tuple[Checkpoint, datetime]] = field(default_factory=list)  # (row, previous due)
    cancelled: list[Checkpoint] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.moved or self.cancelled)


@dataclass
class Applied:
    outcome: Outcome
    source: str
    ticket_id: str
    changes: CheckpointChanges = field(default_factory=CheckpointChanges)
    error: str | None = None


def apply_event(session: Session, policies: PolicyBook, event: Event, now: datetime) -> Applied:
    """Apply ``event`` in the session's transaction (the caller commits)."""
    loaded = policies.for_source(event.source)
    ticket = _lock_ticket(session, event, loaded.name)
    try:
        check_event(loaded.policy, event)
    except EvaluationError as exc:
        return dead_letter(session, event, str(exc))
    if not _insert_event(session, ticket, event, now):
        return Applied(Outcome.DUPLICATE, event.source, event.ticket_id)
    savepoint = session.begin_nested()
    try:
        result = reevaluate(session, ticket, loaded, now)
    except EvaluationError as exc:  # pragma: no cover - check_event refuses the known causes
        savepoint.rollback()
        return dead_letter(session, event, str(exc))
    savepoint.commit()
    check_allowance(session, loaded, event, now)  # returns notification ids to deliver
    return result


def reevaluate(session: Session, ticket: Ticket, loaded: LoadedPolicy, now: datetime) -> Applied:
    """Evaluate a locked ticket from its stored events and bring its checkpoints in line."""
    events = stored_events(session, ticket)
    # A portal clock slightly ahead must not hide its own event from the evaluation.
    as_of = max([now, *(e.occurred_at for e in events)])
    try:
        sla = evaluate(loaded.policy, events, as_of, calendars=loaded.calendars)
    except TicketNotCreated:
        ticket.waiting = True
        return Applied(Outcome.WAITING, ticket.source, ticket.ticket_id)
    _snapshot(ticket, sla, as_of)
    changes = _replan(session, ticket, sla)
    return Applied(Outcome.APPLIED, ticket.source, ticket.ticket_id, changes)


def stored_events(session: Session, ticket: Ticket) -> list[Event]:
    rows = session.scalars(
        select(StoredEvent.payload)
        .where(StoredEvent.ticket_pk == ticket.id)
        .order_by(StoredEvent.id)
    )
    return [Event.model_validate(payload) for payload in rows]


def _lock_ticket(session: Session, event: Event, policy: str) -> Ticket:
    """The ticket's row, created if new, locked until the transaction ends."""
    values = {
        "source": event.source,
        "ticket_id": event.ticket_id,
        "policy": policy,
        "waiting": True,
        "version": 0,
    }
    insert_ignore(session, Ticket.__table__, values, ["source", "ticket_id"])
    query = select(Ticket).where(Ticket.source == event.source, Ticket.ticket_id == event.ticket_id)
    return session.scalars(query.with_for_update()).one()


def _insert_event(session: Session, ticket: Ticket, event: Event, now: datetime) -> bool:
    """Store the event; False if ``(source, event_id)`` is already stored."""
    values = {
        "source": event.source,
        "event_id": event.event_id,
        "ticket_pk": ticket.id,
        "type": event.type.value,
        "occurred_at": event.occurred_at,
        "received_at": now,
        "payload": event.model_dump(mode="json", exclude_defaults=False),
    }
    return insert_ignore(session, StoredEvent.__table__, values, ["source", "event_id"]) is not None


def dead_letter(session: Session, event: Event, error: str) -> Applied:
    """Keep an event that cannot be applied aside, with the reason."""
    session.add(
        DeadLetter(
            source=event.source,
            event_id=event.event_id,
            ticket_id=event.ticket_id,
            payload=event.model_dump(mode="json"),
            error=error,
        )
    )
    return Applied(Outcome.DEAD_LETTERED, event.source, event.ticket_id, error=error)


def _snapshot(ticket: Ticket, sla: TicketSla, as_of: datetime) -> None:
    ticket.waiting = False
    ticket.plan, ticket.priority, ticket.status = sla.plan, sla.priority, sla.status
    ticket.created_at = sla.created_at
    ticket.sla = sla.to_json()
    ticket.evaluated_at = as_of
    ticket.version += 1


def _replan(session: Session, ticket: Ticket, sla: TicketSla) -> CheckpointChanges:
    """New checkpoints are armed, moved ones re-timed, vanished ones deleted; fired stay fired.

    A cancelled checkpoint that never fired is deleted rather than kept: it means nothing to
    anyone, and keeping it would make the stored state depend on the order events arrived in.
    """
    query = select(Checkpoint).where(Checkpoint.ticket_pk == ticket.id)
    existing = {row.key: row for row in session.scalars(query)}
    changes = CheckpointChanges()
    for planned in sla.checkpoints:
        row = existing.pop(planned.key, None)
        if row is None:
            row = Checkpoint(
                ticket_pk=ticket.id,
                key=planned.key,
                metric=planned.metric,
                kind=planned.kind.value,
                percent=planned.percent,
                tier=planned.tier,
                due_at=planned.due_at,
                state=CheckpointState.ARMED.value,
            )
            session.add(row)
            changes.added.append(row)
        elif row.state == CheckpointState.ARMED.value and row.due_at != planned.due_at:
            changes.moved.append((row, row.due_at))
            row.due_at = planned.due_at
    for row in existing.values():
        if row.state == CheckpointState.ARMED.value:
            session.delete(row)
            changes.cancelled.append(row)
    session.flush()
    return changes
