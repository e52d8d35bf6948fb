"""Each report as sections (for the table and CSV) and as one JSON document.

A ticket's subject is cut to `SUBJECT_SHOWN` characters in tables and CSV (JSON has it whole).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from scheduler.context import TicketContext, shorten
from worker.report.acks import RouteAcks
from worker.report.allowances import ContactEvent, Usage
from worker.report.at_risk import AtRisk
from worker.report.compliance import Compliance, ComplianceRow
from worker.report.render import Cell, Section, clock, iso, percent, span
from worker.report.tickets import Period, ReportTicket
from worker.report.timeline import Entry
from worker.report.trend import TrendPoint

SUBJECT_SHOWN = 80  # characters of a subject in a table cell or a title
# What a narrow terminal keeps of the at-risk queue: which ticket, how long is left, to what.
AT_RISK_KEPT = ("ticket", "left", "next", "priority", "customer", "breached", "subject", "due")

# -- compliance --------------------------------------------------------------------------------


def compliance_sections(report: Compliance, zone: ZoneInfo) -> list[Section]:
    rows = Section(
        f"Compliance of tickets created {_period(report.period, zone)}",
        ("by", "group", "metric", "met", "breached", "open", "share", "commitment", "kept"),
        [_compliance_cells(r) for r in report.rows],
        keep=("group", "metric", "share", "commitment", "kept", "breached", "met", "open", "by"),
    )
    customers = Section(
        "Customers with the most breaches",
        ("customer", "tickets", "breaches"),
        [(c.customer, c.tickets, c.breaches) for c in report.worst_customers],
    )
    tickets = Section(
        "Tickets with the most breaches",
        ("ticket", "subject", "customer", "priority", "breached", "first breach"),
        [
            (
                o.ticket.name,
                _subject(o.ticket),
                o.ticket.customer,
                o.ticket.sla.priority,
                ", ".join(o.breaches),
                clock(min(o.breaches.values()), zone) if o.breaches else None,
            )
            for o in report.worst_tickets
        ],
        keep=("ticket", "breached", "first breach", "priority", "customer", "subject"),
    )
    return [rows, customers, tickets]


def _compliance_cells(row: ComplianceRow) -> tuple[Any, ...]:
    kept = None if row.kept is None else ("yes" if row.kept else "NO")
    commitment = None if row.commitment is None else f"{row.commitment:g} %"
    return (
        row.dimension,
        row.group,
        row.metric,
        row.met,
        row.breached,
        row.open,
        percent(row.share),
        commitment,
        kept,
    )


def compliance_json(
    report: Compliance, trend: Sequence[TrendPoint], zone: ZoneInfo
) -> dict[str, Any]:
    return {
        "period": _period_json(report.period, zone),
        "rows": [
            {
                "dimension": r.dimension,
                "group": r.group,
                "metric": r.metric,
                "met": r.met,
                "breached": r.breached,
                "open": r.open,
                "share": _round(r.share),
                "commitment": r.commitment,
                "kept": r.kept,
            }
            for r in report.rows
        ],
        "worst_customers": [
            {"customer": c.customer, "tickets": c.tickets, "breaches": c.breaches}
            for c in report.worst_customers
        ],
        "worst_tickets": [
            {
                **_ticket_json(o.ticket),
                "breaches": {m: iso(at, zone) for m, at in o.breaches.items()},
            }
            for o in report.worst_tickets
        ],
        "trend": [
            {
                "bucket": p.bucket.isoformat(),
                "metric": p.metric,
                "met": p.met,
                "breached": p.breached,
                "share": _round(p.share),
            }
            for p in trend
        ],
    }


# -- at risk -----------------------------------------------------------------------------------


def at_risk_sections(queue: Sequence[AtRisk], at: datetime, zone: ZoneInfo) -> list[Section]:
    return [
        Section(
            f"Open tickets by time left to their next checkpoint, as of {clock(at, zone)}",
            (
                "ticket",
                "subject",
                "customer",
                "group",
                "assignee",
                "plan",
                "priority",
                "status",
                "next",
                "due",
                "left",
                "breached",
            ),
            [
                (
                    r.ticket.name,
                    _subject(r.ticket),
                    r.ticket.customer,
                    r.ticket.context.group,
                    r.ticket.context.assignee,
                    r.ticket.sla.plan,
                    r.ticket.sla.priority,
                    r.ticket.sla.status,
                    r.checkpoint.key,
                    clock(r.checkpoint.due_at, zone),
                    span(r.left),
                    ", ".join(r.breached) or None,
                )
                for r in queue
            ],
            keep=AT_RISK_KEPT,
        )
    ]


def at_risk_json(queue: Sequence[AtRisk], at: datetime, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "at": iso(at, zone),
        "tickets": [
            {
                **_ticket_json(r.ticket),
                "status": r.ticket.sla.status,
                "next_checkpoint": r.checkpoint.to_json(),
                "left_seconds": int(r.left.total_seconds()),
                "breached": list(r.breached),
            }
            for r in queue
        ],
    }


# -- timeline ----------------------------------------------------------------------------------


def timeline_sections(ticket: ReportTicket, entries: Sequence[Entry]) -> list[Section]:
    zone = ticket.sla.tz
    about = f' "{_subject(ticket)}"' if ticket.context.subject else ""
    metrics = Section(
        f"{ticket.name}{about} ({ticket.customer or 'no customer'}, {ticket.sla.plan}, "
        f"{ticket.sla.priority}, {ticket.sla.status})",
        ("metric", "state", "due", "elapsed"),
        [
            (
                name,
                m.state.value,
                clock(m.due_at, zone) if m.due_at else None,
                span(m.elapsed),
            )
            for name, m in ticket.sla.metrics.items()
        ],
    )
    rows = Section(
        "Timeline",
        ("at", "kind", "what", "detail"),
        [(clock(e.at, zone), e.kind, e.what, _detail(e.detail, zone)) for e in entries],
        keep=("at", "what", "detail", "kind"),
        wraps=("detail",),
    )
    return [rows, metrics, *_context_sections(ticket.name, ticket.context)]


def _context_sections(name: str, context: TicketContext) -> list[Section]:
    """The ticket's context, one known field a row (the subject whole); none if nothing is."""
    known = {**context.to_json(), "tags": ", ".join(context.tags) if context.tags else None}
    rows: list[tuple[Cell, ...]] = [(field, value) for field, value in known.items() if value]
    return [Section(f"{name} in its portal", ("field", "value"), rows)] if rows else []


def timeline_json(ticket: ReportTicket, entries: Sequence[Entry]) -> dict[str, Any]:
    zone = ticket.sla.tz
    return {
        **ticket.sla.to_json(),
        "customer": ticket.customer,
        "ticket": ticket.context.to_json(),
        "timeline": [
            {
                "at": iso(e.at, zone),
                "kind": e.kind,
                "what": e.what,
                **{k: iso(v, zone) if isinstance(v, datetime) else v for k, v in e.detail.items()},
            }
            for e in entries
        ],
    }


def _detail(detail: dict[str, Any], zone: ZoneInfo) -> str:
    shown = {k: _shown(v, zone) for k, v in detail.items()}
    return ", ".join(f"{k}={v}" for k, v in shown.items() if v is not None and k != "event_id")


def _shown(value: Any, zone: ZoneInfo) -> Any:
    """A detail's value as a person reads it: a time in the zone, a list of tags bracketed."""
    if isinstance(value, datetime):
        return clock(value, zone)
    if isinstance(value, list):
        return "[" + ", ".join(str(item) for item in value) + "]"
    return value


# -- allowances --------------------------------------------------------------------------------


def allowance_sections(
    usage: Sequence[Usage], flagged: Sequence[ContactEvent], zone: ZoneInfo
) -> list[Section]:
    used = Section(
        "Tickets used against the yearly allowance",
        (
            "customer",
            "plan",
            "year",
            "counted",
            "allowance",
            "used",
            "warned at",
            "grace",
            "contacts",
        ),
        [
            (
                u.customer,
                u.plan,
                f"{u.year_start} – {u.year_end}",
                u.counted,
                u.allowance,
                percent(u.share),
                ", ".join(f"{p} %" for p in u.levels) or None,
                u.excluded,
                _contacts(u),
            )
            for u in usage
        ],
    )
    contacts = Section(
        "Events from contacts not authorized for the customer",
        ("at", "ticket", "customer", "event", "requester"),
        [
            (
                clock(e.occurred_at, zone),
                f"{e.source}/{e.ticket_id}",
                e.customer,
                e.type,
                e.requester,
            )
            for e in flagged
        ],
    )
    return [used, contacts]


def allowance_json(
    usage: Sequence[Usage], flagged: Sequence[ContactEvent], zone: ZoneInfo
) -> dict[str, Any]:
    return {
        "usage": [
            {
                "customer": u.customer,
                "plan": u.plan,
                "year_start": u.year_start.isoformat(),
                "year_end": u.year_end.isoformat(),
                "counted": u.counted,
                "excluded_grace": u.excluded,
                "allowance": u.allowance,
                "share": _round(u.share),
                "levels_reached": list(u.levels),
                "contacts": u.contacts,
                "contacts_allowed": u.contacts_allowed,
            }
            for u in usage
        ],
        "unauthorized": [
            {
                "at": iso(e.occurred_at, zone),
                "source": e.source,
                "ticket_id": e.ticket_id,
                "event_id": e.event_id,
                "type": e.type,
                "customer": e.customer,
                "requester": e.requester,
            }
            for e in flagged
        ],
    }


def _contacts(u: Usage) -> str | None:
    if u.contacts is None:
        return None
    limit = f" of {u.contacts_allowed}" if u.contacts_allowed is not None else ""
    over = " (over)" if u.contacts_allowed is not None and u.contacts > u.contacts_allowed else ""
    return f"{u.contacts}{limit}{over}"


# -- acknowledgements --------------------------------------------------------------------------


def acks_sections(rows: Sequence[RouteAcks], period: Period, zone: ZoneInfo) -> list[Section]:
    return [
        Section(
            f"Acknowledgement of pages sent {_period(period, zone)}",
            ("route", "pages", "acknowledged", "unacknowledged", "p50", "p90", "most by"),
            [
                (
                    r.route,
                    r.pages,
                    r.acknowledged,
                    r.unacknowledged,
                    span(r.p50),
                    span(r.p90),
                    f"{r.top_acker} ({r.top_acks})" if r.top_acker else None,
                )
                for r in rows
            ],
            keep=("route", "p50", "p90", "unacknowledged", "pages", "acknowledged", "most by"),
        )
    ]


def acks_json(rows: Sequence[RouteAcks], period: Period, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "period": _period_json(period, zone),
        "routes": [
            {
                "route": r.route,
                "pages": r.pages,
                "acknowledged": r.acknowledged,
                "unacknowledged": r.unacknowledged,
                "p50_seconds": _seconds(r.p50),
                "p90_seconds": _seconds(r.p90),
                "most_acknowledged_by": r.top_acker,
                "most_acknowledged": r.top_acks,
            }
            for r in rows
        ],
    }


def _seconds(value: timedelta | None) -> int | None:
    return None if value is None else int(value.total_seconds())


# -- shared ------------------------------------------------------------------------------------


def _ticket_json(ticket: ReportTicket) -> dict[str, Any]:
    return {
        "source": ticket.sla.source,
        "ticket_id": ticket.sla.ticket_id,
        "customer": ticket.customer,
        "plan": ticket.sla.plan,
        "priority": ticket.sla.priority,
        "subject": ticket.context.subject,
        "group": ticket.context.group,
        "assignee": ticket.context.assignee,
    }


def _subject(ticket: ReportTicket) -> str | None:
    return shorten(ticket.context.subject, SUBJECT_SHOWN)


def _period(period: Period, zone: ZoneInfo) -> str:
    return (
        f"{clock(period.start, zone)} – {clock(period.end, zone)}, as of {clock(period.at, zone)}"
    )


def _period_json(period: Period, zone: ZoneInfo) -> dict[str, str | None]:
    return {
        "from": iso(period.start, zone),
        "to": iso(period.end, zone),
        "at": iso(period.at, zone),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
