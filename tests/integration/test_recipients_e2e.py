"""Recipients from the ticket, end to end: apply → timer index → beat → fire → Apprise → webhook
sinks, and the timeline report. `Desk` drives the real steps on a fake clock, every fire and
delivery twice, on SQLite and PostgreSQL with real Redis.

A Madrid desk answers in 4 hours; a warning at 75 % tells the ticket's assignee, a breach its
assignee and its group, each on the channel a directory gives them: the billing group is in the
policy's `directory`, the agent Ana in the operator's file (ESCALERA_DIRECTORY). Both fall back
to `desk`.

The ticket, opened Monday 2 March 2026 10:00 in `facturacion` (the portal's spelling of the
policy's `Facturación`) and assigned to `Ana@Acme.example`, is warned at 13:00 on Ana's chat.
Reassigned at 13:30 to Bo, whom no directory knows, its 14:00 breach goes to the billing team
and, for Bo, to `desk`: the timeline says why.
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
    serve_policy,
)
from worker.cli import main

POLICY = """\
name: mesa
language: en
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
  - {priorities: [P1, P2], first_response: 4h}
channels: {desk: {}, billing_team: {}, ana_chat: {}}
directory:
  groups: {Facturación: billing_team}
routes:
  - {name: heads-up, when: {kinds: [warning]}, to: [assignee], channels: [desk]}
  - {name: owners, when: {kinds: [breach]}, to: [assignee, group], channels: [desk]}
"""
DIRECTORY = """\
agents:
  "ana@acme.example": ana_chat
"""
TICKET = Ticket("api", "R-1", "estandar", "acme", "P2", None)


@pytest.fixture
def desk(
    policy_dir: Path, configured: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Desk]:
    (tmp_path / "directory.yaml").write_text(DIRECTORY)
    monkeypatch.setenv("ESCALERA_DIRECTORY", str(tmp_path / "directory.yaml"))
    serve_policy(policy_dir, monkeypatch, "mesa", POLICY)
    sinks = Sinks(["desk", "billing_team", "ana_chat"])
    yield Desk(sinks, "Europe/Madrid", TICKET)
    sinks.close()


def test_the_assignee_and_the_group_are_paged_on_their_own_channels_and_an_unknown_one_on_desk(
    desk: Desk, capsys: pytest.CaptureFixture[str]
) -> None:
    desk.event(
        "2026-03-02 10:00",
        "created",
        priority="P2",
        customer="acme",
        group="facturacion",
        assignee="Ana@Acme.example",
    )
    desk.run_until(desk.local("2026-03-02 13:15"))
    desk.event("2026-03-02 13:30", "assigned", assignee="bo@acme.example")
    desk.run_until(desk.local("2026-03-02 18:00"))

    got = [(m.at, m.channel, m.title) for m in desk.received]
    assert got == [
        (desk.local("2026-03-02 13:00"), "ana_chat", got[0][2]),
        (desk.local("2026-03-02 14:00"), "billing_team", got[1][2]),
        (desk.local("2026-03-02 14:00"), "desk", got[2][2]),
    ]
    assert "75%" in got[0][2] and "breach" in got[1][2].lower() and got[1][2] == got[2][2]

    (logged,) = [line for line in capsys.readouterr().out.splitlines() if "not_in_dir" in line]
    for part in ("ticket_id=R-1", "checkpoint=first_response:breach", "source=api"):
        assert part in logged

    assert main(["report", "timeline", "api/R-1", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    told = [
        (e["what"], e.get("recipients")) for e in report["timeline"] if e["kind"] == "notification"
    ]
    assert told == [
        ("heads-up → ana_chat", None),
        ("owners → billing_team", None),
        ("owners → desk", "assignee bo@acme.example not in the directory: sent to desk"),
    ]


def test_the_timeline_knows_the_operators_directory_file(
    desk: Desk, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ana is in the operator's file, the Soporte group in no directory: the breach goes to
    ana_chat and, for the group, to desk, and the report and the API's timeline blame only the
    group (a timeline blind to the file would name Ana too). A ticket of its own: the process
    keeps parsed events by row id and event id, which R-1 of the test before would share."""
    desk.ticket = Ticket("api", "R-2", "estandar", "acme", "P2", None)
    desk.event("2026-03-02 10:00", "created", priority="P2", customer="acme",
               group="Soporte", assignee="ana@acme.example")  # fmt: skip
    desk.run_until(desk.local("2026-03-02 18:00"))
    assert sorted(m.channel for m in desk.received if "breach" in m.title.lower()) == [
        "ana_chat",
        "desk",
    ]
    capsys.readouterr()
    assert main(["report", "timeline", "api/R-2", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    notes = {
        e["what"]: e.get("recipients") for e in report["timeline"] if e["kind"] == "notification"
    }
    assert notes["owners → desk"] == "group Soporte not in the directory: sent to desk"
