"""Warnings by time, end to end: apply → timer index → beat → fire → Apprise → a webhook sink.

A Madrid desk (Monday–Friday 09:00–18:00, Spanish messages) warns at 75 % and at 30 and 5
working minutes before each first-response deadline, and pages every warning and breach to
`guardia`. `Desk` drives the real steps on a fake clock, every fire and delivery twice, on
SQLite and PostgreSQL with real Redis.

The ticket, opened Thursday 5 March 2026 17:20 as P2 (4 hours: due Friday 12:20), is raised to
P1 (1 hour) at 17:30, 10 working minutes in:
  30 minutes left -> 17:50 Thursday (the same checkpoint as P2's 11:50 Friday, re-timed);
  75 % (45 minutes) -> 30 more on Thursday, then Friday 09:05; 5 minutes left -> 09:15;
  breach -> 09:20.
Pending 09:06–09:16 moves the 5-minute warning to 09:25 and the breach to 09:30; the reply at
09:27 meets the deadline, so the breach never comes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.lifecycle_desk import (
    Desk,
    Sinks,
    Ticket,
    assert_messages,
    serve_policy,
    table,
)
from worker.cli import main

POLICY = """\
name: mesa
language: es
calendars:
  oficina:
    timezone: Europe/Madrid
    hours:
      mon: ["09:00-18:00"]
      tue: ["09:00-18:00"]
      wed: ["09:00-18:00"]
      thu: ["09:00-18:00"]
      fri: ["09:00-18:00"]
priorities: {P1: {}, P2: {}}
plans: {estandar: {calendar: oficina}}
default_plan: estandar
warn_at: [75]
warn_before: [30m, 5m]
targets:
  - {priority: P1, first_response: 1h}
  - {priority: P2, first_response: 4h}
channels: {guardia: {}}
routes:
  - {name: avisos, when: {kinds: [warning, breach]}, channels: [guardia]}
ticket_links: {api: "https://mesa.example/tickets/{ticket_id}"}
"""
TICKET = Ticket("api", "W-1", "estandar", "acme", "P1", "https://mesa.example/tickets/W-1")
PAGES = table("""
at               | checkpoint                 | route  | channel | # | headline                                      | deadline
2026-03-05 17:50 | first_response:warning:30m | avisos | guardia | 0 | quedan 30 minutos de primera respuesta        | 2026-03-06 09:20 CET (quedan 15h 30m)
2026-03-06 09:05 | first_response:warning:75  | avisos | guardia | 0 | 75% del tiempo de primera respuesta consumido | 2026-03-06 09:20 CET (quedan 15m)
2026-03-06 09:25 | first_response:warning:5m  | avisos | guardia | 0 | quedan 5 minutos de primera respuesta         | 2026-03-06 09:30 CET (quedan 5m)
""")


@pytest.fixture
def desk(policy_dir: Path, configured: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Desk]:
    serve_policy(policy_dir, monkeypatch, "mesa", POLICY)
    sinks = Sinks(["guardia"])
    yield Desk(sinks, "Europe/Madrid", TICKET)
    sinks.close()


def test_warnings_by_time_are_paged_once_each_where_that_much_working_time_is_left(
    desk: Desk, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each warning by time is paged once, at its working-time instant, saying the time left;
    it moved with the priority change (the same checkpoint) and with the pause; the reports
    show it like any other warning."""
    desk.event("2026-03-05 17:20", "created", priority="P2", customer="acme")
    as_p2 = desk.checkpoint_ids()["first_response:warning:30m"]
    desk.event("2026-03-05 17:30", "priority_changed", priority="P1")
    assert desk.checkpoint_ids()["first_response:warning:30m"] == as_p2  # re-timed, not new

    assert main(["report", "at-risk", "--at", "2026-03-05T17:40:00+01:00", "--format", "json"]) == 0
    (risk,) = json.loads(capsys.readouterr().out)["tickets"]
    assert (risk["next_checkpoint"]["key"], risk["left_seconds"]) == (
        "first_response:warning:30m",
        600,
    )

    desk.event("2026-03-06 09:06", "status_changed", status="pending")
    desk.event("2026-03-06 09:16", "status_changed", status="open")
    desk.event("2026-03-06 09:27", "agent_replied")
    desk.run_until(desk.local("2026-03-09 18:00"))
    assert desk.armed() == (0, 0)
    assert_messages(desk, PAGES)

    assert main(["report", "timeline", "api/W-1", "--format", "json"]) == 0
    timeline = json.loads(capsys.readouterr().out)["timeline"]
    fired = {e["what"]: e["state"] for e in timeline if e["kind"] == "checkpoint"}
    assert fired == {
        "first_response:warning:30m": "fired",
        "first_response:warning:75": "fired",
        "first_response:warning:5m": "fired",
    }
    sent = [e["checkpoint"] for e in timeline if e["kind"] == "notification"]
    assert sorted(sent) == sorted(fired)
