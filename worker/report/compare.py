"""What a policy would have changed: the same tickets judged under two policies. Pure.

Each ticket's events are evaluated under both policies as of one instant, with the core the
worker runs. Each side's figures are `compliance.compliance` over its own evaluations (what
``escalera report compliance`` shows), paired row by row with the difference in share; each
metric whose outcome differs between the two (met under one, breached under the other) is
listed with the deadline that decided it under each policy.

A ticket that either policy cannot evaluate (a priority the new policy does not know) is left
out of both sides, with the reason, so the two columns always count the same tickets.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from scheduler.calendars import CalendarBook
from scheduler.context import TicketContext
from scheduler.evaluate import evaluate
from scheduler.sla import Kind, TicketSla
from shared.errors import EvaluationError, TicketNotCreated
from shared.events import Event, EventType
from shared.policy import Policy
from worker.report.compliance import DIMENSIONS, ComplianceRow, compliance
from worker.report.outcomes import METRICS, Outcome, breach_instants, outcomes
from worker.report.tickets import Period, ReportTicket

# A period that covers every ticket: what is compared when no period is asked for.
_EVER = (datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC))


@dataclass(frozen=True)
class Side:
    """A policy under comparison, and what the output calls it (its file or its name)."""

    label: str
    policy: Policy
    calendars: CalendarBook

    @classmethod
    def of(cls, label: str, policy: Policy) -> Side:
        return cls(label, policy, CalendarBook(policy))


@dataclass(frozen=True)
class RowChange:
    """One compliance row (dimension, group, metric) under each policy; None: no such row
    there (no ticket of that group is measured on the metric under that policy)."""

    dimension: str
    group: str
    metric: str
    old: ComplianceRow | None
    new: ComplianceRow | None

    @property
    def change(self) -> float | None:
        """Percentage points the share moves (new minus old); None if either is undecided."""
        old, new = _share(self.old), _share(self.new)
        return None if old is None or new is None else new - old

    @property
    def changed(self) -> bool:
        return _figures(self.old) != _figures(self.new)


@dataclass(frozen=True)
class OutcomeChange:
    """A ticket whose promise on ``metric`` is decided otherwise under the new policy."""

    old: ReportTicket
    new: ReportTicket
    metric: str
    was: Outcome
    becomes: Outcome
    old_deadline: datetime | None
    new_deadline: datetime | None


@dataclass(frozen=True)
class Refused:
    ticket: str  # SOURCE/ID
    policy: str  # the side's label
    reason: str


@dataclass(frozen=True)
class Comparison:
    old: str
    new: str
    at: datetime
    created: tuple[datetime, datetime] | None  # tickets created in [from, to); None: all
    tickets: int  # compared, under both
    rows: list[RowChange]
    changes: list[OutcomeChange]
    waiting: list[str]  # tickets with events but no created event by ``at``
    refused: list[Refused]


def compare(
    old: Side,
    new: Side,
    histories: Iterable[Sequence[Event]],
    at: datetime,
    *,
    created: tuple[datetime, datetime] | None = None,
) -> Comparison:
    """Every ticket of ``histories`` (one ticket's events each, created in ``created`` if given)
    judged under ``old`` and ``new`` as of ``at``."""
    pairs: list[tuple[ReportTicket, ReportTicket]] = []
    waiting: list[str] = []
    refused: list[Refused] = []
    for history in filter(None, histories):
        before, after = _judge(old, history, at), _judge(new, history, at)
        if before is None or after is None:
            waiting.append(_name(history))
        elif isinstance(before, Refused) or isinstance(after, Refused):
            refused += [r for r in (before, after) if isinstance(r, Refused)]
        elif created is None or created[0] <= before.sla.created_at < created[1]:
            pairs.append((before, after))
    period = Period(*(created or _EVER), at)
    old_rows = compliance(old.policy, [o for o, _ in pairs], period, worst=0).rows
    new_rows = compliance(new.policy, [n for _, n in pairs], period, worst=0).rows
    return Comparison(
        old.label,
        new.label,
        at,
        created,
        len(pairs),
        pair_rows(old_rows, new_rows),
        [change for o, n in pairs for change in outcome_changes(old.policy, o, new.policy, n)],
        waiting,
        refused,
    )


def histories(events: Iterable[Event]) -> list[list[Event]]:
    """An events file split into tickets, in order of each ticket's first event."""
    by_ticket: dict[tuple[str, str], list[Event]] = {}
    for event in events:
        by_ticket.setdefault((event.source, event.ticket_id), []).append(event)
    return list(by_ticket.values())


def pair_rows(old: Sequence[ComplianceRow], new: Sequence[ComplianceRow]) -> list[RowChange]:
    """The rows of both sides matched by (dimension, group, metric), in the report's order."""
    before = {(r.dimension, r.group, r.metric): r for r in old}
    after = {(r.dimension, r.group, r.metric): r for r in new}
    dimensions = {d: i for i, d in enumerate(DIMENSIONS)}
    metrics = {m: i for i, m in enumerate(METRICS)}
    keys = sorted(
        before.keys() | after.keys(), key=lambda k: (dimensions[k[0]], k[1], metrics[k[2]])
    )
    return [RowChange(*key, before.get(key), after.get(key)) for key in keys]


def outcome_changes(
    old_policy: Policy, old: ReportTicket, new_policy: Policy, new: ReportTicket
) -> list[OutcomeChange]:
    """The metrics of one ticket whose outcome differs between its two evaluations."""
    was, becomes = outcomes(old_policy, old.sla), outcomes(new_policy, new.sla)
    return [
        OutcomeChange(
            old,
            new,
            metric,
            was[metric],
            becomes[metric],
            deadline(old.sla, metric, was[metric]),
            deadline(new.sla, metric, becomes[metric]),
        )
        for metric in METRICS
        if was[metric] != becomes[metric]
    ]


def deadline(sla: TicketSla, metric: str, outcome: Outcome) -> datetime | None:
    """The deadline that decided ``metric`` (or will): the first one broken if one was, else
    the one met or still running; None where the metric is not measured."""
    if outcome is Outcome.NONE:
        return None
    broken = breach_instants(sla).get(metric)
    if broken is not None:
        return broken
    if metric == "escalation":  # the next tier due `after` a time, as outcomes.py counts them
        ahead = [
            c.due_at
            for c in sla.checkpoints
            if c.kind is Kind.ESCALATION and not c.fired and c.key == f"escalation:tier{c.tier}"
        ]
        return min(ahead, default=None)
    return sla.metrics[metric].due_at


def _judge(side: Side, history: Sequence[Event], at: datetime) -> ReportTicket | Refused | None:
    """The ticket as a report sees it under ``side``'s policy (as `queries.evaluate_tickets`);
    None if it was not created by ``at``."""
    try:
        sla = evaluate(side.policy, history, at, calendars=side.calendars)
    except TicketNotCreated:
        return None
    except EvaluationError as exc:
        return Refused(_name(history), side.label, str(exc))
    customer = next((e.customer for e in history if e.type is EventType.CREATED), None)
    return ReportTicket(sla, customer, TicketContext.of(history, at))


def _name(history: Sequence[Event]) -> str:
    return f"{history[0].source}/{history[0].ticket_id}"


def _share(row: ComplianceRow | None) -> float | None:
    return None if row is None else row.share


def _figures(row: ComplianceRow | None) -> tuple[object, ...] | None:
    return None if row is None else (row.met, row.breached, row.open, row.commitment)
