"""The pure core: ``evaluate(policy, events, now) -> TicketSla``.

No I/O and no clock reads: ``now`` is an argument, so production, ``escalera simulate`` and the
tests run the same code and get the same answer for the same history.

Metrics (each measured in working time on its target's calendar, paused while the status is one
of ``pause_when`` for that metric, stopped while the ticket is resolved):

- ``first_response``: from creation to the first public, non-automatic agent reply.
- ``update``: from each such reply (or a reopening) to the next one; a resolution ends the cycle.
- ``next_reply``: from each customer message nobody answered yet (and from creation) to the
  next such reply; a resolution ends the cycle (`scheduler.waiting`).
- ``resolution``: from creation to resolution; a reopening resumes it.
- escalations: tier N ``after`` a duration from creation or first response, unless resolved or
  already escalated that far; ``on_breach`` of a metric; at once on ``escalation_requested``.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from scheduler.calendar import Calendar
from scheduler.calendars import CalendarBook
from scheduler.clock import Reading, Span, State, deadline, read
from scheduler.sla import Checkpoint, Kind, MetricSla, TicketSla
from scheduler.time_left import warning_key
from scheduler.timeline import Phase, Timeline, build_timeline
from shared.durations import Duration
from shared.events import Event
from shared.policy import EscalationSpec, Metric, Policy, TargetSpec

Terms = tuple[Calendar, timedelta]


@dataclass(frozen=True)
class _Rule:
    """Which metric a clock measures and where its target's duration comes from."""

    metric: Metric
    duration_of: Callable[[TargetSpec], Duration | None]
    tier: int | None = None  # escalation rules differ by tier only


_FIRST_RESPONSE = _Rule(Metric.FIRST_RESPONSE, lambda target: target.first_response)
_UPDATE = _Rule(Metric.UPDATE, lambda target: target.update_every)
_NEXT_REPLY = _Rule(Metric.NEXT_REPLY, lambda target: target.next_reply)
_RESOLUTION = _Rule(Metric.RESOLUTION, lambda target: target.resolution)


def evaluate(
    policy: Policy, events: Iterable[Event], now: datetime, *, calendars: CalendarBook | None = None
) -> TicketSla:
    """The SLA state of one ticket as of ``now``. Pass a shared `CalendarBook` when evaluating
    many tickets: its calendars cache working intervals."""
    timeline = build_timeline(policy, events, now)
    return _Evaluation(policy, calendars or CalendarBook(policy), timeline, now).run()


@dataclass(frozen=True)
class _Window:
    """The stretch of the ticket's life a clock may run in, and what stopped it."""

    start: datetime
    end: datetime | None


@dataclass(frozen=True)
class _Clock:
    """A clock's spans and what is in force at its cut-off."""

    spans: list[Span]
    target: TargetSpec
    in_force: Terms
    running: bool


class _Evaluation:
    def __init__(
        self, policy: Policy, book: CalendarBook, timeline: Timeline, now: datetime
    ) -> None:
        self.policy, self.book, self.t, self.now = policy, book, timeline, now
        self.checkpoints: list[Checkpoint] = []
        # Phases follow each other (one's end is the next one's start): a window finds its first
        # phase by bisection, so a ticket of N replies costs N windows of a few phases each,
        # not N walks of every phase.
        self._starts = [p.start for p in timeline.phases]
        self._resolved_starts = [p.start for p in timeline.phases if p.resolved]

    def run(self) -> TicketSla:
        metrics = {
            Metric.FIRST_RESPONSE.value: self._first_response(),
            Metric.UPDATE.value: self._update(),
            Metric.NEXT_REPLY.value: self._next_reply(),
            Metric.RESOLUTION.value: self._resolution(),
        }
        self._escalations(metrics)
        current = self.t.current
        self.checkpoints.sort(key=lambda c: (c.due_at, c.key))
        return TicketSla(
            ticket_id=self.t.ticket_id,
            source=self.t.source,
            plan=self.t.plan,
            priority=current.priority,
            status=current.status.value,
            tier=current.tier,
            created_at=self.t.created_at,
            metrics=metrics,
            checkpoints=tuple(self.checkpoints),
            tz=self._plan_calendar().tz,
            target=current.target,
        )

    # -- metrics ---------------------------------------------------------------------------
    def _first_response(self) -> MetricSla:
        window = _Window(self.t.created_at, self.t.first_response_at)
        return self._metric("first_response", window, _FIRST_RESPONSE)

    def _resolution(self) -> MetricSla:
        current = self.t.current
        window = _Window(self.t.created_at, current.start if current.resolved else None)
        return self._metric("resolution", window, _RESOLUTION)

    def _update(self) -> MetricSla:
        result = self._not_applicable()
        for n, window in enumerate(self._update_cycles(), start=1):
            result = self._metric(f"update#{n}", window, _UPDATE)
        return result

    def _update_cycles(self) -> Iterator[_Window]:
        """One cycle per reply (or reopening after a reply), ended by the next or by resolution."""
        first = self.t.first_response_at
        starts = sorted(
            {
                at
                for at in (*self.t.responses, *self.t.reopenings)
                if first is not None and at >= first and not self._phase_at(at).resolved
            }
        )
        resolved = self._resolved_starts
        for i, start in enumerate(starts):
            ends = [starts[i + 1]] if i + 1 < len(starts) else []
            ends += resolved[bisect_right(resolved, start) :][:1]  # the next resolution
            yield _Window(start, min(ends) if ends else None)

    def _next_reply(self) -> MetricSla:
        """One cycle per wait for a reply (``next_reply#1`` from creation), like update's; the
        metric is the last cycle's. A policy without the target skips the walk."""
        result = self._not_applicable()
        if all(target.next_reply is None for target in self.policy.targets):
            return result
        for n, wait in enumerate(self.t.waits, start=1):
            result = self._metric(f"next_reply#{n}", _Window(wait.start, wait.end), _NEXT_REPLY)
        return result

    def _metric(self, key: str, window: _Window, rule: _Rule) -> MetricSla:
        reading = self._read(window, rule)
        if reading is None:
            return self._not_applicable()
        self._mark(reading, key, rule.metric.value)
        return MetricSla(
            state=reading.state,
            target=reading.target,
            elapsed=reading.elapsed,
            due_at=reading.due_at,
            completed_at=reading.completed_at,
            breached_at=reading.breached_at,
            remaining=reading.remaining,
            tz=reading.calendar.tz,
        )

    def _not_applicable(self) -> MetricSla:
        return MetricSla(
            State.NOT_APPLICABLE,
            None,
            timedelta(0),
            None,
            None,
            None,
            None,
            self._plan_calendar().tz,
        )

    # -- escalations -----------------------------------------------------------------------
    def _escalations(self, metrics: dict[str, MetricSla]) -> None:
        for tier in sorted({e.tier for t in self.policy.targets for e in t.escalations}):
            self._escalation_after(tier)
            self._escalation_on_breach(tier, metrics)
        for request in self.t.escalation_requests:
            self._add(
                f"escalation:requested:{request.event_id}",
                "escalation",
                Kind.ESCALATION,
                tier=request.tier,
                due_at=request.at,
                calendar=self._plan_calendar(),
            )

    def _escalation_after(self, tier: int) -> None:
        def after(target: TargetSpec) -> Duration | None:
            spec = _escalation(target, tier)
            return spec.after if spec is not None else None

        rule = _Rule(Metric.ESCALATION, after, tier)

        spec = self._escalation_in_force(tier)
        if spec is None or spec.after is None:
            return
        anchor = self.t.created_at if spec.from_.value == "created" else self.t.first_response_at
        if anchor is None:
            return
        stops = [
            p.start for p in self.t.phases if p.start >= anchor and (p.tier >= tier or p.resolved)
        ]
        already = self._phase_at(anchor).tier >= tier
        window = _Window(anchor, anchor if already else min(stops, default=None))
        clock = self._clock(window, rule)
        if clock is None:
            return
        due_at = deadline(
            clock.spans, running=clock.running, in_force=clock.in_force, completed_at=window.end
        )
        if due_at is not None:
            self._add(
                f"escalation:tier{tier}",
                "escalation",
                Kind.ESCALATION,
                tier=tier,
                due_at=due_at,
                calendar=clock.in_force[0],
            )

    def _escalation_on_breach(self, tier: int, metrics: dict[str, MetricSla]) -> None:
        spec = self._escalation_in_force(tier)
        if spec is None or spec.on_breach is None:
            return
        metric = metrics[spec.on_breach.value]
        if metric.state in (State.RUNNING, State.BREACHED) and metric.due_at is not None:
            self._add(
                f"escalation:tier{tier}:{spec.on_breach.value}",
                spec.on_breach.value,
                Kind.ESCALATION,
                tier=tier,
                due_at=metric.due_at,
                calendar=self._plan_calendar(),
            )

    def _escalation_in_force(self, tier: int) -> EscalationSpec | None:
        target = self._target(self.t.current)
        return _escalation(target, tier) if target is not None else None

    # -- clocks ----------------------------------------------------------------------------
    def _clock(self, window: _Window, rule: _Rule) -> _Clock | None:
        """The clock of ``rule`` over ``window``; None if no target applies at its cut-off."""
        spans = list(self._spans(window, rule))
        last = self._last_phase(window)
        target = self._target(last)
        in_force = self._terms(target, rule) if target is not None else None
        if target is None or in_force is None:
            return None
        return _Clock(spans, target, in_force, bool(spans) and self._active(last, rule))

    def _read(self, window: _Window, rule: _Rule) -> Reading | None:
        clock = self._clock(window, rule)
        if clock is None:
            return None
        return read(
            clock.spans,
            running=clock.running,
            in_force=clock.in_force,
            completed_at=window.end,
            now=self.now,
            warn_at=clock.target.warn_at or self.policy.warn_at,
            warn_before=self._warn_before(clock.target, rule),
            remind=rule.metric is Metric.UPDATE,  # the customer still waits: say so again
        )

    def _warn_before(self, target: TargetSpec, rule: _Rule) -> list[timedelta]:
        """The working time left at each warning by time, a ``bd`` as long as the business day
        of the metric's calendar (the one its own ``bd`` target would be measured on)."""
        chosen = target.warnings_before(self.policy.warn_before)
        if not chosen:
            return []
        business_day = int(self._calendar(target, rule.metric).business_day.total_seconds())
        return sorted({timedelta(seconds=d.seconds_on(business_day)) for d in chosen})

    def _spans(self, window: _Window, rule: _Rule) -> Iterator[Span]:
        first = max(0, bisect_right(self._starts, window.start) - 1)  # the phase it starts in
        for phase in self.t.phases[first:]:
            if window.end is not None and phase.start >= window.end:
                break
            start = max(phase.start, window.start)
            end = _earliest(phase.end, window.end)
            if (end is not None and end <= start) or not self._active(phase, rule):
                continue
            target = self._target(phase)
            terms = self._terms(target, rule) if target is not None else None
            if terms is None:  # no target now: the time counts on the plan's calendar
                yield Span(start, end, self._plan_calendar(), None)
            else:
                yield Span(start, end, *terms)

    def _active(self, phase: Phase, rule: _Rule) -> bool:
        """Whether the clock runs in this phase: not resolved, and not in a status that pauses
        this metric (``pause_when`` may name the clocks it stops)."""
        if phase.resolved:
            return False
        return phase.status not in self.policy.pausing(self._target(phase), rule.metric)

    def _last_phase(self, window: _Window) -> Phase:
        """The phase in force at the clock's cut-off.

        At a completion, the phase just before it (the state the metric was met in); at ``now``,
        a phase starting at that very instant already counts, as its event has happened.
        """
        if window.end is not None:
            before = bisect_left(self._starts, window.end)
        else:
            before = bisect_right(self._starts, self.now)
        return self.t.phases[max(0, before - 1)]

    def _phase_at(self, at: datetime) -> Phase:
        return self.t.phases[max(0, bisect_right(self._starts, at) - 1)]

    def _target(self, phase: Phase) -> TargetSpec | None:
        """The phase's target: the timeline chose it once per priority and facts it met."""
        return None if phase.target is None else self.policy.targets[phase.target]

    def _terms(self, target: TargetSpec, rule: _Rule) -> Terms | None:
        # Kept in the calendar book, shared by every ticket of the policy. Keyed by the target's
        # id, and the entry keeps the target itself: an id is only ever reused once its object
        # is gone, so ``is`` tells a stale entry from a live one.
        key = (id(target), rule.metric, rule.tier, self.t.plan, self.t.zone_name)
        entry = self.book.memo.get(key)
        if entry is None or entry[0] is not target:
            entry = self.book.memo[key] = (target, self._resolve_terms(target, rule))
        return cast(Terms | None, entry[1])

    def _resolve_terms(self, target: TargetSpec, rule: _Rule) -> Terms | None:
        duration = rule.duration_of(target)
        if duration is None:
            return None
        calendar = self._calendar(target, rule.metric)
        if duration.is_wall_clock:
            return self.book.wall_clock(calendar.tz.key), timedelta(seconds=duration.seconds_on(0))
        business_day = int(calendar.business_day.total_seconds())
        return calendar, timedelta(seconds=duration.seconds_on(business_day))

    def _calendar(self, target: TargetSpec, metric: Metric) -> Calendar:
        name = target.calendar_name(metric) or self.policy.plans[self.t.plan].calendar
        return self.book.get(name, self.t.zone_name)

    def _plan_calendar(self) -> Calendar:
        return self.book.get(self.policy.plans[self.t.plan].calendar, self.t.zone_name)

    # -- checkpoints -----------------------------------------------------------------------
    def _mark(self, reading: Reading, key: str, metric: str) -> None:
        for percent, at in reading.marks.items():
            kind, suffix, level = _mark_kind(percent)
            self._add(
                f"{key}:{suffix}", metric, kind, percent=level, due_at=at, calendar=reading.calendar
            )
        for left, at in reading.left_marks.items():
            self._add(
                warning_key(key, left),
                metric,
                Kind.WARNING,
                left=left,
                due_at=at,
                calendar=reading.calendar,
            )

    def _add(
        self,
        key: str,
        metric: str,
        kind: Kind,
        *,
        percent: int | None = None,
        tier: int | None = None,
        left: timedelta | None = None,
        due_at: datetime,
        calendar: Calendar,
    ) -> None:
        fired = due_at <= self.now
        self.checkpoints.append(
            Checkpoint(key, metric, kind, percent, tier, due_at, fired, calendar.tz, left=left)
        )


def _escalation(target: TargetSpec, tier: int) -> EscalationSpec | None:
    return next((e for e in target.escalations if e.tier == tier), None)


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


def _mark_kind(percent: int) -> tuple[Kind, str, int | None]:
    """(kind, key suffix, percent shown) of a mark: warning under 100, breach at, reminders past."""
    if percent < 100:
        return Kind.WARNING, f"warning:{percent}", percent
    if percent == 100:
        return Kind.BREACH, "breach", None
    return Kind.REMINDER, f"reminder:{percent // 100 - 1}", None
