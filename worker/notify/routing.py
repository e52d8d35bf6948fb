"""Which routes (and so which channels) a fired checkpoint goes to. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from shared.policy import Policy
from shared.policy_routes import RouteSpec


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
