"""Building tickets for tests: policies by preset name, events with ids made up in order."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from scheduler.evaluate import evaluate
from scheduler.sla import TicketSla
from shared.events import Event
from shared.policy import Policy
from shared.policy_file import load_policy
from worker.notify.messages import MessageFacts

ROOT = Path(__file__).resolve().parent.parent
PRESETS = ROOT / "deploy" / "policies"
_ids = itertools.count(1)


@cache
def preset(name: str) -> Policy:
    """A policy from deploy/policies/ by file stem, e.g. ``preset("athento")``."""
    return load_policy(PRESETS / f"{name}.yaml")


def preset_text_without_notifications(name: str) -> str:
    """A preset's YAML up to its notification section, for tests that bring their own routes."""
    return (PRESETS / f"{name}.yaml").read_text().split("\n# Notifications.")[0] + "\n"


def event(kind: str, at: datetime, ticket: str = "T-1", **fields: Any) -> Event:
    """A canonical event with a fresh id."""
    return Event.model_validate(
        {
            "event_id": f"e{next(_ids)}",
            "ticket_id": ticket,
            "type": kind,
            "occurred_at": at,
            **fields,
        }
    )


class Ticket:
    """A ticket's history written step by step: ``Ticket(at, priority="P1").reply(at + 1h)``."""

    def __init__(self, created_at: datetime, ticket: str = "T-1", **created: Any) -> None:
        self.ticket = ticket
        self.events = [event("created", created_at, ticket, **created)]

    def add(self, kind: str, at: datetime, **fields: Any) -> Ticket:
        self.events.append(event(kind, at, self.ticket, **fields))
        return self

    def reply(self, at: datetime, **fields: Any) -> Ticket:
        return self.add("agent_replied", at, **fields)

    def status(self, at: datetime, status: str) -> Ticket:
        return self.add("status_changed", at, status=status)

    def sla(self, policy: Policy, now: datetime) -> TicketSla:
        return evaluate(policy, self.events, now)


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


def message_facts(**fields: Any) -> MessageFacts:
    """What a message says about a P1 first-response breach of Zendesk ticket 4021 (acme,
    premium), due at 17:00 in Madrid on Monday 2 March 2026; ``fields`` change any of it."""
    values: dict[str, Any] = {
        "ticket_id": "4021",
        "source": "zendesk",
        "customer": "acme",
        "priority": "P1",
        "plan": "premium",
        "kind": "breach",
        "metric": "first_response",
        "percent": None,
        "tier": None,
        "due_at": datetime(2026, 3, 2, 16, 0, tzinfo=UTC),
        "tz": ZoneInfo("Europe/Madrid"),
        "link": None,
        "dedupe_key": "cp-17:p1-page:0",
        **fields,
    }
    return MessageFacts(**values)
