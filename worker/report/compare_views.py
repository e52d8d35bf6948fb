"""A policy comparison as sections (a table for people, a flat CSV) and as one JSON document.

The table leaves out the customer rows whose figures do not change (a desk has many customers
and a policy change touches a few); CSV and JSON carry every row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from scheduler.context import shorten
from worker.report.compare import Comparison, OutcomeChange, RowChange
from worker.report.compliance import ComplianceRow
from worker.report.render import Cell, Section, clock, iso, percent
from worker.report.views import SUBJECT_SHOWN

_SIDE_FIGURES = ("met", "breached", "open", "share")


def comparison_sections(report: Comparison, zone: ZoneInfo) -> list[Section]:
    """For the terminal: each side's share in one cell, then the tickets that change."""
    shown = [r for r in report.rows if r.dimension != "customer" or r.changed]
    hidden = len({r.group for r in report.rows if r.dimension == "customer"} - _groups(shown))
    note = f"; {hidden} customers unchanged, not shown" if hidden else ""
    rows = Section(
        f"Compliance of {report.tickets} tickets {_scope(report, zone)}: "
        f"old = {report.old}, new = {report.new}{note}",
        ("by", "group", "metric", "old", "new", "change", "commitment", "kept"),
        [
            (
                r.dimension,
                r.group,
                r.metric,
                _side_cell(r.old),
                _side_cell(r.new),
                points(r.change),
                _both(r, _commitment),
                _both(r, _kept),
            )
            for r in shown
        ],
    )
    return [rows, *_ticket_sections(report, zone)]


def comparison_csv_section(reports: Sequence[Comparison]) -> Section:
    """Every row of every comparison, each side's figures in columns of their own; each row
    names both policies, so it stands alone in a spreadsheet."""
    headers = (
        "old policy",
        "new policy",
        "by",
        "group",
        "metric",
        *(f"old {f}" for f in _SIDE_FIGURES),
        *(f"new {f}" for f in _SIDE_FIGURES),
        "change",
        "old commitment",
        "new commitment",
    )
    return Section(
        "Compliance under each policy",
        headers,
        [
            (
                report.old,
                report.new,
                r.dimension,
                r.group,
                r.metric,
                *_side_columns(r.old),
                *_side_columns(r.new),
                _round(r.change),
                r.old.commitment if r.old else None,
                r.new.commitment if r.new else None,
            )
            for report in reports
            for r in report.rows
        ],
    )


def comparison_json(report: Comparison, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "old": report.old,
        "new": report.new,
        "at": iso(report.at, zone),
        "created": None
        if report.created is None
        else {"from": iso(report.created[0], zone), "to": iso(report.created[1], zone)},
        "tickets": report.tickets,
        "rows": [
            {
                "dimension": r.dimension,
                "group": r.group,
                "metric": r.metric,
                "old": _side_json(r.old),
                "new": _side_json(r.new),
                "change": _round(r.change),
            }
            for r in report.rows
        ],
        "changes": [_change_json(c, zone) for c in report.changes],
        "waiting": report.waiting,
        "refused": [
            {"ticket": r.ticket, "policy": r.policy, "reason": r.reason} for r in report.refused
        ],
    }


def points(change: float | None) -> str | None:
    """A change of share in percentage points: ``-12.5 pp``, ``+4.0 pp``, ``0.0 pp``."""
    if change is None:
        return None
    return "0.0 pp" if round(change, 1) == 0 else f"{change:+.1f} pp"


def outcome_text(change: OutcomeChange) -> str:
    return f"{change.was.value} → {change.becomes.value}"


def _ticket_sections(report: Comparison, zone: ZoneInfo) -> list[Section]:
    changed = len({c.new.name for c in report.changes})
    # a subject column only when some ticket has one (an events file often has none)
    subjects = any(c.new.context.subject for c in report.changes)
    sections = [
        Section(
            f"Tickets that change outcome: {changed} of {report.tickets}",
            (
                "ticket",
                *(("subject",) if subjects else ()),
                "customer",
                "priority",
                "metric",
                "outcome",
                "old deadline",
                "new deadline",
            ),
            [
                (
                    c.new.name,
                    *((shorten(c.new.context.subject, SUBJECT_SHOWN),) if subjects else ()),
                    c.new.customer,
                    _priority(c),
                    c.metric,
                    outcome_text(c),
                    clock(c.old_deadline, zone) if c.old_deadline else None,
                    clock(c.new_deadline, zone) if c.new_deadline else None,
                )
                for c in report.changes
            ],
        )
    ]
    if report.refused:
        sections.append(
            Section(
                "Left out: a policy cannot evaluate these tickets",
                ("ticket", "policy", "why"),
                [(r.ticket, r.policy, r.reason) for r in report.refused],
            )
        )
    if report.waiting:
        sections.append(
            Section(
                "Left out: no created event yet",
                ("ticket",),
                [(name,) for name in report.waiting],
            )
        )
    return sections


def _side_cell(row: ComplianceRow | None) -> str | None:
    """``50.0 % (4/8)``: the share, and the promises kept of those decided; ``3 open`` while
    none is decided; None where the policy measures nothing here."""
    if row is None:
        return None
    decided = row.met + row.breached
    if not decided:
        return f"{row.open} open"
    return f"{percent(row.share)} ({row.met}/{decided})"


def _side_columns(row: ComplianceRow | None) -> tuple[Cell, ...]:
    if row is None:
        return (None, None, None, None)
    return (row.met, row.breached, row.open, _round(row.share))


def _side_json(row: ComplianceRow | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {
        "met": row.met,
        "breached": row.breached,
        "open": row.open,
        "share": _round(row.share),
        "commitment": row.commitment,
        "kept": row.kept,
    }


def _change_json(change: OutcomeChange, zone: ZoneInfo) -> dict[str, Any]:
    ticket = change.new
    return {
        "source": ticket.sla.source,
        "ticket_id": ticket.sla.ticket_id,
        "customer": ticket.customer,
        "subject": ticket.context.subject,
        "plan": ticket.sla.plan,
        "priority": ticket.sla.priority,
        "metric": change.metric,
        "old": {"outcome": change.was.value, "deadline": iso(change.old_deadline, zone)},
        "new": {"outcome": change.becomes.value, "deadline": iso(change.new_deadline, zone)},
    }


def _both(row: RowChange, show: Callable[[ComplianceRow | None], str | None]) -> str | None:
    """One value when both sides agree, ``old → new`` when they do not."""
    old, new = show(row.old), show(row.new)
    return old if old == new else f"{old or '—'} → {new or '—'}"


def _commitment(row: ComplianceRow | None) -> str | None:
    return None if row is None or row.commitment is None else f"{row.commitment:g} %"


def _kept(row: ComplianceRow | None) -> str | None:
    if row is None or row.kept is None:
        return None
    return "yes" if row.kept else "NO"


def _priority(change: OutcomeChange) -> str:
    old, new = change.old.sla.priority, change.new.sla.priority
    return new if old == new else f"{old} → {new}"


def _groups(rows: list[RowChange]) -> set[str]:
    return {r.group for r in rows if r.dimension == "customer"}


def _scope(report: Comparison, zone: ZoneInfo) -> str:
    at = clock(report.at, zone)
    if report.created is None:
        return f"as of {at}"
    start, end = (clock(t, zone) for t in report.created)
    return f"created {start} – {end}, as of {at}"


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
