"""A deterministic fixture of 1,000 tickets under the soporte-completo preset, and the figures
the report must show for it, worked out from the fixture's own parameters.

The preset's calendar is 24x7, so every duration is plain wall-clock arithmetic: the expected
outcome of each promise follows from the numbers drawn here (reply delays, pauses, update gaps,
escalation instants), never from Escalera's code. Rules used (the preset's and the report's):

- first response: met iff the reply came within the target, pause time excluded;
- an update cycle runs from a reply to the next reply or the resolution: breached iff longer
  than the update target (a reply exactly at the deadline meets it); a cycle still running is
  breached once its deadline is at or before ``AT``;
- escalation to tier N is due E_N after the first response: breached iff that instant comes
  before the ticket reached tier N or was resolved (and is at or before ``AT``); met when
  resolved or at tier 3; else open;
- the preset has no resolution target.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from shared.events import Event

ZONE = ZoneInfo("America/Mexico_City")
BASE = datetime(2026, 3, 2, 0, 0, tzinfo=ZONE)  # a Monday
AT = BASE + timedelta(days=30)
OLD, RECENT = 950, 50
CUSTOMERS = [f"cust-{n}" for n in range(1, 8)]
WEIGHTS = [30, 20, 15, 12, 10, 8, 5]
# minutes: first response, update, tier 2 and tier 3 after the first response
TERMS = {"P1": (30, 120, 240, 480), "P2": (120, 240, 480, 960), "P3": (240, 1440, 2880, 5760)}


def minutes(n: int) -> timedelta:
    return timedelta(minutes=n)


@dataclass
class Drawn:
    """One ticket's script and the outcomes it must report."""

    ticket_id: str
    priority: str
    customer: str
    created: datetime
    events: list[Event] = field(default_factory=list)
    expected: dict[str, str] = field(default_factory=dict)
    resolved: bool = False
    pending: list[tuple[datetime, str]] = field(default_factory=list)  # checkpoints after AT

    def add(self, kind: str, at: datetime, **fields: object) -> None:
        self.events.append(
            Event.model_validate(
                {
                    "event_id": f"{self.ticket_id}-{len(self.events)}",
                    "ticket_id": self.ticket_id,
                    "type": kind,
                    "occurred_at": at,
                    **fields,
                }
            )
        )


def fixture(seed: int = 20261122) -> list[Drawn]:
    rng = random.Random(seed)
    tickets = [_old(rng, i) for i in range(OLD)]
    tickets += [_recent(rng, OLD + i) for i in range(RECENT)]
    return tickets


def _start(rng: random.Random, i: int, created: datetime) -> Drawn:
    ticket = Drawn(
        f"F-{i:04d}",
        rng.choice(list(TERMS)),
        rng.choices(CUSTOMERS, WEIGHTS)[0],
        created,
    )
    ticket.add("created", created, priority=ticket.priority, customer=ticket.customer)
    return ticket


def _around(rng: random.Random, target: int, late: float = 1 / 6) -> int:
    """A duration up to twice the target: exactly the target one time in six, late ``late``."""
    draw = rng.random()
    if draw < 1 / 6:
        return target
    return rng.randint(target + 1, 2 * target) if draw < 1 / 6 + late else rng.randint(1, target)


def _old(rng: random.Random, i: int) -> Drawn:
    t = _start(rng, i, BASE + minutes(10 * i + rng.randint(0, 9)))
    fr, up, e2, e3 = TERMS[t.priority]
    c = t.created
    if rng.random() < 0.03:  # never answered, never resolved
        t.expected = {"first_response": "breached", "update": "none", "escalation": "open"}
        return t
    delay, paused = _around(rng, fr, late=0.03), 0
    if delay >= 4 and rng.random() < 0.25:
        begin = rng.randint(1, delay // 2)
        paused = rng.randint(1, delay - begin - 1)
        t.add("status_changed", c + minutes(begin), status="pending")
        t.add("status_changed", c + minutes(begin + paused), status="open")
    replies = [c + minutes(delay)]
    for _ in range(rng.randint(0, 3)):
        replies.append(replies[-1] + minutes(_around(rng, up)))
    for at in replies:
        t.add("agent_replied", at)
    first = replies[0]
    reached: dict[int, datetime] = {}
    if rng.random() < 0.3:
        reached[2] = first + minutes(_around(rng, e2))
        t.add("assigned", reached[2], tier=2)
        if rng.random() < 0.5:
            reached[3] = reached[2] + minutes(rng.randint(1, 2 * e3))
            t.add("assigned", reached[3], tier=3)
    resolved_at = None
    if rng.random() < 0.9:
        resolved_at = replies[-1] + minutes(_around(rng, up))
        t.add("resolved", resolved_at)
        t.resolved = True
    ends: list[datetime | None] = [*replies[1:], resolved_at]
    cycles_breached = any(
        (end - start > minutes(up)) if end is not None else (start + minutes(up) <= AT)
        for start, end in zip(replies, ends, strict=True)
    )
    t.expected = {
        "first_response": "met" if delay - paused <= fr else "breached",
        "update": "breached" if cycles_breached else ("met" if t.resolved else "open"),
        "escalation": _escalation(first, (e2, e3), reached, resolved_at),
    }
    return t


def _escalation(
    first: datetime,
    after: tuple[int, int],
    reached: dict[int, datetime],
    resolved_at: datetime | None,
) -> str:
    for tier, minutes_after in zip((2, 3), after, strict=True):
        due = first + minutes(minutes_after)
        stops = [at for n, at in reached.items() if n >= tier]
        stops += [resolved_at] if resolved_at is not None else []
        if due <= AT and (not stops or due < min(stops)):
            return "breached"
    return "met" if resolved_at is not None or 3 in reached else "open"


def _recent(rng: random.Random, i: int) -> Drawn:
    """Created in the last 12 hours before AT: promises still running, checkpoints ahead."""
    t = _start(rng, i, AT - minutes(rng.randint(10, 720)))
    fr, up, e2, e3 = TERMS[t.priority]
    c = t.created
    delay = rng.randint(1, 2 * fr)
    if rng.random() < 0.5 and c + minutes(delay) <= AT:
        first = c + minutes(delay)
        t.add("agent_replied", first)
        t.expected = {
            "first_response": "met" if delay <= fr else "breached",
            "update": "breached" if first + minutes(up) <= AT else "open",
            "escalation": "breached" if first + minutes(e2) <= AT else "open",
        }
        marks = [first + minutes(up) * k / 100 for k in (75, 90, 100, 200, 300, 400)]
        marks += [first + minutes(e2), first + minutes(e3)]
        t.pending = [(m, t.ticket_id) for m in marks if m > AT]
        return t
    t.expected = {
        "first_response": "breached" if c + minutes(fr) <= AT else "open",
        "update": "none",
        "escalation": "open",
    }
    t.pending = [(m, t.ticket_id) for k in (75, 90, 100) if (m := c + minutes(fr) * k / 100) > AT]
    return t
