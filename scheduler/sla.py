"""The result of evaluating one ticket: its metrics and checkpoints, and their JSON shape."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from scheduler.clock import State


class Kind(StrEnum):
    WARNING = "warning"
    BREACH = "breach"
    ESCALATION = "escalation"
    REMINDER = "reminder"  # an update still missing, one more update interval later


@dataclass(frozen=True)
class MetricSla:
    state: State
    target: timedelta | None
    elapsed: timedelta
    due_at: datetime | None
    completed_at: datetime | None
    breached_at: datetime | None
    remaining: timedelta | None
    tz: ZoneInfo

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "state": self.state.value,
            "target_seconds": _seconds(self.target),
            "elapsed_seconds": _seconds(self.elapsed),
            "due_at": _iso(self.due_at, self.tz),
            "completed_at": _iso(self.completed_at, self.tz),
            "breached_at": _iso(self.breached_at, self.tz),
        }
        if self.remaining is not None:
            out["remaining_seconds"] = _seconds(self.remaining)
        return out


@dataclass(frozen=True)
class Checkpoint:
    """An instant at which somebody must be told something about the ticket.

    ``key`` is stable across re-evaluations (metric, kind, level and cycle), so the worker can
    tell a moved checkpoint from a new one and never notify twice for the same one. A warning
    is at a ``percent`` of the target, or (a warning by time) where only ``left`` of working
    time is left before the deadline.
    """

    key: str
    metric: str
    kind: Kind
    percent: int | None
    tier: int | None
    due_at: datetime
    fired: bool
    tz: ZoneInfo
    left: timedelta | None = None

    def to_json(self) -> dict[str, Any]:
        out = {
            "key": self.key,
            "metric": self.metric,
            "kind": self.kind.value,
            "percent": self.percent,
            "tier": self.tier,
            "due_at": _iso(self.due_at, self.tz),
            "fired": self.fired,
        }
        if self.left is not None:
            out["left_seconds"] = _seconds(self.left)
        return out


@dataclass(frozen=True)
class TicketSla:
    ticket_id: str
    source: str
    plan: str
    priority: str
    status: str
    tier: int
    created_at: datetime
    metrics: dict[str, MetricSla]
    checkpoints: tuple[Checkpoint, ...]
    tz: ZoneInfo
    target: int | None = None  # the position in the policy's targets of the one now in force

    @property
    def next_checkpoint(self) -> Checkpoint | None:
        pending = [c for c in self.checkpoints if not c.fired]
        return min(pending, key=lambda c: c.due_at) if pending else None

    def to_json(self) -> dict[str, Any]:
        return {
            "ticket_id": self.ticket_id,
            "source": self.source,
            "plan": self.plan,
            "priority": self.priority,
            "status": self.status,
            "tier": self.tier,
            "created_at": _iso(self.created_at, self.tz),
            "metrics": {name: metric.to_json() for name, metric in self.metrics.items()},
            "checkpoints": [c.to_json() for c in self.checkpoints],
        }


def _seconds(value: timedelta | None) -> int | None:
    return None if value is None else int(value.total_seconds())


def _iso(value: datetime | None, tz: ZoneInfo) -> str | None:
    return None if value is None else value.astimezone(tz).isoformat()
