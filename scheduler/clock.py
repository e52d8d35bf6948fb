"""One SLA clock: working time accumulated over the spans in which it runs, against a target.

A clock is a list of `Span` (wall-time stretches in which it runs, each with the calendar and the
target in force then) and a cut-off: the instant it stopped (``completed``) or ``now``. From them
`read` derives the elapsed working time, the breach instant and each warning instant. A target
that changes mid-way (a priority change) keeps the working time already elapsed; if that already
exceeds the new target, the clock breaches at the change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from scheduler.calendar import Calendar

_US = timedelta(microseconds=1)


class State(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    MET = "met"
    BREACHED = "breached"
    NOT_APPLICABLE = "not_applicable"


@dataclass(frozen=True)
class Span:
    """A stretch of wall time in which the clock runs; ``end`` None means it runs on.

    ``target`` is None while the ticket has no target for the metric (say, a priority without
    one): the time still counts, so a later target starts from what has already elapsed.
    """

    start: datetime
    end: datetime | None
    calendar: Calendar
    target: timedelta | None


@dataclass(frozen=True)
class Reading:
    """What a clock says at its cut-off."""

    state: State
    target: timedelta
    calendar: Calendar
    elapsed: timedelta
    due_at: datetime | None
    completed_at: datetime | None
    breached_at: datetime | None
    remaining: timedelta | None
    # percent -> the instant that share of the target is used up (None: not reachable now)
    marks: dict[int, datetime]


def reach_all(spans: Sequence[Span], percents: Sequence[int]) -> dict[int, datetime | None]:
    """The first instant each of ``percents`` of the target in force is used up, in one walk.

    A larger share is never used up before a smaller one, so the percents are met in ascending
    order and each span is measured once, not once per percent.
    """
    pending = sorted(set(percents))
    out: dict[int, datetime | None] = dict.fromkeys(pending)
    used = timedelta(0)
    i = 0
    for span in spans:
        if i == len(pending):
            break
        if span.target is None:
            if span.end is None:
                break
            used += span.calendar.elapsed(span.start, span.end)
            continue
        while i < len(pending):
            goal = (span.target // _US) * pending[i] // 100 * _US
            if used >= goal:
                out[pending[i]] = span.start
            else:
                candidate = span.calendar.add(span.start, goal - used)
                if span.end is not None and candidate > span.end:
                    break
                out[pending[i]] = candidate
            i += 1
        if i < len(pending):
            if span.end is None:
                break
            used += span.calendar.elapsed(span.start, span.end)
    return out


def read(
    spans: Sequence[Span],
    *,
    running: bool,
    in_force: tuple[Calendar, timedelta],
    completed_at: datetime | None,
    now: datetime,
    warn_at: Sequence[int],
    remind: bool = False,
) -> Reading:
    """Read a clock whose spans end no later than its cut-off (``completed_at`` or ``now``).

    ``running`` says whether the clock was running at the cut-off; ``in_force`` is the calendar
    and target that applied then.
    """
    cutoff = completed_at or now
    calendar, target = in_force
    elapsed = sum(
        (s.calendar.elapsed(s.start, min(s.end or cutoff, cutoff)) for s in spans), timedelta(0)
    )
    projected = _projection(spans, running, completed_at, in_force)
    reminders = [100 * (k + 1) for k in range(1, REMINDERS + 1)] if remind else []
    reached = reach_all(projected, [*warn_at, 100, *reminders])
    breached_at = reached[100]
    marks = {p: at for p, at in reached.items() if at is not None}
    if completed_at is not None:
        marks = {p: at for p, at in marks.items() if at < completed_at}
    state = _state(breached_at, completed_at, running, now)
    due_at = breached_at if state is not State.PAUSED else None
    return Reading(
        state=state,
        target=target,
        calendar=calendar,
        elapsed=elapsed,
        due_at=due_at,
        completed_at=completed_at,
        breached_at=breached_at if state is State.BREACHED else None,
        remaining=max(target - elapsed, timedelta(0)) if state is State.PAUSED else None,
        marks=marks,
    )


def deadline(
    spans: Sequence[Span],
    *,
    running: bool,
    in_force: tuple[Calendar, timedelta],
    completed_at: datetime | None,
) -> datetime | None:
    """`read`'s breach mark (``marks[100]``) alone, for clocks that only need their deadline
    (escalations after a duration): no elapsed time, no state."""
    at = reach_all(_projection(spans, running, completed_at, in_force), [100])[100]
    return None if at is None or (completed_at is not None and at >= completed_at) else at


def _projection(
    spans: Sequence[Span],
    running: bool,
    completed_at: datetime | None,
    in_force: tuple[Calendar, timedelta],
) -> list[Span]:
    """The spans extended as if nothing more happened, to find the deadline in force.

    A clock running at its cut-off runs on; one stopped while paused is projected from the
    stop, so a met metric still reports the deadline it was met against.
    """
    projected = list(spans)
    if running:
        last = projected[-1]
        projected[-1] = Span(last.start, None, last.calendar, last.target)
    elif completed_at is not None:
        projected.append(Span(completed_at, None, *in_force))
    return projected


def _state(
    breached_at: datetime | None, completed_at: datetime | None, running: bool, now: datetime
) -> State:
    if (
        breached_at is not None
        and breached_at <= now
        and (completed_at is None or breached_at < completed_at)
    ):
        return State.BREACHED
    if completed_at is not None:
        return State.MET
    return State.RUNNING if running else State.PAUSED


# A missed update is reminded this many times, one update interval apart, then left to the
# breach and escalation routes: a bounded set, planned ahead, never a flood on a late replay.
REMINDERS = 3
