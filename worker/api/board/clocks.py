"""Each clock of a ticket drawn over business time: where its calendar is open, where the
ticket was paused, its warnings, breach and escalations, and now. Pure.

A drawing is a strip from the ticket's creation to a little past the clock's last instant
(its deadline, its end, its last checkpoint, or now while it runs); every position is a
percentage of the strip's width, so the template draws it as SVG at any size. Open hours are
read off the calendar at `SAMPLES` evenly spaced instants: a few pixels' precision at any length
of strip, for a bounded cost.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from scheduler.clock import State
from scheduler.sla import Checkpoint, TicketSla

SAMPLES = 480  # calendar reads per strip
MARGIN = 0.04  # of the strip, after its last instant
SHORTEST = timedelta(minutes=10)  # a strip spans at least this much wall time

Span = tuple[float, float]  # (x, width), percent of the strip


@dataclass(frozen=True)
class Mark:
    x: float
    kind: str  # warning, breach, escalation, reminder
    key: str
    at: datetime
    fired: bool


@dataclass(frozen=True)
class Drawing:
    metric: str
    state: str
    start: datetime
    end: datetime
    due_at: datetime | None
    completed_at: datetime | None
    open: list[Span]
    paused: list[Span]
    marks: list[Mark]
    now_x: float | None  # None: now is past the strip (the clock ended long before)
    done_x: float | None  # where the clock stopped (met, or the ticket resolved)


def draw_clocks(
    sla: TicketSla,
    pauses: Sequence[tuple[datetime, datetime | None]],
    is_open: Callable[[str, datetime], bool],
    now: datetime,
) -> list[Drawing]:
    """One drawing per clock that applies; ``is_open(metric, at)`` reads the metric's calendar;
    ``pauses`` are the ticket's paused stretches (an open end: still paused)."""
    drawings = []
    for name, metric in sla.metrics.items():
        if metric.state is State.NOT_APPLICABLE:
            continue
        marks = [c for c in sla.checkpoints if c.metric == name]
        running = metric.state in (State.RUNNING, State.PAUSED)
        start = sla.created_at
        last = max(
            [start + SHORTEST, *(c.due_at for c in marks)]
            + [at for at in (metric.due_at, metric.completed_at) if at is not None]
            + ([now] if running else [])
        )
        end = last + (last - start) * MARGIN
        strip = _Strip(start, end)
        drawings.append(
            Drawing(
                metric=name,
                state=metric.state.value,
                start=start,
                end=end,
                due_at=metric.due_at,
                completed_at=metric.completed_at,
                open=strip.open_spans(partial(is_open, name)),
                paused=[strip.span(a, b or now) for a, b in pauses if strip.overlaps(a, b or now)],
                marks=[_mark(strip, c) for c in marks],
                now_x=strip.x(now) if start <= now <= end else None,
                done_x=strip.x(metric.completed_at) if metric.completed_at else None,
            )
        )
    return drawings


def _mark(strip: _Strip, checkpoint: Checkpoint) -> Mark:
    return Mark(
        strip.x(checkpoint.due_at),
        checkpoint.kind.value,
        checkpoint.key,
        checkpoint.due_at,
        checkpoint.fired,
    )


@dataclass(frozen=True)
class _Strip:
    start: datetime
    end: datetime

    def x(self, at: datetime) -> float:
        whole = (self.end - self.start).total_seconds()
        return round(100 * min(max((at - self.start).total_seconds() / whole, 0.0), 1.0), 3)

    def span(self, a: datetime, b: datetime) -> Span:
        left, right = self.x(a), self.x(b)
        return left, round(right - left, 3)

    def overlaps(self, a: datetime, b: datetime) -> bool:
        return a < self.end and b > self.start

    def open_spans(self, is_open: Callable[[datetime], bool]) -> list[Span]:
        step = (self.end - self.start) / SAMPLES
        spans: list[Span] = []
        opened: datetime | None = None
        for n in range(SAMPLES + 1):
            at = self.start + step * n
            now_open = is_open(at)
            if now_open and opened is None:
                opened = at
            elif not now_open and opened is not None:
                spans.append(self.span(opened, at))
                opened = None
        if opened is not None:
            spans.append(self.span(opened, self.end))
        return spans
