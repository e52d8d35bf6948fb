"""Ticket lives for the chaos suite: each a few events, seconds apart, under chaos-policy.yaml.

Pure: a seed, a count and a start instant give the same events every time. Every life ends
resolved, so once its last event is in, nothing more can fall due and the set of checkpoints
that should have fired is final. Offsets are seconds after the ticket's creation.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from shared.events import Event
from shared.policy import Policy
from shared.policy_file import load_policy

POLICY_FILE = Path(__file__).with_name("chaos-policy.yaml")

# kind -> (priority, [(offset s, event type, extra fields)]). With P1 (first response and update
# 24 s, warning at 50 %, tier 2 at 36 s) and P2 (36 s, tier 2 on the first-response breach):
LIVES: dict[str, tuple[str, list[tuple[float, str, dict[str, Any]]]]] = {
    # answered at once: nothing fires
    "quick": ("P1", [(3, "agent_replied", {}), (7, "resolved", {})]),
    # first response late: its warning and breach fire
    "late_reply": ("P1", [(27, "agent_replied", {}), (30, "resolved", {})]),
    # answered, then silence: the update's warning and breach, then tier 2, fire
    "silent": ("P1", [(3, "agent_replied", {}), (40, "resolved", {})]),
    # waiting on the customer most of the time: the paused clock never reaches its warning
    "paused": (
        "P2",
        [
            (3, "status_changed", {"status": "pending"}),
            (25, "status_changed", {"status": "open"}),
            (29, "agent_replied", {}),
            (32, "resolved", {}),
        ],
    ),
    # the customer asks for escalation: tier 2 at once
    "requested": (
        "P2",
        [(4, "agent_replied", {}), (6, "escalation_requested", {}), (10, "resolved", {})],
    ),
    # P2 never answered in time: warning, breach, and the escalation on breach
    "p2_breach": ("P2", [(39, "agent_replied", {}), (42, "resolved", {})]),
    # nobody answers for a minute: the first-response breach walks the whole chain (`lead`,
    # `phone`, `phone` again) before the reply; tier 2 at 36 s
    "chain_walks": ("P1", [(60, "agent_replied", {}), (63, "resolved", {})]),
    # the same, but a person acknowledges the phone's first ring (`Acker`): it rings no more
    "chain_acked": ("P1", [(60, "agent_replied", {}), (63, "resolved", {})]),
    # resolved, reopened, and the update after the reopening comes late
    "reopened": (
        "P1",
        [
            (3, "agent_replied", {}),
            (6, "resolved", {}),
            (9, "reopened", {}),
            (25, "agent_replied", {}),
            (28, "resolved", {}),
        ],
    ),
}
LIFE_SPAN_S = max(offset for _, steps in LIVES.values() for offset, _, _ in steps)


@dataclass(frozen=True)
class Scheduled:
    """One event and the instant to send it (its ``occurred_at``)."""

    at: datetime
    event: dict[str, Any]


def chaos_policy() -> Policy:
    return load_policy(POLICY_FILE)


def generate(
    seed: int,
    tickets: int,
    start: datetime,
    window_s: float,
    *,
    prefix: str,
    kinds: tuple[str, ...] = tuple(LIVES),
) -> list[Scheduled]:
    """``tickets`` lives of random kinds, created uniformly over ``window_s`` from ``start``."""
    rng = random.Random(seed)
    out: list[Scheduled] = []
    for n in range(tickets):
        kind = rng.choice(kinds)
        priority, steps = LIVES[kind]
        ticket = f"{prefix}-{n}-{kind}"
        created = start + timedelta(seconds=rng.uniform(0, window_s))
        out.append(_scheduled(ticket, 0, created, "created", {"priority": priority}))
        for i, (offset, kind_of_event, fields) in enumerate(steps, start=1):
            at = created + timedelta(seconds=offset + rng.uniform(0, 0.5))
            out.append(_scheduled(ticket, i, at, kind_of_event, fields))
    out.sort(key=lambda s: s.at)
    return out


def _scheduled(ticket: str, n: int, at: datetime, kind: str, fields: dict[str, Any]) -> Scheduled:
    event = {
        "event_id": f"{ticket}-e{n}",
        "ticket_id": ticket,
        "type": kind,
        "occurred_at": at.isoformat(),
        **fields,
    }
    return Scheduled(at, event)


def parsed(events: list[dict[str, Any]]) -> list[Event]:
    return [Event.model_validate(e) for e in events]
