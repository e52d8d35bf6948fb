"""Compliance over time: the share per metric of tickets created in each day, week or month."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from shared.policy import Policy
from worker.report.outcomes import Outcome, outcomes
from worker.report.tickets import Period, ReportTicket

EVERY = ("day", "week", "month")


@dataclass(frozen=True)
class TrendPoint:
    bucket: date  # the first day of the day, week (Monday) or month, in the policy's zone
    metric: str
    met: int
    breached: int

    @property
    def share(self) -> float | None:
        decided = self.met + self.breached
        return 100 * self.met / decided if decided else None


def trend(
    policy: Policy, tickets: Iterable[ReportTicket], period: Period, every: str = "week"
) -> list[TrendPoint]:
    """Per bucket of creation date and metric, the promises kept and broken (decided only)."""
    if every not in EVERY:
        raise ValueError(f"every must be one of {', '.join(EVERY)}")
    zone = ZoneInfo(policy.default_timezone)
    counts: dict[tuple[date, str], Counter[Outcome]] = defaultdict(Counter)
    for ticket in tickets:
        if not period.covers(ticket.sla.created_at):
            continue
        bucket = bucket_of(ticket.sla.created_at, zone, every)
        for metric, outcome in outcomes(policy, ticket.sla).items():
            if outcome in (Outcome.MET, Outcome.BREACHED):
                counts[bucket, metric][outcome] += 1
    return [
        TrendPoint(bucket, metric, c[Outcome.MET], c[Outcome.BREACHED])
        for (bucket, metric), c in sorted(counts.items())
    ]


def bucket_of(instant: datetime, zone: ZoneInfo, every: str) -> date:
    day = instant.astimezone(zone).date()
    if every == "week":
        return day - timedelta(days=day.weekday())
    if every == "month":
        return day.replace(day=1)
    return day
