"""The at-risk board's rows: every open ticket, its state, its next checkpoint. Pure.

Ordered like ``escalera report at-risk`` (time left to the next checkpoint, soonest first). A
breached ticket with no checkpoint ahead counts the time since its breach, negative, so it
leads; the tickets whose clocks are all paused come last: they have no checkpoint ahead, yet a
lead wants to see them. A ticket's state, for its colour:

- ``breached``: a promise of it is broken (a metric is breached);
- ``warned``: a warning of a clock still running has fallen due;
- ``paused``: no clock runs (a pausing status);
- ``running``: otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from scheduler.clock import State
from scheduler.sla import Checkpoint, Kind
from worker.report.tickets import ReportTicket

FILTERS = ("priority", "plan", "group", "customer")


class BoardState(StrEnum):
    RUNNING = "running"
    WARNED = "warned"
    BREACHED = "breached"
    PAUSED = "paused"


@dataclass(frozen=True)
class BoardRow:
    ticket: ReportTicket
    state: BoardState
    following: Checkpoint | None  # the next checkpoint due; None while every clock is paused
    left: timedelta | None
    breached_at: datetime | None = None  # the first breach standing, for a row with none ahead

    @property
    def counts_to(self) -> datetime | None:
        """The instant the row's countdown counts to: its next checkpoint, else its breach."""
        if self.following is not None:
            return self.following.due_at
        return self.breached_at

    def value(self, field: str) -> str | None:
        """The row's value for a filter (`FILTERS`)."""
        sla, context = self.ticket.sla, self.ticket.context
        return {
            "priority": sla.priority,
            "plan": sla.plan,
            "group": context.group,
            "customer": self.ticket.customer,
        }[field]

    def to_json(self) -> dict[str, Any]:
        """What the page's script redraws a row from (times as ISO instants)."""
        sla, context, nxt = self.ticket.sla, self.ticket.context, self.following
        return {
            "source": sla.source,
            "ticket_id": sla.ticket_id,
            "subject": context.subject,
            "customer": self.ticket.customer,
            "priority": sla.priority,
            "plan": sla.plan,
            "group": context.group,
            "assignee": context.assignee,
            "status": sla.status,
            "state": self.state.value,
            "next": None
            if nxt is None
            else {"key": nxt.key, "kind": nxt.kind.value, "due_at": nxt.due_at.isoformat()},
            "left_seconds": None if self.left is None else int(self.left.total_seconds()),
            "counts_to": None if self.counts_to is None else self.counts_to.isoformat(),
        }


def state_of(ticket: ReportTicket) -> BoardState:
    metrics = ticket.sla.metrics
    if any(m.state is State.BREACHED for m in metrics.values()):
        return BoardState.BREACHED
    running = {name for name, m in metrics.items() if m.state is State.RUNNING}
    current = _current_clocks(ticket.sla.checkpoints)
    warned = any(
        c.fired and c.kind is Kind.WARNING and c.metric in running and _clock(c) in current
        for c in ticket.sla.checkpoints
    )
    if warned:
        return BoardState.WARNED
    paused = any(m.state is State.PAUSED for m in metrics.values())
    return BoardState.PAUSED if paused and not running else BoardState.RUNNING


def board_rows(tickets: Iterable[ReportTicket], at: datetime) -> list[BoardRow]:
    """Every open ticket as of ``at``: soonest checkpoint first, the paused ones last."""
    rows = []
    for ticket in tickets:
        if not ticket.is_open:
            continue
        following = ticket.sla.next_checkpoint
        breached = _first_breach(ticket) if following is None else None
        left = following.due_at - at if following else (breached - at if breached else None)
        rows.append(BoardRow(ticket, state_of(ticket), following, left, breached))
    return sorted(rows, key=_order)


def _first_breach(ticket: ReportTicket) -> datetime | None:
    """When the ticket's first breach still standing happened; None if none stands."""
    breaches = [m.breached_at for m in ticket.sla.metrics.values() if m.state is State.BREACHED]
    known = [b for b in breaches if b is not None]
    return min(known) if known else None


def chosen(rows: Sequence[BoardRow], filters: Mapping[str, str]) -> list[BoardRow]:
    """The rows matching every filter given (an empty value matches all)."""
    wanted = {f: v for f, v in filters.items() if f in FILTERS and v}
    return [r for r in rows if all(r.value(f) == v for f, v in wanted.items())]


def choices(rows: Sequence[BoardRow]) -> dict[str, list[str]]:
    """Each filter's values among the rows, sorted, for its drop-down."""
    return {f: sorted({v for r in rows if (v := r.value(f))}, key=str.casefold) for f in FILTERS}


def _clock(checkpoint: Checkpoint) -> str:
    """The clock a checkpoint belongs to: ``update#2`` for ``update#2:warning:75``."""
    return checkpoint.key.split(":", 1)[0]


def _current_clocks(checkpoints: Sequence[Checkpoint]) -> set[str]:
    """The clocks running now: every one but the update cycles before the latest."""
    clocks = {_clock(c) for c in checkpoints}
    cycles = [c for c in clocks if c.startswith("update#")]
    latest = max(cycles, key=lambda c: int(c.removeprefix("update#")), default=None)
    return {c for c in clocks if not c.startswith("update#") or c == latest}


def _order(row: BoardRow) -> tuple[int, timedelta, str]:
    return (row.left is None, row.left or timedelta(0), row.ticket.name)
