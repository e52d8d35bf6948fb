"""What should have happened, computed from the events with the pure core, never read back.

`must_fire` evaluates each ticket's events with `scheduler.evaluate.evaluate` after its life is
over: every checkpoint the core says is due then had to fire, once. A checkpoint the system
fired that the whole history says was met is allowed only if it was due given the events the
system had stored when it fired (an event that arrives late cannot un-send a page): `justified`
re-evaluates that knowledge with the same core.

A fired checkpoint pages nobody when the policy's ``catch_up`` says a later checkpoint of its
clock, due when it fired, took its place (a warning fired late, with the breach): `caught_up`
asks the same rule (`worker.notify.catch_up`) of what the core says was due then.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from scheduler.evaluate import evaluate
from shared.events import Event
from shared.policy import Policy
from worker.notify.catch_up import CatchUpRule, Due, silence

TicketKey = tuple[str, str]  # (ticket id, checkpoint key)


def by_ticket(events: Iterable[dict[str, Any]]) -> dict[str, list[Event]]:
    tickets: dict[str, list[Event]] = defaultdict(list)
    for raw in events:
        event = Event.model_validate(raw)
        tickets[event.ticket_id].append(event)
    return tickets


def must_fire(
    policy: Policy, events: Iterable[dict[str, Any]], after: datetime
) -> dict[TicketKey, tuple[str, datetime]]:
    """Every (ticket, checkpoint key) due by ``after`` given all the events, with its kind and
    due instant (the lives are over by then, so the set is final)."""
    out: dict[TicketKey, tuple[str, datetime]] = {}
    for ticket, ticket_events in by_ticket(events).items():
        sla = evaluate(policy, ticket_events, after)
        out |= {(ticket, c.key): (c.kind.value, c.due_at) for c in sla.checkpoints if c.fired}
    return out


def justified(policy: Policy, known: list[Event], key: str, fired_at: datetime) -> bool:
    """Was ``key`` due at ``fired_at`` given only the events stored by then?"""
    if not any(e.type.value == "created" for e in known):
        return False
    sla = evaluate(policy, known, fired_at)
    return any(c.key == key and c.fired for c in sla.checkpoints)


def caught_up(policy: Policy, known: list[Event], key: str, kind: str, fired_at: datetime) -> bool:
    """Given only the events stored by ``fired_at``, did the policy's catch-up rule silence
    ``key`` fired then (a later checkpoint of its clock due too)?"""
    rule = CatchUpRule.of(policy)
    if not rule.may_catch_up(Due(0, key, kind, fired_at)):
        return False
    if not any(e.type.value == "created" for e in known):
        return False
    due = [
        Due(0, c.key, c.kind.value, c.due_at)
        for c in evaluate(policy, known, fired_at).checkpoints
        if c.fired
    ]
    mine = next((c for c in due if c.key == key), None)
    return mine is not None and silence(mine, rule, due, fired_at) is not None


# chaos-policy.yaml's route `chain`, walked by a P1's first-response breach: each message's
# channel, and how long after it was sent the next one is due (None: the last), unless
# someone acknowledged the page or it no longer stands (the reply, the resolution).
CHAIN_ROUTE = "chain"
CHAIN_KEY = "first_response:breach"
CHAIN: tuple[tuple[str, timedelta | None], ...] = (
    ("lead", timedelta(seconds=6)),
    ("phone", timedelta(seconds=6)),
    ("phone", None),
)


def chain_pages(policy: Policy, events: Iterable[dict[str, Any]]) -> dict[str, datetime]:
    """The tickets whose first-response breach walks the chain (P1 ones), each with the instant
    its page stops standing: its first reply or resolution (the end of its life otherwise)."""
    pages = {}
    for ticket, ticket_events in by_ticket(events).items():
        created = next((e for e in ticket_events if e.type.value == "created"), None)
        if created is None or policy.priority_named(created.priority or "") != "P1":
            continue
        ends = [
            e.occurred_at
            for e in ticket_events
            if e.type.value in {"agent_replied", "resolved", "closed"}
        ]
        pages[ticket] = min(ends, default=datetime.max.replace(tzinfo=UTC))
    return pages


def channels_for(kind: str) -> list[tuple[str, str]]:
    """(route, channel) pairs chaos-policy.yaml sends a checkpoint of this kind to."""
    pairs = [("desk", "oncall")]
    if kind == "escalation":
        pairs.append(("escalate", "tier2"))
    return pairs
