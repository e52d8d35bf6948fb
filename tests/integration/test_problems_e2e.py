"""Recurring incidents end to end, on SQLite and PostgreSQL: tickets sharing a problem tag are
told once per window to problem management, and its resolution lists who reported it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.events import Event
from tests.integration.sinks import JsonSink
from tests.support import event
from worker.events.apply import apply_event
from worker.notify.deliver import Deliverer
from worker.notify.transport import AppriseSender
from worker.runtime import runtime

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
PROBLEMS = """
channels:
  problems: {}
routes:
  - name: problem-mgmt
    when: {kinds: [escalation]}
    channels: [problems]
problems:
  key: {tag_prefix: "problem_"}
  threshold: 3
  window: 24h
  route: problem-mgmt
"""


@pytest.fixture
def desk(configured: None, policy_dir: Path) -> None:
    preset = policy_dir / "soporte-completo.yaml"
    preset.write_text(preset.read_text() + PROBLEMS)
    runtime.cache_clear()


def _apply(ev: Event, sink: JsonSink) -> None:
    """Apply one event and deliver what it wrote, as the worker does after its commit."""
    rt = runtime()
    with rt.sessions.begin() as session:
        applied = apply_event(session, rt.policies, ev, ev.occurred_at)
    deliverer = Deliverer(rt.policies, AppriseSender(), {"ESCALERA_CHANNEL_PROBLEMS": sink.url()})
    for notification_id in applied.notifications:
        with rt.sessions.begin() as session:
            deliverer.deliver(session, notification_id, ev.occurred_at)


def _incident(n: int, hours: float, customer: str, sink: JsonSink, **fields: Any) -> None:
    at = START + timedelta(hours=hours)
    tags = fields.pop("tags", ["vpn", "problem_vpn"])
    _apply(
        event("created", at, f"T-{n}", priority="P2", customer=customer, tags=tags, **fields), sink
    )


def test_a_recurring_incident_is_told_once_per_window_then_its_customers_when_solved(
    desk: None, sink: JsonSink
) -> None:
    _incident(1, 0, "acme", sink)
    _incident(2, 1, "zeta", sink)
    _incident(9, 1.5, "acme", sink, tags=["problem_mail"])  # another problem: not counted
    assert sink.received == []
    _incident(3, 2, "acme", sink)  # the third within 24h of the first: told
    (told,) = sink.received
    assert told["json"]["title"].startswith("[P2] api/T-1: incidente recurrente problem_vpn: 3")
    assert "Tickets: api/T-1, api/T-2, api/T-3" in told["json"]["message"]
    _incident(4, 5, "omega", sink)  # fourth and fifth in the same window: nothing more
    _incident(5, 23, "omega", sink)
    assert len(sink.received) == 1
    # a new window opens at the first ticket after the first one's 24h: told again at its 3rd
    for n, hours in ((6, 25), (7, 26), (8, 27)):
        _incident(n, hours, "beta", sink)
    assert len(sink.received) == 2
    assert "Tickets: api/T-6, api/T-7, api/T-8" in sink.received[1]["json"]["message"]

    at = START + timedelta(hours=30)
    _apply(
        event("created", at, "P-1", priority="P2", ticket_type="problem", tags=["problem_vpn"]),
        sink,
    )
    assert len(sink.received) == 2  # the problem ticket is no occurrence
    _apply(event("status_changed", at + timedelta(hours=2), "P-1", status="solved"), sink)
    solved = sink.received[2]["json"]
    assert "problema problem_vpn resuelto: avisar a los 4 clientes" in solved["title"]
    assert "Clientes que lo reportaron: acme, beta, omega, zeta" in solved["message"]
    _apply(event("status_changed", at + timedelta(hours=3), "P-1", status="open"), sink)
    _apply(event("status_changed", at + timedelta(hours=4), "P-1", status="solved"), sink)
    assert len(sink.received) == 3  # solved again: told once
