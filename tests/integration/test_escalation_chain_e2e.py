"""Escalation chains, end to end: apply → timer index → beat → fire → Apprise → sinks, and the
repeats lane → repeat task → Apprise, on a fake clock, on SQLite and PostgreSQL with real Redis.

A Madrid desk (Monday–Friday 09:00–18:00, Spanish messages) must answer a P1 in an hour. Its
breach walks a chain: the assignee's team channel (`equipo`) at once, the team lead by e-mail
(`jefa_email`) if nobody acknowledged within 10 minutes, the on-call phone (`guardia`) 15
minutes later, again every 5 minutes twice more. The ticket, opened Monday 2 March 2026 09:00,
breaches at 10:00:
  10:00 equipo (step 1) -> 10:10 jefa_email (step 2) -> 10:25 guardia (step 3)
  -> 10:30 and 10:35 guardia again (repeat_last: 2), and then nothing.
`Desk` runs every fire, delivery and repeat twice, as an at-least-once queue may: each message
still reaches its sink once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from structlog.testing import capture_logs

from shared.db.models import Acknowledgement
from tests.integration.lifecycle_desk import (
    Desk,
    Sinks,
    Ticket,
    assert_messages,
    serve_policy,
    table,
)
from tests.integration.services import REDIS_URL
from worker.cli import main
from worker.notify.paging import StopReason

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
targets:
  - {priority: P1, first_response: 1h}
channels: {equipo: {}, jefa_email: {}, guardia: {}}
routes:
  - name: cadena
    when: {kinds: [breach]}
    steps:
      - {channels: [equipo], ack_within: 10m}
      - {channels: [jefa_email], ack_within: 15m}
      - {channels: [guardia], ack_within: 5m}
    repeat_last: 2
ticket_links: {api: "https://mesa.example/tickets/{ticket_id}"}
"""
TICKET = Ticket("api", "C-1", "estandar", "acme", "P1", "https://mesa.example/tickets/C-1")
HEADLINE = "primera respuesta incumplida"
WALK = f"""
at               | checkpoint            | route  | channel    | # | headline | deadline
2026-03-02 10:00 | first_response:breach | cadena | equipo     | 0 | {HEADLINE} | 2026-03-02 10:00 CET (vencido hace 0m)
2026-03-02 10:10 | first_response:breach | cadena | jefa_email | 1 | {HEADLINE} | 2026-03-02 10:00 CET (vencido hace 10m)
2026-03-02 10:25 | first_response:breach | cadena | guardia    | 2 | {HEADLINE} | 2026-03-02 10:00 CET (vencido hace 25m)
2026-03-02 10:30 | first_response:breach | cadena | guardia    | 3 | {HEADLINE} | 2026-03-02 10:00 CET (vencido hace 30m)
2026-03-02 10:35 | first_response:breach | cadena | guardia    | 4 | {HEADLINE} | 2026-03-02 10:00 CET (vencido hace 35m)
"""


@pytest.fixture
def desk(policy_dir: Path, configured: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Desk]:
    serve_policy(policy_dir, monkeypatch, "mesa", POLICY)
    sinks = Sinks(["equipo", "jefa_email", "guardia"])
    opened = Desk(sinks, "Europe/Madrid", TICKET)
    opened.event("2026-03-02 09:00", "created", priority="P1", customer="acme")
    yield opened
    sinks.close()


def walked(rows: int) -> str:
    """The first ``rows`` messages of the whole walk."""
    return "\n".join(WALK.strip().splitlines()[: rows + 1])


def test_a_chain_walks_its_steps_until_someone_acknowledges(
    desk: Desk, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nobody answers the team or the lead: the on-call phone rings at 10:25; Marta acknowledges
    from its link at 10:27, so it never rings again, and the team, the lead and the phone each
    hear once that Marta has it. The timeline shows each step, the notices and who
    acknowledged when; a log line says the chain stopped, and for whom."""
    desk.run_until(desk.local("2026-03-02 10:26"))
    page = desk.message("first_response:breach", "cadena", "guardia", repeat=2)
    with capture_logs() as logs:
        desk.acknowledge_by_link("2026-03-02 10:27", page, name="Marta Ruiz")
    desk.run_until(desk.local("2026-03-02 12:00"))
    notices = [m for m in desk.received if m.key.endswith(":acknowledged")]
    desk.received = [m for m in desk.received if m not in notices]
    assert_messages(desk, table(walked(3)))
    assert desk.armed() == (0, 0)
    cid = desk.checkpoint_ids()["first_response:breach"]
    title = "[P1] api/C-1: confirmado por Marta Ruiz: primera respuesta incumplida"
    said = (
        "Confirmado por Marta Ruiz el 2026-03-02 10:27 CET: el escalado se detiene, no se avisa "
        "a nadie más."
    )
    assert [(desk.zone_time(m), m.channel, m.title, m.key) for m in notices] == [
        ("10:27", channel, title, f"{cid}:cadena:{channel}:acknowledged")
        for channel in ("equipo", "jefa_email", "guardia")
    ]
    for notice in notices:  # who and what, and nothing left to acknowledge
        lines = notice.body.splitlines()
        assert lines[0] == said, notice.body
        assert "Ticket: api/C-1 (estandar)" in lines
        assert not any(line.startswith("Confirmar recepción") for line in lines), notice.body
    (stopped,) = (line for line in logs if line["event"] == "chain_stopped")
    assert {k: stopped[k] for k in ("ticket_id", "checkpoint", "route", "by", "repeat")} == {
        "ticket_id": "C-1",
        "checkpoint": "first_response:breach",
        "route": "cadena",
        "by": "Marta Ruiz",
        "repeat": 3,
    }

    assert main(["report", "timeline", "api/C-1", "--format", "json"]) == 0
    timeline = json.loads(capsys.readouterr().out)["timeline"]
    told = [e for e in timeline if e["kind"] == "notification"]
    steps = [(e["what"], e.get("step"), e.get("notice")) for e in told]
    assert steps == [
        ("cadena → equipo", 1, None),
        ("cadena → jefa_email", 2, None),
        ("cadena → guardia", 3, None),
        ("cadena → equipo", None, "acknowledged"),
        ("cadena → jefa_email", None, "acknowledged"),
        ("cadena → guardia", None, "acknowledged"),
    ]
    (ack,) = (e for e in timeline if e["kind"] == "acknowledgement")
    assert (ack["at"][:16], ack["what"], ack["by"]) == (
        "2026-03-02T10:27",
        "cadena",
        "Marta Ruiz",
    )
    assert ack["stopped_before_step"] == 3  # the on-call phone's next ring


def test_acknowledging_again_tells_nobody_again(desk: Desk) -> None:
    """Marta acknowledges the lead's e-mail at 10:12, and Luis the team's message at 10:13
    (a second click): the team and the lead hear once, that Marta has it."""
    desk.run_until(desk.local("2026-03-02 10:11"))
    lead = desk.message("first_response:breach", "cadena", "jefa_email", repeat=1)
    team = desk.message("first_response:breach", "cadena", "equipo")
    desk.acknowledge_by_link("2026-03-02 10:12", lead, name="Marta Ruiz")
    desk.acknowledge_by_link("2026-03-02 10:13", team, name="Luis")
    desk.run_until(desk.local("2026-03-02 12:00"))
    notices = [(m.channel, m.title) for m in desk.received if m.key.endswith(":acknowledged")]
    title = "[P1] api/C-1: confirmado por Marta Ruiz: primera respuesta incumplida"
    assert notices == [("equipo", title), ("jefa_email", title)]
    assert not [m for m in desk.received if m.channel == "guardia"]


def test_a_step_sent_as_it_was_acknowledged_still_hears_who_has_it(desk: Desk) -> None:
    """The team's message was still being stored when Pilar's acknowledgement committed at
    10:05 (her click found no message of the chain, so it told nobody): when the lead's step
    falls due at 10:10, the chain stops and the team hears then that Pilar has it."""
    desk.run_until(desk.local("2026-03-02 10:05"))
    cid = desk.checkpoint_ids()["first_response:breach"]
    with desk.rt.sessions.begin() as session:  # as the click stored it, seeing no message
        session.add(
            Acknowledgement(
                checkpoint_id=cid,
                route="cadena",
                dedupe_key=f"{cid}:cadena:equipo:0",
                acknowledged_at=desk.local("2026-03-02 10:05"),
                acknowledged_by="Pilar",
                via="link",
            )
        )
    desk.run_until(desk.local("2026-03-02 12:00"))
    told = [(desk.zone_time(m), m.channel, m.key) for m in desk.received]
    assert told == [
        ("10:00", "equipo", f"{cid}:cadena:equipo:0"),
        ("10:10", "equipo", f"{cid}:cadena:equipo:acknowledged"),
    ]
    assert desk.received[-1].title.startswith("[P1] api/C-1: confirmado por Pilar: ")


def test_a_chain_stops_when_the_ticket_is_answered(desk: Desk) -> None:
    """The reply at 10:12 meets the first response: the on-call phone is never rung."""
    desk.event("2026-03-02 10:12", "agent_replied")
    desk.run_until(desk.local("2026-03-02 12:00"))
    assert_messages(desk, table(walked(2)))
    assert [(s.checkpoint, s.route, s.repeat, s.reason) for s in desk.stopped[:1]] == [
        ("first_response:breach", "cadena", 2, StopReason.OVER)
    ]
    assert desk.armed() == (0, 0)


def test_a_chain_survives_redis_losing_its_lane_between_two_steps(desk: Desk) -> None:
    """Redis loses the repeats lane at 10:15, between the lead's e-mail and the phone: beat's
    reconcile brings the phone step back from the database, at its time, sent once."""
    desk.run_until(desk.local("2026-03-02 10:15"))
    redis.Redis.from_url(REDIS_URL).delete(desk.rt.repeats.keys.due)
    assert desk.armed() == (0, 0)
    assert desk.reconcile("2026-03-02 10:16") == 1
    assert desk.reconcile("2026-03-02 10:17") == 0  # idempotent
    desk.run_until(desk.local("2026-03-02 12:00"))
    assert_messages(desk, table(walked(5)))
    assert desk.armed() == (0, 0)


def test_a_step_whose_successor_was_never_armed_goes_on_at_the_next_reconcile(desk: Desk) -> None:
    """The worker sent the lead's e-mail at 10:10 and died before arming the phone step in
    Redis: the chain waits for nothing until beat's reconcile arms it from the database."""
    desk.run_until(desk.local("2026-03-02 10:05"))
    desk.drop_arms = 1
    desk.run_until(desk.local("2026-03-02 10:11"))
    assert desk.armed() == (0, 0)  # without reconcile, the chain would stop here
    assert desk.reconcile("2026-03-02 10:12") == 1
    desk.run_until(desk.local("2026-03-02 12:00"))
    assert_messages(desk, table(walked(5)))
