"""One function per report: load (queries.py), compute (pure modules), shape (views.py).

The CLI and the HTTP routes call these and only choose the output format.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from shared.directory import EMPTY, Directory
from shared.errors import EscaleraError
from worker.policies.book import LoadedPolicy, PolicyBook
from worker.report import queries, views
from worker.report.acks import route_acks
from worker.report.allowances import unauthorized, usage
from worker.report.at_risk import at_risk
from worker.report.compliance import compliance
from worker.report.render import Section
from worker.report.tickets import Period
from worker.report.timeline import ticket_timeline
from worker.report.trend import TrendPoint, trend


class ReportNotFound(EscaleraError):
    """The ticket a report asks for is not stored (or not created yet)."""


@dataclass(frozen=True)
class Output:
    sections: list[Section]
    document: dict[str, Any]


def compliance_report(
    session: Session, loaded: LoadedPolicy, period: Period, *, every: str = "week", worst: int = 10
) -> tuple[Output, list[TrendPoint]]:
    tickets = queries.load_tickets(session, loaded, period.at, created=(period.start, period.end))
    policy, zone = loaded.policy, _zone(loaded)
    result = compliance(policy, tickets, period, worst=worst)
    points = trend(policy, tickets, period, every)
    return Output(
        views.compliance_sections(result, zone), views.compliance_json(result, points, zone)
    ), points


def at_risk_report(
    session: Session, loaded: LoadedPolicy, at: datetime, *, limit: int | None = None
) -> Output:
    tickets = queries.load_tickets(session, loaded, at, open_only=True)
    queue = at_risk(tickets, at)[:limit]
    zone = _zone(loaded)
    return Output(views.at_risk_sections(queue, at, zone), views.at_risk_json(queue, at, zone))


def timeline_report(
    session: Session,
    policies: PolicyBook,
    source: str,
    ticket_id: str,
    at: datetime,
    *,
    directory: Directory = EMPTY,
) -> Output:
    """One ticket's story; ``directory``: the operator's file, so a message that fell back
    names only the recipients no directory knows."""
    row = queries.find_ticket(session, source, ticket_id)
    if row is None:
        raise ReportNotFound(f"no events for ticket {source}/{ticket_id}")
    loaded = policies.named(row.policy)
    events = queries.events_of(session, row)
    found = list(queries.evaluate_tickets(loaded, [row], {row.id: events}, at))
    if not found:
        raise ReportNotFound(
            f"ticket {source}/{ticket_id} has {len(events)} events but no created event by {at}"
        )
    ticket = found[0]
    entries = ticket_timeline(
        loaded.policy,
        events,
        queries.checkpoints_of(session, row),
        queries.notifications_of(session, row),
        at,
        directory=directory,
    )
    return Output(views.timeline_sections(ticket, entries), views.timeline_json(ticket, entries))


def allowance_report(session: Session, loaded: LoadedPolicy, period: Period) -> Output:
    """Allowance years that overlap the period; contact flags on events within it."""
    policy, zone = loaded.policy, _zone(loaded)
    tickets = [
        t for t in queries.created_tickets(session, loaded.name) if t.created_at <= period.at
    ]
    years = [
        u
        for u in usage(policy, tickets)
        if u.year_start < period.end.date() and period.start.date() < u.year_end
    ]
    flagged = unauthorized(
        policy, queries.contact_events(session, loaded.name, (period.start, period.end))
    )
    return Output(
        views.allowance_sections(years, flagged, zone), views.allowance_json(years, flagged, zone)
    )


def acks_report(session: Session, loaded: LoadedPolicy, period: Period) -> Output:
    """Per route, the pages first delivered in the period and how fast they were acknowledged."""
    rows = route_acks(queries.pages_sent(session, loaded.name, (period.start, period.end)), period)
    zone = _zone(loaded)
    return Output(views.acks_sections(rows, period, zone), views.acks_json(rows, period, zone))


def _zone(loaded: LoadedPolicy) -> ZoneInfo:
    return ZoneInfo(loaded.policy.default_timezone)
