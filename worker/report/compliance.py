"""Compliance over a period: per metric, overall and by priority, plan and customer. Pure.

A row counts the tickets created in the period whose promise for the metric was met, breached or
is still open; its share is met / (met + breached), against the policy's commitment.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from shared.policy import Metric, Policy
from worker.report.outcomes import METRICS, Outcome, breach_instants, outcomes
from worker.report.tickets import Period, ReportTicket

DIMENSIONS: dict[str, Callable[[ReportTicket], str]] = {
    "all": lambda t: "all",
    "priority": lambda t: t.sla.priority,
    "plan": lambda t: t.sla.plan,
    "customer": lambda t: t.customer or "—",
}


@dataclass(frozen=True)
class ComplianceRow:
    dimension: str  # all, priority, plan, customer
    group: str
    metric: str
    met: int
    breached: int
    open: int
    commitment: float | None  # percent, from the policy

    @property
    def share(self) -> float | None:
        """Percent of decided promises kept; None when none is decided yet."""
        decided = self.met + self.breached
        return 100 * self.met / decided if decided else None

    @property
    def kept(self) -> bool | None:
        """Whether the share reaches the commitment (None: no commitment or nothing decided)."""
        if self.commitment is None or self.share is None:
            return None
        return self.share >= self.commitment


@dataclass(frozen=True)
class Offender:
    """A ticket that broke promises: which, and when it first broke each."""

    ticket: ReportTicket
    breaches: dict[str, datetime]


@dataclass(frozen=True)
class CustomerBreaches:
    customer: str
    tickets: int
    breaches: int


@dataclass(frozen=True)
class Compliance:
    period: Period
    rows: list[ComplianceRow]
    worst_customers: list[CustomerBreaches]
    worst_tickets: list[Offender]


def compliance(
    policy: Policy, tickets: Iterable[ReportTicket], period: Period, *, worst: int = 10
) -> Compliance:
    """The compliance of the tickets created in ``period`` (evaluated as of ``period.at``)."""
    chosen = [t for t in tickets if period.covers(t.sla.created_at)]
    judged = [(t, outcomes(policy, t.sla)) for t in chosen]
    rows = [
        row
        for dimension, key in DIMENSIONS.items()
        for row in _rows(policy, dimension, key, judged)
    ]
    offenders = [
        Offender(t, breach_instants(t.sla))
        for t, result in judged
        if Outcome.BREACHED in result.values()
    ]
    return Compliance(
        period, rows, _worst_customers(judged)[:worst], _worst_tickets(offenders)[:worst]
    )


def _rows(
    policy: Policy,
    dimension: str,
    key: Callable[[ReportTicket], str],
    judged: Sequence[tuple[ReportTicket, dict[str, Outcome]]],
) -> list[ComplianceRow]:
    counts: dict[tuple[str, str], Counter[Outcome]] = defaultdict(Counter)
    for ticket, result in judged:
        for metric, outcome in result.items():
            if outcome is not Outcome.NONE:
                counts[key(ticket), metric][outcome] += 1
    order = {m: i for i, m in enumerate(METRICS)}
    return [
        ComplianceRow(
            dimension,
            group,
            metric,
            met=c[Outcome.MET],
            breached=c[Outcome.BREACHED],
            open=c[Outcome.OPEN],
            commitment=policy.commitments.get(Metric(metric)),
        )
        for (group, metric), c in sorted(counts.items(), key=lambda kv: (kv[0][0], order[kv[0][1]]))
    ]


def _worst_customers(
    judged: Sequence[tuple[ReportTicket, dict[str, Outcome]]],
) -> list[CustomerBreaches]:
    tickets: Counter[str] = Counter()
    breaches: Counter[str] = Counter()
    for ticket, result in judged:
        name = ticket.customer or "—"
        tickets[name] += 1
        breaches[name] += sum(o is Outcome.BREACHED for o in result.values())
    ranked = sorted(
        (CustomerBreaches(name, tickets[name], count) for name, count in breaches.items() if count),
        key=lambda c: (-c.breaches, c.customer),
    )
    return ranked


def _worst_tickets(offenders: Sequence[Offender]) -> list[Offender]:
    return sorted(
        offenders,
        key=lambda o: (
            -len(o.breaches),
            min(o.breaches.values(), default=o.ticket.sla.created_at),
            o.ticket.name,
        ),
    )
