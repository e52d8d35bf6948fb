"""Applying canonical events: store them, re-evaluate their tickets, re-plan their checkpoints.

A batch of events is applied in the caller's transaction with every touched ticket's row locked
(in id order, so concurrent workers never deadlock). Each step is one statement for the whole
batch, and each ticket is evaluated once however many of its events the batch holds. Any order,
batching or repetition of the same events leaves the same stored state. At-least-once in,
exactly-once in effect: a repeat of ``(source, event_id)`` is a no-op.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import Table, delete, select, tuple_
from sqlalchemy.orm import Session

from scheduler.context import TicketContext
from scheduler.evaluate import evaluate
from scheduler.sla import TicketSla
from scheduler.timeline import check_event
from shared.db.models import DeadLetter, StoredEvent, Ticket
from shared.db.statements import among, insert_ignore_many, insert_rows, update_rows
from shared.errors import EvaluationError, TicketNotCreated
from shared.events import Event
from shared.text import storable, storable_json
from worker.events import replan
from worker.events.allowance_check import check_allowance
from worker.events.parsed_events import PARSED
from worker.events.problem_check import check_problems
from worker.events.replan import CheckpointChanges
from worker.policies.book import LoadedPolicy, PolicyBook

_TICKETS = cast(Table, Ticket.__table__)
_EVENTS = cast(Table, StoredEvent.__table__)


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"  # (source, event_id) seen before: nothing changed
    WAITING = "waiting"  # stored; the ticket's created event has not arrived yet
    DEAD_LETTERED = "dead_lettered"  # cannot be evaluated under the policy: kept aside


@dataclass
class Applied:
    """One event's outcome. A ticket's checkpoint changes ride on its last event of the batch."""

    outcome: Outcome
    source: str
    ticket_id: str
    event_id: str = ""
    changes: CheckpointChanges = field(default_factory=CheckpointChanges)
    error: str | None = None
    notifications: list[int] = field(default_factory=list)  # to deliver after the commit


def apply_event(session: Session, policies: PolicyBook, event: Event, now: datetime) -> Applied:
    """Apply one event in the session's transaction (the caller commits)."""
    return apply_events(session, policies, [event], now)[0]


def apply_events(
    session: Session, policies: PolicyBook, events: Sequence[Event], now: datetime
) -> list[Applied]:
    """Apply ``events`` in the session's transaction; one outcome per event, in their order."""
    if not events:
        return []
    return _Batch(session, now).run(events, [policies.for_source(e.source) for e in events])


def reevaluate(session: Session, ticket: Ticket, loaded: LoadedPolicy, now: datetime) -> Applied:
    """Evaluate a locked ticket from its stored events and bring its checkpoints in line."""
    work = _TicketWork(ticket.id, loaded)
    _Batch(session, now).settle({ticket.id: work})
    outcome = Outcome.WAITING if work.waiting else Outcome.APPLIED
    return Applied(outcome, ticket.source, ticket.ticket_id, changes=work.changes)


def stored_events(session: Session, ticket: Ticket) -> list[Event]:
    rows = session.scalars(
        select(StoredEvent.payload)
        .where(StoredEvent.ticket_pk == ticket.id)
        .order_by(StoredEvent.id)
    )
    return [Event.model_validate(payload) for payload in rows]


def dead_letter(session: Session, event: Event, error: str, raw: bytes | None = None) -> Applied:
    """Keep an event that cannot be applied aside, with the reason (and its queue message).

    Whatever the event holds, the row can be written: its text is made storable and cut to the
    columns' lengths; ``raw`` keeps the message exactly as it was queued.
    """
    session.add(
        DeadLetter(
            source=storable(event.source, 64),
            event_id=storable(event.event_id, 256),
            ticket_id=storable(event.ticket_id, 256),
            payload=storable_json(event.model_dump(mode="json")),
            error=storable(error),
            raw=raw,
        )
    )
    return Applied(
        Outcome.DEAD_LETTERED, event.source, event.ticket_id, event.event_id, error=error
    )


@dataclass
class _TicketWork:
    """A locked ticket with new events: what the batch learns about it as it goes."""

    pk: int
    loaded: LoadedPolicy
    new: list[int] = field(default_factory=list)  # batch positions of its newly stored events
    waiting: bool = False
    error: str | None = None
    changes: CheckpointChanges = field(default_factory=CheckpointChanges)


class _Batch:
    def __init__(self, session: Session, now: datetime) -> None:
        self.session, self.now = session, now

    def run(self, events: Sequence[Event], loaded: Sequence[LoadedPolicy]) -> list[Applied]:
        pks = self._lock_tickets(events, loaded)
        results: list[Applied | None] = [None] * len(events)
        valid: list[int] = []
        for i, event in enumerate(events):
            try:
                check_event(loaded[i].policy, event)
            except EvaluationError as exc:
                results[i] = dead_letter(self.session, event, str(exc))
            else:
                valid.append(i)
        stored = self._insert_events(events, valid, pks)
        work: dict[int, _TicketWork] = {}
        for i in valid:
            event = events[i]
            if stored.get((event.source, event.event_id)) != i:
                results[i] = Applied(
                    Outcome.DUPLICATE, event.source, event.ticket_id, event.event_id
                )
                continue
            pk = pks[(event.source, event.ticket_id)]
            work.setdefault(pk, _TicketWork(pk, loaded[i])).new.append(i)
        self.settle(work)
        for ticket in work.values():
            self._report(ticket, events, results)
            for i in ticket.new:  # a new ticket may use up its customer's yearly allowance
                if (
                    result := results[i]
                ) is not None and result.outcome is not Outcome.DEAD_LETTERED:
                    result.notifications = check_allowance(
                        self.session, ticket.loaded, events[i], self.now
                    )
            last = results[ticket.new[-1]]  # a recurring incident, or its problem resolved
            if last is not None and last.outcome is Outcome.APPLIED:
                last.notifications += check_problems(
                    self.session, ticket.loaded, ticket.pk, self.now
                )
        return [r for r in results if r is not None]

    def settle(self, work: dict[int, _TicketWork]) -> None:
        """Evaluate each ticket from its stored events; write snapshots and checkpoints."""
        histories = self._histories(list(work))
        snapshots: list[dict[str, Any]] = []
        diffs: dict[int, replan.Diff] = {}
        stored = replan.load(self.session, list(work))
        for pk, ticket in work.items():
            history = histories.get(pk, [])
            try:
                sla, as_of = self._evaluate(ticket, history)
            except EvaluationError as exc:  # pragma: no cover - check_event refuses known causes
                ticket.error = str(exc)
                continue
            if sla is None:
                ticket.waiting = True
                continue
            snapshots.append(_snapshot(pk, sla, as_of, TicketContext.of(history)))
            diffs[pk] = replan.diff(stored.get(pk, []), sla.checkpoints)
        for pk, changes in replan.write(self.session, diffs, self.now).items():
            work[pk].changes = changes
        also = {"version": _TICKETS.c.version + 1, "updated_at": self.now}
        update_rows(self.session, _TICKETS, snapshots, also=also)

    def _report(
        self, ticket: _TicketWork, events: Sequence[Event], results: list[Applied | None]
    ) -> None:
        if ticket.error is not None:  # pragma: no cover - see settle
            self.session.execute(
                delete(_EVENTS).where(
                    tuple_(_EVENTS.c.source, _EVENTS.c.event_id).in_(
                        [(events[i].source, events[i].event_id) for i in ticket.new]
                    )
                )
            )
            for i in ticket.new:
                results[i] = dead_letter(self.session, events[i], ticket.error)
            return
        outcome = Outcome.WAITING if ticket.waiting else Outcome.APPLIED
        for i in ticket.new:
            results[i] = Applied(outcome, events[i].source, events[i].ticket_id, events[i].event_id)
        last = results[ticket.new[-1]]
        assert last is not None
        last.changes = ticket.changes

    def _lock_tickets(
        self, events: Sequence[Event], loaded: Sequence[LoadedPolicy]
    ) -> dict[tuple[str, str], int]:
        """Every touched ticket's row, created if new, locked until the transaction ends."""
        policies = {(e.source, e.ticket_id): p.name for e, p in zip(events, loaded, strict=True)}
        pks = self._lock(list(policies))
        missing = [key for key in policies if key not in pks]
        if missing:
            rows = [
                {
                    "source": source,
                    "ticket_id": ticket_id,
                    "policy": policies[(source, ticket_id)],
                    "waiting": True,
                    "version": 0,
                    "updated_at": self.now,
                }
                for source, ticket_id in missing
            ]
            insert_ignore_many(self.session, _TICKETS, rows, ["source", "ticket_id"])
            pks.update(self._lock(missing))
        return pks

    def _lock(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """Lock the tickets (in id order: concurrent batches never deadlock); key -> id."""
        query = (
            select(_TICKETS.c.id, _TICKETS.c.source, _TICKETS.c.ticket_id)
            .where(
                among(self.session, _TICKETS.c.ticket_id, sorted({t for _s, t in keys})),
                among(self.session, _TICKETS.c.source, sorted({s for s, _t in keys})),
            )
            .order_by(_TICKETS.c.id)
            .with_for_update()
        )
        wanted = set(keys)
        rows = self.session.execute(query).all()
        return {(s, t): pk for pk, s, t in rows if (s, t) in wanted}

    def _insert_events(
        self, events: Sequence[Event], valid: list[int], pks: dict[tuple[str, str], int]
    ) -> dict[tuple[str, str], int]:
        """Store the valid events; ``(source, event_id)`` -> batch position of those new here."""
        first: dict[tuple[str, str], int] = {}
        for i in valid:
            first.setdefault((events[i].source, events[i].event_id), i)
        for key in self._stored_already(list(first)):
            del first[key]
        rows = [
            {
                "source": events[i].source,
                "event_id": events[i].event_id,
                "ticket_pk": pks[(events[i].source, events[i].ticket_id)],
                "type": events[i].type.value,
                "occurred_at": events[i].occurred_at,
                "received_at": self.now,
                "payload": events[i].model_dump(mode="json", exclude_defaults=False),
            }
            for i in first.values()
        ]
        # Holding the tickets' locks, no other transaction stores events of these tickets; the
        # ON CONFLICT only guards a portal reusing an event id on another ticket.
        insert_rows(self.session, _EVENTS, rows, ignore_conflicts_on=["source", "event_id"])
        return first

    def _stored_already(self, keys: list[tuple[str, str]]) -> list[tuple[str, str]]:
        if not keys:
            return []
        query = select(_EVENTS.c.source, _EVENTS.c.event_id).where(
            among(self.session, _EVENTS.c.event_id, sorted({e for _s, e in keys})),
            among(self.session, _EVENTS.c.source, sorted({s for s, _e in keys})),
        )
        wanted = set(keys)
        return [(s, e) for s, e in self.session.execute(query).all() if (s, e) in wanted]

    def _histories(self, pks: list[int]) -> dict[int, list[Event]]:
        """Each ticket's stored events in storage order (payloads read only if not parsed yet)."""
        histories: dict[int, list[Event]] = {pk: [] for pk in pks}
        if not pks:
            return histories
        query = (
            select(_EVENTS.c.ticket_pk, _EVENTS.c.id, _EVENTS.c.source, _EVENTS.c.event_id)
            .where(among(self.session, _EVENTS.c.ticket_pk, pks))
            .order_by(_EVENTS.c.id)
        )
        found = self.session.execute(query).all()
        rows = [(int(pk), int(row_id), (s, e)) for pk, row_id, s, e in found]
        parsed = PARSED.get({row_id: key for _pk, row_id, key in rows})
        missing = [row_id for _pk, row_id, _key in rows if row_id not in parsed]
        if missing:
            query = select(_EVENTS.c.id, _EVENTS.c.payload).where(
                among(self.session, _EVENTS.c.id, missing)
            )
            read = {
                int(row.id): Event.model_validate(row.payload)
                for row in self.session.execute(query).all()
            }
            PARSED.put(read)
            parsed.update(read)
        for pk, row_id, _key in rows:
            histories[pk].append(parsed[row_id])
        return histories

    def _evaluate(
        self, ticket: _TicketWork, history: list[Event]
    ) -> tuple[TicketSla | None, datetime]:
        # A portal clock slightly ahead must not hide its own event from the evaluation.
        as_of = max([self.now, *(e.occurred_at for e in history)])
        policy = ticket.loaded
        try:
            return evaluate(policy.policy, history, as_of, calendars=policy.calendars), as_of
        except TicketNotCreated:
            return None, as_of


def _snapshot(pk: int, sla: TicketSla, as_of: datetime, context: TicketContext) -> dict[str, Any]:
    """A ticket row's new SLA snapshot and context, folded from all its stored events (written
    for the whole batch by `update_rows`): the same whatever order they arrived in."""
    return {
        **context.columns(),
        "id": pk,
        "waiting": False,
        "plan": sla.plan,
        "priority": sla.priority,
        "status": sla.status,
        "created_at": sla.created_at,
        "sla": sla.to_json(),
        "evaluated_at": as_of,
    }
