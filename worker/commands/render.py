"""Showing SLA results to people: JSON for machines, a rich table for the terminal."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table
from rich.text import Text

from scheduler.sla import Checkpoint, MetricSla, TicketSla
from worker.commands.simulate import Simulation

_STYLE = {
    "running": "yellow",
    "paused": "cyan",
    "met": "green",
    "breached": "bold red",
    "not_applicable": "dim",
}
_METRICS = (
    ("first_response", "First response"),
    ("update", "Update"),
    ("next_reply", "Next reply"),
    ("resolution", "Resolution"),
)


def simulation_json(result: Simulation) -> dict[str, Any]:
    return {"at": result.at.isoformat(), "tickets": [t.to_json() for t in result.tickets]}


def simulation_table(result: Simulation, console: Console) -> None:
    table = Table(title=f"SLA as of {result.at.isoformat()}", title_justify="left")
    for header in ("Ticket", "Plan", "Prio", "Status"):
        table.add_column(header, no_wrap=True)
    # A metric no ticket is measured on (e.g. a policy without resolution targets) is left out.
    shown = [
        (key, header)
        for key, header in _METRICS
        if any(t.metrics[key].state.value != "not_applicable" for t in result.tickets)
    ]
    for _key, header in shown:
        table.add_column(header)
    table.add_column("Next checkpoint")
    for ticket in result.tickets:
        table.add_row(
            ticket.ticket_id,
            ticket.plan,
            ticket.priority,
            ticket.status,
            *(_metric_cell(ticket.metrics[key], result.at) for key, _ in shown),
            _next_cell(ticket, result.at),
        )
    console.print(table)
    for waiting in result.waiting:
        console.print(f"[yellow]{waiting}: events kept, waiting for its created event[/]")


def _metric_cell(metric: MetricSla, at: datetime) -> Text:
    state = metric.state.value
    if state == "not_applicable":
        return Text("—", style="dim")
    text = Text(state, style=_STYLE[state])
    if state == "running" and metric.due_at is not None:
        text.append(f" → {_when(metric.due_at, at, metric.tz)} ({_span(metric.due_at - at)})")
    elif state == "paused" and metric.remaining is not None:
        text.append(f" {_span(metric.remaining)} left")
    elif state == "breached" and metric.breached_at is not None:
        text.append(f" {_when(metric.breached_at, at, metric.tz)}")
    elif metric.completed_at is not None:
        text.append(f" {_when(metric.completed_at, at, metric.tz)}")
    return text


def _next_cell(ticket: TicketSla, at: datetime) -> str:
    nxt = ticket.next_checkpoint
    if nxt is None:
        return "—"
    name = nxt.kind.value if nxt.metric == "escalation" else f"{nxt.metric} {nxt.kind.value}"
    return f"{name}{_level(nxt)} {_when(nxt.due_at, at, nxt.tz)} (in {_span(nxt.due_at - at)})"


def _level(checkpoint: Checkpoint) -> str:
    """What tells a checkpoint from its clock's others: `` 75%``, `` 30m left``, `` T2``."""
    if checkpoint.percent:
        return f" {checkpoint.percent}%"
    if checkpoint.left is not None:
        return f" {_span(checkpoint.left)} left"
    return f" T{checkpoint.tier}" if checkpoint.tier else ""


def _when(instant: datetime, at: datetime, tz: ZoneInfo) -> str:
    """A short local time; the day is shown only when it is not the report's day."""
    local = instant.astimezone(tz)
    return (
        f"{local:%H:%M}" if local.date() == at.astimezone(tz).date() else f"{local:%a %d %b %H:%M}"
    )


def _span(delta: timedelta) -> str:
    seconds = int(abs(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = [f"{days}d"] if days else []
    parts += [f"{hours}h"] if hours else []
    parts += [f"{minutes}m"] if minutes or not parts else []
    return " ".join(parts[:2])
