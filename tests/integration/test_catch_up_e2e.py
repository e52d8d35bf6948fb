"""Late arrivals do not page the past, end to end: apply → timer index → beat → fire → Apprise →
a webhook sink, on SQLite and PostgreSQL with real Redis (`Desk`, every fire and delivery twice).

A Mexico City desk open round the clock answers P1 tickets in 30 minutes and warns at 75 % and
90 %. Ticket L-1 was opened Monday 2 March 2026 at 09:00 but reaches Escalera only at 10:00 (an
import, a portal retrying after an outage): its 75 % (09:22:30), 90 % (09:27) and breach (09:30)
are all due when it arrives.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from structlog.testing import capture_logs

from shared.db.models import Checkpoint
from tests.integration.lifecycle_desk import (
    Desk,
    Sinks,
    Ticket,
    assert_messages,
    serve_policy,
    table,
)
from tests.integration.services import apply_now
from tests.support import event
from worker import tasks
from worker.cli import main
from worker.notify.fire import fire_checkpoints
from worker.runtime import runtime

POLICY = """\
name: guardia
language: es
calendars:
  siempre: 24x7
default_timezone: America/Mexico_City
priorities: {P1: {}}
plans: {estandar: {calendar: siempre}}
default_plan: estandar
commitments: {first_response: 95}
targets:
  - {priority: P1, first_response: 30m, update_every: 1h}
channels: {guardia: {}}
routes:
  - {name: avisos, when: {kinds: [warning, breach]}, channels: [guardia]}
ticket_links: {api: "https://mesa.example/tickets/{ticket_id}"}
"""
TICKET = Ticket("api", "L-1", "estandar", "acme", "P1", "https://mesa.example/tickets/L-1")
CAUGHT_UP = "caught up by first_response:breach"

DeskOf = Callable[[str], Desk]


@pytest.fixture
def desk_of(
    policy_dir: Path, configured: None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[DeskOf]:
    """The desk with ``extra`` appended to its policy (``catch_up: all``, ``max_catch_up: 1h``)."""
    sinks = Sinks(["guardia"])

    def make(extra: str) -> Desk:
        serve_policy(policy_dir, monkeypatch, "guardia", POLICY + extra)
        return Desk(sinks, "America/Mexico_City", TICKET)

    yield make
    sinks.close()


def _timeline(capsys: pytest.CaptureFixture[str]) -> dict[str, tuple[str, str | None]]:
    """Each checkpoint of L-1 in ``report timeline``: its state and why it paged nobody."""
    assert main(["report", "timeline", "api/L-1", "--format", "json"]) == 0
    entries = json.loads(capsys.readouterr().out)["timeline"]
    return {
        e["what"]: (e["state"], e.get("not_paged")) for e in entries if e["kind"] == "checkpoint"
    }


def test_a_late_ticket_pages_only_its_breach_and_later_clocks_page_on_time(
    desk_of: DeskOf, capsys: pytest.CaptureFixture[str]
) -> None:
    """Arriving at 10:00, L-1 pages the breach once, not the two warnings it passed; they fire
    too, and the timeline says the breach caught them up. Answered at 10:10, its update clock
    runs on time: each of its warnings and its breach pages at its own instant, as before."""
    desk = desk_of("")
    desk.event(
        "2026-03-02 09:00", "created", arrives="2026-03-02 10:00", priority="P1", customer="acme"
    )
    desk.event("2026-03-02 10:10", "agent_replied")
    desk.run_until(desk.local("2026-03-02 12:00"))
    assert_messages(desk, table("""
at               | checkpoint           | route  | channel | # | headline                                                  | deadline
2026-03-02 10:00 | first_response:breach | avisos | guardia | 0 | primera respuesta incumplida                              | 2026-03-02 09:30 CST (vencido hace 30m)
2026-03-02 10:55 | update#1:warning:75   | avisos | guardia | 0 | 75% del tiempo de actualización al cliente consumido      | 2026-03-02 11:10 CST (quedan 15m)
2026-03-02 11:04 | update#1:warning:90   | avisos | guardia | 0 | 90% del tiempo de actualización al cliente consumido      | 2026-03-02 11:10 CST (quedan 6m)
2026-03-02 11:10 | update#1:breach       | avisos | guardia | 0 | actualización al cliente incumplida                       | 2026-03-02 11:10 CST (vencido hace 0m)
"""))  # fmt: skip
    assert _timeline(capsys) == {
        "first_response:warning:75": ("fired", CAUGHT_UP),
        "first_response:warning:90": ("fired", CAUGHT_UP),
        "first_response:breach": ("fired", None),
        "update#1:warning:75": ("fired", None),
        "update#1:warning:90": ("fired", None),
        "update#1:breach": ("fired", None),
        **{f"update#1:reminder:{n}": ("armed", None) for n in (1, 2, 3)},
    }


def test_catch_up_all_pages_every_checkpoint_the_late_ticket_passed(desk_of: DeskOf) -> None:
    desk = desk_of("catch_up: all\n")
    desk.event(
        "2026-03-02 09:00", "created", arrives="2026-03-02 10:00", priority="P1", customer="acme"
    )
    assert_messages(desk, table("""
at               | checkpoint                | route  | channel | # | headline                                      | deadline
2026-03-02 10:00 | first_response:warning:75 | avisos | guardia | 0 | 75% del tiempo de primera respuesta consumido | 2026-03-02 09:30 CST (vencido hace 30m)
2026-03-02 10:00 | first_response:warning:90 | avisos | guardia | 0 | 90% del tiempo de primera respuesta consumido | 2026-03-02 09:30 CST (vencido hace 30m)
2026-03-02 10:00 | first_response:breach     | avisos | guardia | 0 | primera respuesta incumplida                  | 2026-03-02 09:30 CST (vencido hace 30m)
"""))  # fmt: skip


def test_older_than_max_catch_up_pages_nothing_but_counts_as_breached(
    desk_of: DeskOf, capsys: pytest.CaptureFixture[str]
) -> None:
    """With ``max_catch_up: 1h``, L-1 arriving at 12:30 (its breach three hours old) pages
    nobody; every checkpoint fired, the timeline says why, and compliance counts the first
    response breached."""
    desk = desk_of("max_catch_up: 1h\n")
    desk.event(
        "2026-03-02 09:00", "created", arrives="2026-03-02 12:30", priority="P1", customer="acme"
    )
    desk.run_until(desk.local("2026-03-02 13:00"))
    assert desk.received == []
    assert _timeline(capsys) == dict.fromkeys(
        ["first_response:warning:75", "first_response:warning:90", "first_response:breach"],
        ("fired", "older than max_catch_up"),
    )
    at = desk.local("2026-03-02 13:00").isoformat()
    assert (
        main(["report", "compliance", "--from", "2026-03-02", "--at", at, "--format", "json"]) == 0
    )
    rows = json.loads(capsys.readouterr().out)["rows"]
    first = next(r for r in rows if r["dimension"] == "all" and r["metric"] == "first_response")
    assert (first["met"], first["breached"], first["open"]) == (0, 1, 0)


def test_the_fire_task_logs_why_a_checkpoint_paged_nobody(desk_of: DeskOf) -> None:
    """The worker's line for each fired checkpoint names the ticket, the checkpoint and the
    source, and for one not paged, why and what paged instead; the row keeps it too."""
    desk_of("")
    apply_now(event("created", START, "L-1", priority="P1", customer="acme"))  # months ago
    ids = _checkpoint_ids()
    with capture_logs() as logs:
        assert tasks.fire_checkpoints_task.run(sorted(ids.values())) == 3
    lines = {line["key"]: line for line in logs if line["event"] == "checkpoint_fired"}
    assert {k: lines["first_response:warning:75"][k] for k in WHO_WHAT_WHY} == {
        "ticket_id": "L-1",
        "source": "api",
        "checkpoint": ids["first_response:warning:75"],
        "not_paged": "caught_up",
        "caught_up_by": "first_response:breach",
    }
    assert "not_paged" not in lines["first_response:breach"]
    (done,) = (line for line in logs if line["event"] == "checkpoints_fired")
    assert (done["notifications"], done["not_paged"]) == (1, 2)
    with runtime().sessions() as session:
        rows = session.execute(
            select(Checkpoint.key, Checkpoint.not_paged, Checkpoint.caught_up_by)
        )
        assert sorted(tuple(row) for row in rows) == [
            ("first_response:breach", None, None),
            ("first_response:warning:75", "caught_up", "first_response:breach"),
            ("first_response:warning:90", "caught_up", "first_response:breach"),
        ]


WHO_WHAT_WHY = ("ticket_id", "source", "checkpoint", "not_paged", "caught_up_by")
START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def _checkpoint_ids() -> dict[str, int]:
    with runtime().sessions() as session:
        return {key: cid for key, cid in session.execute(select(Checkpoint.key, Checkpoint.id))}


def test_a_warning_fired_apart_from_its_breach_still_pages_if_a_late_reply_meets_the_breach(
    desk_of: DeskOf,
) -> None:
    """Found by the kill -9 chaos trial under a backlog: the 75 % warning is fired in a batch of
    its own while the breach is due but not fired yet, and a reply that happened before the
    breach is still waiting in the events queue. Once applied it meets the breach, which never
    fires: had the breach caught the warning up, neither would page. Only a fired checkpoint
    catches a warning up, so the warning pages."""
    desk_of("")
    apply_now(event("created", START, "L-1", priority="P1", customer="acme"))
    ids = _checkpoint_ids()
    late = datetime(2026, 3, 2, 15, 31, tzinfo=UTC)  # all three due
    with runtime().sessions.begin() as session:
        alone = fire_checkpoints(
            session, runtime().policies, [ids["first_response:warning:75"]], late
        )
    assert alone.not_paged == {}
    assert len(alone.notes) == 1  # the warning pages
    apply_now(event("agent_replied", datetime(2026, 3, 2, 15, 25, tzinfo=UTC), "L-1"))
    with runtime().sessions() as session:
        left = set(session.scalars(select(Checkpoint.key)))
    assert "first_response:breach" not in left  # met by the reply: it never pages
