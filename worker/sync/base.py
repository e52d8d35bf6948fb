"""What pulling one portal's changes is: pages of canonical events, from its incremental API.

A portal gives up on webhooks (Freshdesk after its retries, Zendesk's circuit breaker, a Jira
webhook disabled by an admin). ``escalera sync SOURCE --since TIME`` asks the portal's own API
what changed since then; a `Puller` turns each changed ticket's history into the events its
webhooks would have produced, mapped with the same integration settings as the webhooks, and the
command (`worker.sync.run`) feeds those the worker has not stored yet through the normal path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from shared.events import Event


@dataclass(frozen=True)
class Page:
    """One page of a pull: the events of the changes it read, and where the next page starts."""

    events: list[Event]
    tickets: int  # changed tickets read in this page
    cursor: str | None  # the next page's start (the portal's cursor or URL); None: caught up


class Puller(Protocol):
    """One portal's incremental reader (Zendesk, Jira, Freshdesk)."""

    source: str

    def page(self, since: datetime, until: datetime, cursor: str | None) -> Page:
        """The events of the changes made in ``[since, until)``: the first page when ``cursor``
        is None, else the page it points to. Each event is dated when the change was made, and
        its ``event_id`` is the one the portal's webhook delivery of that change gets wherever
        the portal gives both the same id (else a ``sync:`` id the command matches by content)."""
