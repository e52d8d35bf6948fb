"""The at-risk queue: open tickets, soonest next checkpoint first. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from scheduler.clock import State
from scheduler.sla import Checkpoint
from worker.report.tickets import ReportTicket


@dataclass(frozen=True)
class AtRisk:
    ticket: ReportTicket
    checkpoint: Checkpoint  # the next one due
    left: timedelta  # from the report's instant to that checkpoint
    breached: tuple[str, ...]  # metrics already breached and still running


def at_risk(tickets: Iterable[ReportTicket], at: datetime) -> list[AtRisk]:
    """Open tickets with a checkpoint still ahead, ordered by the time left to it.

    A ticket with every clock paused has no checkpoint ahead and is not at risk.
    """
    queue = []
    for ticket in tickets:
        following = ticket.sla.next_checkpoint
        if not ticket.is_open or following is None:
            continue
        breached = tuple(
            name for name, m in ticket.sla.metrics.items() if m.state is State.BREACHED
        )
        queue.append(AtRisk(ticket, following, following.due_at - at, breached))
    return sorted(queue, key=lambda r: (r.left, r.ticket.name, r.checkpoint.key))
