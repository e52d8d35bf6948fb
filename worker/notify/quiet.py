"""Quiet hours in the outbox: which of what a quiet route would send now it holds, and until when.

A route with ``quiet_outside`` (`scheduler.quiet_hours`) writes what it would send outside its
calendar's open hours as ``held`` notifications, each with its ``release_at`` (the next
opening): first messages, and a page's repeats and chain steps alike. The database holds them,
so neither a Redis flush nor a restart loses one; `worker.notify.release` sends them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from scheduler.quiet_hours import held_until
from worker.notify.outbox import Outgoing
from worker.policies.book import PolicyBook


def hold_quiet(
    policies: PolicyBook,
    outgoing: Sequence[Outgoing],
    policy_of: Mapping[int, str],
    now: datetime,
) -> tuple[list[Outgoing], list[Outgoing]]:
    """``outgoing`` split into what goes out now and what its quiet route holds (each with its
    ``release_at``); ``policy_of``: each checkpoint's policy. Each route is looked at once."""
    until: dict[tuple[str, str], datetime | None] = {}
    now_out, held = [], []
    for item in outgoing:
        key = (policy_of[item.checkpoint_id], item.route)
        if key not in until:
            until[key] = _route_held_until(policies, *key, now)
        release_at = until[key]
        if release_at is None:
            now_out.append(item)
        else:
            held.append(item._replace(release_at=release_at))
    return now_out, held


def _route_held_until(
    policies: PolicyBook, policy_name: str, route_name: str, now: datetime
) -> datetime | None:
    loaded = policies.named(policy_name)
    policy = loaded.policy
    route = next((r for r in policy.routes if r.name == route_name), None)
    if route is None:
        return None
    return held_until(route, loaded.calendars, policy.default_timezone, now)
