"""One sync run: page through a portal's changes, keep what the worker lacks, queue it.

For each page a `Puller` gives, the run reads the events the worker stored for the page's tickets
(one query), drops those already stored (`worker.sync.known`), checks the rest against the
source's policy as ingest does (a refused event is reported and skipped, never the end of the
run), and queues the others the way ingest does, where the worker applies them and stores each
``(source, event_id)`` once. The store, the check and the queue are passed in: the command
(`worker.commands.sync`) wires the real ones, tests fake any of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from shared.errors import EscaleraError, EvaluationError
from shared.events import Event
from worker.sync.base import Page, Puller
from worker.sync.known import new_events

log = structlog.get_logger("escalera.sync")

# source, ticket ids -> the events the worker stored for each of those tickets
StoredLookup = Callable[[str, Sequence[str]], dict[str, list[Event]]]
Check = Callable[[Event], None]  # raises EvaluationError for an event the policy cannot take
Enqueue = Callable[[Sequence[Event]], None]


class SyncError(EscaleraError):
    """The portal led the run nowhere (the same page again)."""


@dataclass(frozen=True)
class Refusal:
    event: Event
    reason: str


@dataclass(frozen=True)
class PageDone:
    """What one page came to."""

    number: int
    tickets: int  # changed tickets the page read
    found: int  # events the page held
    stored: int  # of those, already stored
    queued: list[Event]  # queued (or, in a dry run, to be queued)
    refused: list[Refusal]


@dataclass
class Totals:
    pages: int = 0
    tickets: int = 0
    found: int = 0
    stored: int = 0
    queued: int = 0
    refused: int = 0

    def add(self, page: PageDone) -> None:
        self.pages += 1
        self.tickets += page.tickets
        self.found += page.found
        self.stored += page.stored
        self.queued += len(page.queued)
        self.refused += len(page.refused)


@dataclass
class Sync:
    """A run over one portal; ``enqueue`` None is a dry run (nothing queued)."""

    puller: Puller
    stored_for: StoredLookup
    check: Check
    enqueue: Enqueue | None
    totals: Totals = field(default_factory=Totals)
    # what this run queued, by ticket: a change a later page repeats is not queued twice
    _queued: dict[str, list[Event]] = field(default_factory=dict, init=False, repr=False)

    def run(self, since: datetime, until: datetime) -> Iterator[PageDone]:
        """Every page of the changes made in ``[since, until)``, each done as it is read."""
        cursor: str | None = None
        number = 0
        while True:
            page = self.puller.page(since, until, cursor)
            number += 1
            done = self._take(number, page)
            self.totals.add(done)
            yield done
            if page.cursor is None:
                return
            if page.cursor == cursor:
                raise SyncError(
                    f"{self.puller.source} gave page {number} the cursor it was asked for "
                    f"({page.cursor[:80]}): stopping rather than reading it again"
                )
            cursor = page.cursor

    def _take(self, number: int, page: Page) -> PageDone:
        source = self.puller.source
        tickets = sorted({event.ticket_id for event in page.events})
        known = self.stored_for(source, tickets) if tickets else {}
        for ticket in tickets:
            known.setdefault(ticket, []).extend(self._queued.get(ticket, []))
        split = new_events(page.events, known)
        fresh, refused = self._checked(split.new)
        if fresh and self.enqueue is not None:
            self.enqueue(fresh)
        for event in fresh:
            self._queued.setdefault(event.ticket_id, []).append(event)
        return PageDone(number, page.tickets, len(page.events), len(split.stored), fresh, refused)

    def _checked(self, events: list[Event]) -> tuple[list[Event], list[Refusal]]:
        fresh: list[Event] = []
        refused: list[Refusal] = []
        for event in events:
            try:
                if event.source != self.puller.source:
                    raise EvaluationError(
                        f"event {event.event_id}: pulled from {self.puller.source} "
                        f"but says source {event.source!r}"
                    )
                self.check(event)
            except EvaluationError as exc:
                refused.append(Refusal(event, str(exc)))
                log.warning(
                    "sync_event_refused",
                    source=event.source,
                    ticket_id=event.ticket_id,
                    event_id=event.event_id,
                    reason=str(exc),
                )
            else:
                fresh.append(event)
        return fresh, refused
