"""Which routes (and so which channels) a fired checkpoint goes to.

A route's channels are fixed, or come from the ticket (``to: [assignee, group]``) through the
policy's directory over the operator's (`shared.directory`): `channels_of` says which, and
which recipients fell back to the route's ``channels`` (`log_missing` logs each: not pure).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog

from shared.directory import Directories, Directory, Missing, Resolved, resolve
from shared.policy import Policy
from shared.policy_routes import RouteSpec

log = structlog.get_logger("escalera.notify")


@dataclass(frozen=True)
class Fired:
    """What routing needs to know about a checkpoint and its ticket."""

    kind: str
    metric: str
    tier: int | None
    priority: str
    plan: str


def routes_for(policy: Policy, fired: Fired) -> list[RouteSpec]:
    """Every route whose criteria all match, in the policy's order."""
    return [route for route in policy.routes if _matches(policy, route, fired)]


def _matches(policy: Policy, route: RouteSpec, fired: Fired) -> bool:
    when = route.when
    priorities = {policy.priority_named(p) for p in when.priorities} if when.priorities else None
    return (
        (when.kinds is None or fired.kind in when.kinds)
        and (when.metrics is None or fired.metric in when.metrics)
        and (when.tiers is None or fired.tier in when.tiers)
        and (priorities is None or fired.priority in priorities)
        and (when.plans is None or fired.plan in when.plans)
    )


def channels_of(
    policy: Policy,
    route: RouteSpec,
    repeat: int,
    *,
    group: str | None,
    assignee: str | None,
    directory: Directory,
    channel: str | None = None,
) -> Resolved:
    """The channels message number ``repeat`` of ``route`` tells for a ticket of ``group`` and
    ``assignee`` (``directory``: the operator's file; the policy's own entries win), and who
    of its ``to`` fell back to its channels. ``channel``: where the page went before (a plain
    route's repeat goes there again)."""
    fixed = route.channels_at(repeat, channel=channel)
    to = route.recipients_at(repeat)
    if not to:
        return Resolved(fixed, [])
    return resolve(
        to,
        fixed,
        group=group,
        assignee=assignee,
        directory=Directories(policy.directory, directory),
        declared=policy.channels,
    )


def log_missing(
    row: Any, route: str, repeat: int, missing: Missing, *, checkpoint_id: int | None = None
) -> None:
    """One structured line per recipient of a route's ``to`` the directory gave no channel:
    ``row`` has the checkpoint's ``source``, ``ticket_id`` and ``key`` (and ``id``, unless
    ``checkpoint_id`` is given)."""
    log.info(
        "recipient_not_in_directory",
        source=row.source,
        ticket_id=row.ticket_id,
        checkpoint=row.key,
        checkpoint_id=int(row.id if checkpoint_id is None else checkpoint_id),
        route=route,
        repeat=repeat,
        recipient=missing.who,
        name=missing.name,
        sent_to=list(missing.sent_to),
        why=missing.say(),
    )
