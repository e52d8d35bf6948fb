"""What every report reads about a ticket, and the period a report covers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from scheduler.context import TicketContext
from scheduler.sla import TicketSla

DONE = ("solved", "closed")


@dataclass(frozen=True)
class ReportTicket:
    """A ticket's SLA evaluated as of the report's instant, with the customer it came from and
    its context (subject, group, assignee...) as of that instant."""

    sla: TicketSla
    customer: str | None
    context: TicketContext = field(default_factory=TicketContext)

    @property
    def name(self) -> str:
        return f"{self.sla.source}/{self.sla.ticket_id}"

    @property
    def is_open(self) -> bool:
        return self.sla.status not in DONE


@dataclass(frozen=True)
class Period:
    """Tickets created in ``[start, end)``, evaluated as of ``at``."""

    start: datetime
    end: datetime
    at: datetime

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError("a report period must end after it starts")

    def covers(self, instant: datetime) -> bool:
        return self.start <= instant < self.end
