"""One SLA clock: working time accumulated over the spans in which it runs, against a target.

A clock is a list of `Span` (wall-time stretches in which it runs, each with the calendar and the
target in force then) and a cut-off: the instant it stopped (``completed``) or ``now``. From them
`read` derives the elapsed working time, the breach instant and each warning instant (a share of
the target used, or some working time left before the deadline). A target
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
    # percent -> the instant that share of the target is used up (absent: not reachable now)
    marks: dict[int, datetime]
    # working time left -> the instant only that much is left, for the warnings by time
    left_marks: dict[timedelta, datetime]


# Where a mark falls on a clock: ``percent`` of the target in force, less ``left`` of working
# time. The 75 % warning is (75, 0), the breach (100, 0), "30 minutes before" (100, 30 min).
Goal = tuple[int, timedelta]
_NOTHING_LEFT = timedelta(0)
BREACH: Goal = (100, _NOTHING_LEFT)


def reach_all(spans: Sequence[Span], goals: Sequence[Goal]) -> dict[Goal, datetime | None]:
    """The first instant each of ``goals`` is reached, in one walk of the spans.

    Each span measures the goals against its own target, so a priority change re-times them
    all; a goal already passed at the change is reached at the change. A goal of no working
    time at all (a target not longer than a warning's ``left``) is not reached in that span.
    """
    out: dict[Goal, datetime | None] = dict.fromkeys(goals)
    pending = list(out)
    used = timedelta(0)
    for span in spans:
        if span.target is not None:
            pending = _reach_in(span, span.target, pending, used, out)
        if not pending or span.end is None:
            break
        used += span.calendar.elapsed(span.start, span.end)
    return out


def _reach_in(
    span: Span,
    target: timedelta,
    pending: list[Goal],
    used: timedelta,
    out: dict[Goal, datetime | None],
) -> list[Goal]:
    """Record in ``out`` the goals reached within ``span`` (``used`` already elapsed before
    it); return those still pending. Against one target a smaller amount is reached first, so
    the first goal beyond the span's end leaves every larger one pending, unmeasured."""
    target_us = target // _US
    amounts = sorted(
        ((target_us * percent // 100 * _US - left, (percent, left)) for percent, left in pending)
    )
    still: list[Goal] = []
    for k, (amount, goal) in enumerate(amounts):
        if amount <= _NOTHING_LEFT:
            still.append(goal)
        elif used >= amount:
            out[goal] = span.start
        else:
            candidate = span.calendar.add(span.start, amount - used)
            if span.end is not None and candidate > span.end:
                still.extend(later for _, later in amounts[k:])
                break
            out[goal] = candidate
    return still


def read(
    spans: Sequence[Span],
    *,
    running: bool,
    in_force: tuple[Calendar, timedelta],
    completed_at: datetime | None,
    now: datetime,
    warn_at: Sequence[int],
    warn_before: Sequence[timedelta] = (),
    remind: bool = False,
) -> Reading:
    """Read a clock whose spans end no later than its cut-off (``completed_at`` or ``now``).

    ``running`` says whether the clock was running at the cut-off; ``in_force`` is the calendar
    and target that applied then. ``warn_before``: working time left at each warning by time.
    """
    cutoff = completed_at or now
    calendar, target = in_force
    elapsed = sum(
        (s.calendar.elapsed(s.start, min(s.end or cutoff, cutoff)) for s in spans), timedelta(0)
    )
    projected = _projection(spans, running, completed_at, in_force)
    reminders = [100 * (k + 1) for k in range(1, REMINDERS + 1)] if remind else []
    percents = [(p, _NOTHING_LEFT) for p in (*warn_at, 100, *reminders)]
    reached = reach_all(projected, [*percents, *((100, left) for left in warn_before)])
    breached_at = reached[BREACH]
    if completed_at is not None:  # what falls at or after the completion never comes
        reached = {g: at for g, at in reached.items() if at is not None and at < completed_at}
    marks = {p: at for (p, left), at in reached.items() if not left and at is not None}
    left_marks = {left: at for (_, left), at in reached.items() if left and at is not None}
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
        left_marks=_one_per_instant(left_marks, marks),
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
    at = reach_all(_projection(spans, running, completed_at, in_force), [BREACH])[BREACH]
    return None if at is None or (completed_at is not None and at >= completed_at) else at


def _one_per_instant(
    left_marks: dict[timedelta, datetime], marks: dict[int, datetime]
) -> dict[timedelta, datetime]:
    """The warnings by time that tell something no other checkpoint of the clock tells then.

    Where a percentage warning or the breach falls at the same instant, that one is sent and the
    warning by time is not (one page, not two). Warnings by time passed together at a priority
    change fall at the same instant: only the one with the least time left is kept.
    """
    taken = set(marks.values())
    kept: dict[timedelta, datetime] = {}
    for left, at in sorted(left_marks.items()):
        if at not in taken:
            kept[left] = at
            taken.add(at)
    return kept


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
