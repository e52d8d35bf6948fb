"""A ticket's timeline: every event, pause, checkpoint and notification, in order. Pure.

The inputs are plain records (queries.py reads them from the database): the stored events, the
ticket's checkpoint rows and their notifications with each delivery's result and, for a page a
person acknowledged, who and when (one entry per acknowledged route, at its instant).

A message of a route that tells the ticket's assignee or group (``to``) and went to the route's
own channels instead says why ("assignee ana@acme.example not in the directory: sent to desk"),
from the ticket's group and assignee when it was written and the policy's directory (over the
operator's, ``directory``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from scheduler.target_changes import shows_targets, target_changes
from scheduler.timeline import Phase, build_timeline
from shared.db.models import NotificationState, NotPaged
from shared.directory import EMPTY, Directories, Directory, resolve
from shared.events import Event, EventType
from shared.policy import Metric, Policy
from shared.policy_routes import RouteSpec
from worker.notify.outbox import ACK_NOTICE, ACKNOWLEDGED
from worker.report.allowances import authorized

# Within one instant: what happened, then what it paused, then what Escalera did about it.
_ORDER = {
    "event": 0,
    "pause": 1,
    "resume": 1,
    "targets": 1,
    "checkpoint": 2,
    "notification": 3,
    "acknowledgement": 4,
}


@dataclass(frozen=True)
class StoredCheckpoint:
    id: int
    key: str
    kind: str
    due_at: datetime
    state: str  # armed or fired
    fired_at: datetime | None
    not_paged: str | None = None  # a `NotPaged`: fired, and why it paged nobody
    caught_up_by: str | None = None  # caught up: the key of its clock's checkpoint that paged


@dataclass(frozen=True)
class StoredNotification:
    checkpoint_id: int
    route: str
    channel: str
    repeat: int
    status: str  # a NotificationState: pending, retrying, sent, dead
    attempts: int
    created_at: datetime
    delivered_at: datetime | None
    acknowledged_at: datetime | None
    last_error: str | None
    acknowledged_by: str | None = None  # a name typed in the link's form, or an API key's name
    acknowledged_via: str | None = None  # link or api


@dataclass(frozen=True)
class Entry:
    at: datetime
    kind: str  # event, pause, resume, targets, checkpoint, notification, acknowledgement
    what: str
    detail: dict[str, Any]  # plain values and datetimes (shown in the ticket's zone)


def ticket_timeline(
    policy: Policy,
    events: Sequence[Event],
    checkpoints: Sequence[StoredCheckpoint],
    notifications: Sequence[StoredNotification],
    at: datetime,
    *,
    directory: Directory = EMPTY,
) -> list[Entry]:
    entries = [*_events(policy, events, at), *_pauses(policy, events, at)]
    entries += _targets(policy, events, at)
    entries += [_checkpoint(c) for c in checkpoints]
    keys = {c.id: c.key for c in checkpoints}
    chains = {route.name: route for route in policy.routes if route.chain}
    entries += [
        _notification(n, keys.get(n.checkpoint_id, "?"), chains.get(n.route)) for n in notifications
    ]
    entries += _acknowledgements(notifications, keys, at, chains)
    _say_fallbacks(policy, events, notifications, entries, Directories(policy.directory, directory))
    return sorted(entries, key=lambda e: (e.at, _ORDER[e.kind]))


def _events(policy: Policy, events: Sequence[Event], at: datetime) -> Iterator[Entry]:
    customer = next((e.customer for e in events if e.type is EventType.CREATED), None)
    for event in events:
        if event.occurred_at > at:
            continue
        detail = event.model_dump(
            mode="json",
            exclude={"event_id", "source", "ticket_id", "type", "occurred_at"},
            exclude_defaults=True,
        )
        if authorized(policy, event.customer or customer, event.requester) is False:
            detail["unauthorized_contact"] = True
        yield Entry(
            event.occurred_at, "event", event.type.value, {"event_id": event.event_id, **detail}
        )


def _pauses(policy: Policy, events: Sequence[Event], at: datetime) -> Iterator[Entry]:
    """Where the clocks stopped for a pausing status, and where they ran again. A pause of only
    some clocks (``pause_when`` per metric) names them."""
    timeline = build_timeline(policy, events, at)
    paused: list[str] = []
    for phase in timeline.phases:
        now_paused = [] if phase.resolved else _paused_metrics(policy, timeline.plan, phase)
        if now_paused != paused:
            kind = "pause" if now_paused else "resume"
            detail: dict[str, Any] = {"status": phase.status.value}
            if now_paused and len(now_paused) < len(Metric):
                detail["metrics"] = now_paused
            yield Entry(phase.start, kind, phase.status.value, detail)
        paused = now_paused


def _paused_metrics(policy: Policy, plan: str, phase: Phase) -> list[str]:
    target = None if phase.target is None else policy.targets[phase.target]
    return [m.value for m in Metric if phase.status in policy.pausing(target, m)]


def _targets(policy: Policy, events: Sequence[Event], at: datetime) -> list[Entry]:
    """Which target is in force from creation, and each change with its cause, where the
    policy's targets have names or conditions."""
    if not shows_targets(policy):
        return []
    return [
        Entry(c.at, "targets", c.name, {"why": ", ".join(c.why) or None})
        for c in target_changes(policy, events, at)
    ]


def _checkpoint(c: StoredCheckpoint) -> Entry:
    detail = {"checkpoint_kind": c.kind, "state": c.state, "fired_at": c.fired_at}
    if c.not_paged is not None:
        detail["not_paged"] = _why_not_paged(c)
    return Entry(c.due_at, "checkpoint", c.key, detail)


def _why_not_paged(c: StoredCheckpoint) -> str:
    """Why a fired checkpoint paged nobody (policy ``catch_up``, ``max_catch_up``)."""
    if c.not_paged == NotPaged.CAUGHT_UP.value:
        return f"caught up by {c.caught_up_by}"
    return "older than max_catch_up"


def _notification(n: StoredNotification, checkpoint: str, chain: RouteSpec | None) -> Entry:
    detail = {
        "checkpoint": checkpoint,
        "route": n.route,
        "channel": n.channel,
        "repeat": n.repeat,
        "status": n.status,
        "attempts": n.attempts,
        "delivered_at": n.delivered_at,
        "acknowledged_at": n.acknowledged_at,
        "acknowledged_by": n.acknowledged_by,
        "error": n.last_error,
    }
    if n.repeat == ACK_NOTICE:  # told the chain's channels who acknowledged it
        detail["notice"] = ACKNOWLEDGED
    elif chain is not None:  # a message of an escalation chain names its step, from 1
        detail["step"] = chain.step_of(n.repeat) + 1
    return Entry(n.created_at, "notification", f"{n.route} → {n.channel}", detail)


def _say_fallbacks(
    policy: Policy,
    events: Sequence[Event],
    notifications: Sequence[StoredNotification],
    entries: list[Entry],
    directory: Directories,
) -> None:
    """Add ``recipients`` to the entry of each message of a ``to`` route that went to the
    route's channels because the directory did not know the ticket's assignee or group."""
    routes = {route.name: route for route in policy.routes if route.to or route.chain}
    told = iter(e for e in entries if e.kind == "notification")
    for n, entry in zip(notifications, told, strict=False):
        route = routes.get(n.route)
        if route is None or n.repeat == ACK_NOTICE or not route.recipients_at(n.repeat):
            continue
        group, assignee = _ticket_as_of(events, n.created_at)
        resolved = resolve(
            route.recipients_at(n.repeat),
            route.channels_at(n.repeat),
            group=group,
            assignee=assignee,
            directory=directory,
            declared=policy.channels,
        )
        fell_back = [m.say() for m in resolved.missing if n.channel in m.sent_to]
        if fell_back:
            entry.detail["recipients"] = "; ".join(fell_back)


def _ticket_as_of(events: Sequence[Event], at: datetime) -> tuple[str | None, str | None]:
    """The ticket's group and assignee as its events had set them by ``at``."""
    group = assignee = None
    for event in events:
        if event.occurred_at > at:
            break
        group = event.group or group
        assignee = event.assignee or assignee
    return group, assignee


def _acknowledgements(
    notifications: Sequence[StoredNotification],
    keys: dict[int, str],
    at: datetime,
    chains: dict[str, RouteSpec],
) -> list[Entry]:
    """One entry per acknowledged page (checkpoint and route), at its instant, saying who; on
    an escalation chain, also the step it kept from being told."""
    seen: dict[tuple[int, str], Entry] = {}
    for n in notifications:
        where = (n.checkpoint_id, n.route)
        if n.acknowledged_at is None or n.acknowledged_at > at or where in seen:
            continue
        detail: dict[str, Any] = {
            "checkpoint": keys.get(n.checkpoint_id, "?"),
            "by": n.acknowledged_by,
            "via": n.acknowledged_via,
        }
        chain = chains.get(n.route)
        if chain is not None and (step := _stopped(chain, notifications, where)) is not None:
            detail["stopped_before_step"] = step
        seen[where] = Entry(n.acknowledged_at, "acknowledgement", n.route, detail)
    return list(seen.values())


def _stopped(
    chain: RouteSpec, notifications: Sequence[StoredNotification], page: tuple[int, str]
) -> int | None:
    """The step (from 1) whose message was to follow the last one told on ``page``; None
    once the chain was told to the end."""
    told = [
        n.repeat
        for n in notifications
        if (n.checkpoint_id, n.route) == page
        and n.status != NotificationState.SKIPPED
        and n.repeat != ACK_NOTICE
    ]
    last = max(told, default=0)
    return None if chain.wait_after(last) is None else chain.step_of(last + 1) + 1
