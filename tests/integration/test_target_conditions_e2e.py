"""Targets chosen by conditions, end to end: apply → timer index → beat → fire → Apprise → a
webhook sink, the ticket read and the timeline report. `Desk` drives the real steps on a fake
clock, every fire and delivery twice, on SQLite and PostgreSQL with real Redis.

A Madrid desk (Monday–Friday 09:00–18:00, Spanish messages) answers Billing (`Facturación`) in 4
hours, Billing tickets tagged vip in 40 minutes, anything else in 8 hours, and pages warnings at
75 % and breaches to `guardia`.

The ticket, opened Monday 2 March 2026 10:00 in Billing as P2, is due 14:00 (75 % at 13:00).
Tagged vip at 10:20, 20 of its 40 minutes are used: due 10:40, 75 % at 10:30, paged. The tag is
removed at 10:35: back on 4 hours from creation, due 14:00, so the 10:40 breach never comes, and
the 75 % warning, already paged, is not paged again. Moved to Support (`Soporte`) at 11:00: 8
hours, due 18:00. The reply at 12:00 meets it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.lifecycle_desk import (
    API_TOKEN,
    Desk,
    Sinks,
    Ticket,
    serve_policy,
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
targets:
  - name: facturacion-vip
    when: {groups: [Facturación], tags: {any: [vip]}}
    priorities: [P1, P2]
    first_response: 40m
  - name: facturacion
    when: {groups: [Facturación]}
    priorities: [P1, P2]
    first_response: 4h
  - name: general
    priorities: [P1, P2]
    first_response: 8h
channels: {guardia: {}}
routes:
  - {name: avisos, when: {kinds: [warning, breach]}, channels: [guardia]}
ticket_links: {api: "https://mesa.example/tickets/{ticket_id}"}
"""
TICKET = Ticket("api", "V-1", "estandar", "acme", "P2", "https://mesa.example/tickets/V-1")


@pytest.fixture
def desk(policy_dir: Path, configured: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Desk]:
    serve_policy(policy_dir, monkeypatch, "mesa", POLICY)
    sinks = Sinks(["guardia"])
    yield Desk(sinks, "Europe/Madrid", TICKET)
    sinks.close()


def test_a_ticket_that_moves_is_paged_by_the_target_it_is_under_at_each_moment(
    desk: Desk, capsys: pytest.CaptureFixture[str]
) -> None:
    """The vip tag moves the deadline from 14:00 to 10:40 (the same checkpoint, re-timed) and
    its warning is paged; removing the tag moves it back, so no breach comes; the ticket read
    and the timeline say which target is in force and why."""
    desk.event("2026-03-02 10:00", "created", priority="P2", customer="acme", group="Facturación")
    breach = desk.checkpoint_ids()["first_response:breach"]
    desk.event("2026-03-02 10:20", "updated", tags_added=["vip"])
    assert desk.checkpoint_ids()["first_response:breach"] == breach  # re-timed, not new

    read = desk.api.get("/v1/tickets/api/V-1", headers={"authorization": f"Bearer {API_TOKEN}"})
    assert read.status_code == 200, read.text
    body = read.json()
    assert body["metrics"]["first_response"]["due_at"] == "2026-03-02T10:40:00+01:00"
    assert body["target"] == {
        "name": "facturacion-vip",
        "since": "2026-03-02T10:20:00+01:00",
        "why": "tag vip added",
    }

    desk.event("2026-03-02 10:35", "updated", tags_removed=["vip"])
    desk.event("2026-03-02 11:00", "assigned", group="Soporte")
    desk.event("2026-03-02 12:00", "agent_replied")
    desk.run_until(desk.local("2026-03-03 18:00"))
    assert desk.armed() == (0, 0)
    (page,) = desk.received  # the warning, once; no breach
    assert (page.at, page.channel, page.title) == (
        desk.local("2026-03-02 10:30"),
        "guardia",
        "[P2] api/V-1: 75% del tiempo de primera respuesta consumido",
    )
    assert "Grupo: Facturación\n" in page.body
    assert "Plazo: 2026-03-02 10:40 CET (quedan 10m)\n" in page.body

    assert main(["report", "timeline", "api/V-1", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    moves = [(e["at"], e["what"], e["why"]) for e in report["timeline"] if e["kind"] == "targets"]
    assert moves == [
        ("2026-03-02T10:00:00+01:00", "facturacion", None),
        ("2026-03-02T10:20:00+01:00", "facturacion-vip", "tag vip added"),
        ("2026-03-02T10:35:00+01:00", "facturacion", "tag vip removed"),
        ("2026-03-02T11:00:00+01:00", "general", "group Facturación → Soporte"),
    ]
    fr = report["metrics"]["first_response"]
    assert (fr["state"], fr["due_at"]) == ("met", "2026-03-02T18:00:00+01:00")
