"""How far an event's time may be from the server's clock: older or further ahead is refused.

An event dated years back or ahead is a bug at the sender (a unit mistake, an epoch in seconds
read as milliseconds, a clock set wrong), never something to act on: a ticket "created" in 2099
would schedule no checkpoint anyone sees, one from 1970 would breach every target at once and page
on-call for nothing. The bounds are settings (``ESCALERA_MAX_EVENT_AGE_DAYS``,
``ESCALERA_MAX_EVENT_LEAD_S``); docs/security.md gives the reasons for the defaults.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.config import Settings
from shared.events import Event


@dataclass(frozen=True)
class EventWindow:
    max_age: timedelta
    max_lead: timedelta

    @classmethod
    def from_settings(cls, config: Settings) -> EventWindow:
        return cls(
            timedelta(days=config.max_event_age_days), timedelta(seconds=config.max_event_lead_s)
        )

    def problems(
        self, events: Sequence[Event], now: datetime, *, indexed: bool
    ) -> list[dict[str, str]]:
        """An error per event out of the window, naming ``occurred_at`` (``[i].`` in a batch)."""
        errors = []
        for index, event in enumerate(events):
            message = self._problem(event.occurred_at, now)
            if message is not None:
                field = f"[{index}].occurred_at" if indexed else "occurred_at"
                errors.append({"field": field, "message": message})
        return errors

    def _problem(self, at: datetime, now: datetime) -> str | None:
        if now - at > self.max_age:
            return (
                f"{at.isoformat()} is more than {self.max_age.days} days ago "
                "(ESCALERA_MAX_EVENT_AGE_DAYS)"
            )
        if at - now > self.max_lead:
            return (
                f"{at.isoformat()} is more than {int(self.max_lead.total_seconds())} s ahead of "
                "the server's clock (ESCALERA_MAX_EVENT_LEAD_S)"
            )
        return None
