"""``escalera simulate``: replay an events file through the SLA core, ticket by ticket."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from scheduler.calendars import CalendarBook
from scheduler.evaluate import evaluate
from scheduler.sla import TicketSla
from shared.errors import TicketNotCreated
from shared.events import Event
from shared.policy import Policy


@dataclass(frozen=True)
class Simulation:
    at: datetime
    tickets: list[TicketSla]
    waiting: list[str]  # tickets with events but no created event yet


def simulate(policy: Policy, events: Iterable[Event], at: datetime) -> Simulation:
    """Evaluate every ticket in ``events`` as of ``at``, in order of first appearance."""
    by_ticket: dict[tuple[str, str], list[Event]] = defaultdict(list)
    for event in events:
        by_ticket[event.source, event.ticket_id].append(event)
    book = CalendarBook(policy)
    tickets, waiting = [], []
    for (source, ticket_id), history in by_ticket.items():
        try:
            tickets.append(evaluate(policy, history, at, calendars=book))
        except TicketNotCreated:
            waiting.append(f"{source}/{ticket_id}")
    return Simulation(at, tickets, waiting)
