"""When the customer waits for a reply: the stretches the ``next_reply`` clock measures.

A stretch starts at the ticket's creation and at each customer message that finds nobody
waiting already (the first unanswered one: later messages before the reply do not restart it);
it ends at the next response or at a resolution. A message on a resolved ticket starts a
stretch only when the ticket is reopened, at the reopening, since nobody answers a solved
ticket before it is worked again. `scheduler.timeline` feeds `Waits` the ticket's events in
folding order, so any order or repetition of the same events gives the same stretches.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Wait:
    """From the first unanswered customer message to its answer (None: not answered yet)."""

    start: datetime
    end: datetime | None


class Waits:
    """The stretches of one ticket, built event by event."""

    def __init__(self, created_at: datetime, resolved: bool) -> None:
        self.closed: list[Wait] = []
        self.since: datetime | None = None if resolved else created_at
        self.held = resolved  # the ticket's opening message, on a ticket created resolved

    def asked(self, at: datetime, *, resolved: bool) -> None:
        """A customer message at ``at``."""
        if resolved:
            self.held = True
        elif self.since is None:
            self.since = at

    def answered(self, at: datetime) -> None:
        """A response at ``at``: it answers every message before it."""
        self._close(at)
        self.held = False

    def moved(self, at: datetime, *, was_resolved: bool, resolved: bool) -> None:
        """A change of status at ``at``: a resolution ends the stretch, a reopening starts the
        one a message on the resolved ticket was holding."""
        if resolved and not was_resolved:
            self._close(at)
        elif was_resolved and not resolved and self.held:
            self.since, self.held = at, False

    def all(self) -> tuple[Wait, ...]:
        """Every stretch, the one still open last."""
        running = [Wait(self.since, None)] if self.since is not None else []
        return (*self.closed, *running)

    def _close(self, at: datetime) -> None:
        if self.since is not None:
            self.closed.append(Wait(self.since, at))
            self.since = None
