"""How fast each route's pages are acknowledged: pages sent, acknowledged, p50/p90. Pure.

A page is one checkpoint told on one route (its repeats and a chain's steps are the same page).
It counts from its first notification delivered; it is acknowledged when a person acknowledged
it by the report's instant. Time to acknowledge runs from that first delivery to the
acknowledgement (zero when someone acknowledged before the delivery was recorded).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from worker.report.tickets import Period


@dataclass(frozen=True)
class Page:
    """A page as stored: where it went, for what, when it was first delivered, its ack."""

    route: str
    ticket: str  # SOURCE/ID
    checkpoint: str  # the checkpoint's key
    sent_at: datetime  # its first notification's delivery
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None


@dataclass(frozen=True)
class RouteAcks:
    route: str
    pages: int
    acknowledged: int
    p50: timedelta | None  # None: nothing acknowledged
    p90: timedelta | None
    top_acker: str | None  # who acknowledged most of the route's pages (ties: by name)
    top_acks: int

    @property
    def unacknowledged(self) -> int:
        return self.pages - self.acknowledged


def percentile(values: Sequence[timedelta], share: float) -> timedelta | None:
    """The nearest-rank percentile (``share`` in (0, 1]): the smallest value with at least
    that share of the values at or below it, so it is always a time someone actually took."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(share * len(ordered)), 1) - 1]


def route_acks(pages: Iterable[Page], period: Period) -> list[RouteAcks]:
    """Per route, by name, the pages first delivered in the period, acknowledged as of
    ``period.at``."""
    by_route: dict[str, list[Page]] = defaultdict(list)
    for page in pages:
        if period.covers(page.sent_at) and page.sent_at <= period.at:
            by_route[page.route].append(page)
    return [_row(route, by_route[route], period.at) for route in sorted(by_route)]


def _row(route: str, pages: Sequence[Page], at: datetime) -> RouteAcks:
    acked = [p for p in pages if p.acknowledged_at is not None and p.acknowledged_at <= at]
    waits = [max(p.acknowledged_at - p.sent_at, timedelta(0)) for p in acked if p.acknowledged_at]
    people = Counter(p.acknowledged_by for p in acked if p.acknowledged_by)
    top = min(people.items(), key=lambda kv: (-kv[1], kv[0]), default=None)
    return RouteAcks(
        route,
        len(pages),
        len(acked),
        percentile(waits, 0.5),
        percentile(waits, 0.9),
        top[0] if top else None,
        top[1] if top else 0,
    )
