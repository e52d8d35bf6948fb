"""Next reply time, end to end: apply → timer index → beat → fire → Apprise → a webhook sink.

A Madrid desk (Monday–Friday 09:00–18:00, Spanish messages) promises a first response in 1
hour and an answer to every customer message in 2 working hours, warns 15 minutes before a
reply is due, and pages a missed reply to `guardia` every 15 minutes until someone answers.
`Desk` drives the real steps on a fake clock, every fire and delivery twice, on SQLite and
PostgreSQL with real Redis.

The ticket, opened Thursday 5 March 2026 09:00 by user u-7, is answered at 09:20. The customer
writes at 09:30 and a colleague in copy at 10:00 (the wait still counts from 09:30); an
internal note at 10:30 answers nobody:
  15 minutes left -> 11:15; breach -> 11:30, paged once: the agent answers at 11:40, before
  the page's first repeat.
The customer writes again at 17:00: due Friday 10:00 across the night (warned at 09:30 and
09:45), answered at 09:20, so nothing more is sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.lifecycle_desk import (
    API_TOKEN,
    Desk,
    Sinks,
    Ticket,
    assert_messages,
    serve_policy,
    table,
)

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
priorities: {P1: {}}
plans: {estandar: {calendar: oficina}}
default_plan: estandar
warn_at: [75]
warn_before: [15m]
targets:
  - {priority: P1, first_response: 1h, next_reply: 2h}
channels: {guardia: {}, mesa: {}}
routes:
  - {name: avisos, when: {metrics: [next_reply], kinds: [warning]}, channels: [mesa]}
  - name: respuestas
    when: {metrics: [next_reply], kinds: [breach]}
    channels: [guardia]
    repeat: {every: 15m, limit: 3}
ticket_links: {api: "https://mesa.example/tickets/{ticket_id}"}
"""
TICKET = Ticket("api", "R-1", "estandar", "acme", "P1", "https://mesa.example/tickets/R-1")
PAGES = table("""
at               | checkpoint               | route      | channel | # | headline                                      | deadline
2026-03-05 11:00 | next_reply#2:warning:75  | avisos     | mesa    | 0 | 75% del tiempo de próxima respuesta consumido | 2026-03-05 11:30 CET (quedan 30m)
2026-03-05 11:15 | next_reply#2:warning:15m | avisos     | mesa    | 0 | quedan 15 minutos de próxima respuesta        | 2026-03-05 11:30 CET (quedan 15m)
2026-03-05 11:30 | next_reply#2:breach      | respuestas | guardia | 0 | próxima respuesta incumplida                  | 2026-03-05 11:30 CET (vencido hace 0m)
""")


@pytest.fixture
def desk(policy_dir: Path, configured: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Desk]:
    serve_policy(policy_dir, monkeypatch, "mesa", POLICY)
    sinks = Sinks(["guardia", "mesa"])
    yield Desk(sinks, "Europe/Madrid", TICKET)
    sinks.close()


def test_a_missed_reply_is_paged_once_and_stops_when_answered(desk: Desk) -> None:
    """The wait from the customer's 09:30 message is warned and its breach paged once, in the
    policy's words; the answer at 11:40 stops the page before it repeats; the overnight wait,
    answered in time, sends nothing. The ticket read shows the metric."""
    desk.event("2026-03-05 09:00", "created", priority="P1", customer="acme", requester_id="u-7")
    desk.event("2026-03-05 09:20", "agent_replied", author="a-1", author_role="agent")
    desk.event("2026-03-05 09:30", "customer_replied", author="u-7", author_role="requester")
    desk.event("2026-03-05 10:00", "customer_replied", author="u-9", author_role="customer")
    desk.event("2026-03-05 10:30", "agent_replied", author="a-1", public=False)
    desk.event("2026-03-05 11:40", "agent_replied", author="a-1", author_role="agent")
    desk.event("2026-03-05 17:00", "customer_replied", author="u-7", author_role="requester")
    read = desk.api.get(
        "/v1/tickets/api/R-1",
        params={"at": "2026-03-05T17:15:00+01:00"},
        headers={"authorization": f"Bearer {API_TOKEN}"},
    ).json()
    assert (read["metrics"]["next_reply"]["state"], read["metrics"]["next_reply"]["due_at"]) == (
        "running",
        "2026-03-06T10:00:00+01:00",
    )
    desk.event("2026-03-06 09:20", "agent_replied", author="a-2", author_role="agent")
    desk.run_until(desk.local("2026-03-09 18:00"))
    assert desk.armed() == (0, 0)
    assert_messages(desk, PAGES)
