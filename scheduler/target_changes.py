"""Which target was in force over a ticket's life, and why it changed. Pure.

For the people reading a ticket (its timeline report, its read): "targets: billing-vip (tag vip
added)". The timeline already cuts a phase where the target in force changes; this names each
change and finds its cause, comparing what the targets' conditions saw just before that instant
and at it, and the priority. A group, type or channel is named as the portal sent it, a tag as
the policy writes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise

from scheduler.context import TicketContext
from scheduler.timeline import Phase, Timeline, build_timeline
from shared.events import Event
from shared.policy import Policy
from shared.target_conditions import TicketFacts

# Instants are kept to the microsecond: the context just before one is the context this early.
_JUST_BEFORE = timedelta(microseconds=1)
# (condition, context field, how a person names it)
_SAID = (
    ("groups", "group", "group"),
    ("ticket_types", "ticket_type", "ticket type"),
    ("channels", "channel", "channel"),
)


@dataclass(frozen=True)
class TargetChange:
    """The target in force from ``at`` (None: none applies); ``why`` is empty at creation."""

    at: datetime
    target: int | None
    name: str
    why: tuple[str, ...]


def shows_targets(policy: Policy) -> bool:
    """Whether people are told which target is in force: where targets have names or
    conditions. Otherwise plan and priority say it all."""
    return any(t.name is not None or t.when is not None for t in policy.targets)


def target_changes(policy: Policy, events: Sequence[Event], at: datetime) -> list[TargetChange]:
    """The target in force at creation, then at each instant it changed, up to ``at``."""
    timeline = build_timeline(policy, events, at)
    phases = timeline.phases
    out = [TargetChange(phases[0].start, phases[0].target, _name(policy, phases[0]), ())]
    for before, phase in pairwise(phases):
        if phase.target != before.target:
            why = _why(policy, timeline, events, before, phase)
            out.append(TargetChange(phase.start, phase.target, _name(policy, phase), why))
    return out


def _name(policy: Policy, phase: Phase) -> str:
    return policy.target_label(phase.target)


def _why(
    policy: Policy, timeline: Timeline, events: Sequence[Event], before: Phase, phase: Phase
) -> tuple[str, ...]:
    said = []
    if before.priority != phase.priority:
        said.append(f"priority {before.priority} → {phase.priority}")
    was_told = TicketContext.of(events, phase.start - _JUST_BEFORE)
    now_told = TicketContext.of(events, phase.start)
    was, now = _facts(policy, timeline, was_told), _facts(policy, timeline, now_told)
    for condition, field, name in _SAID:
        if was.value(condition) != now.value(condition):
            old, new = getattr(was_told, field), getattr(now_told, field)
            said.append(f"{name} {new}" if old is None else f"{name} {old} → {new}")
    return (*said, *policy.vocabulary.tag_changes(was, now))


def _facts(policy: Policy, timeline: Timeline, context: TicketContext) -> TicketFacts:
    return policy.vocabulary.facts(
        customer=timeline.customer,
        source=timeline.source,
        group=context.group,
        ticket_type=context.ticket_type,
        channel=context.channel,
        tags=context.tags or (),
    )
