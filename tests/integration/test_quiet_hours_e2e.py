"""Quiet hours end to end: apply → timer index → beat → fire → held in the database → beat's
minute at the opening → one digest per channel, through Apprise to webhook sinks.

A Madrid desk's clocks run round the clock (24x7), but its P4 route keeps quiet outside office
hours (Monday–Friday 09:00–18:00) while its P1 route is marked ``always``. On Tuesday 3 March
2026, Q-4 (P4) opens at 22:00 and Q-5 (P4) at 22:10; Q-1 (P1) at 23:00. Q-1's warning (23:30)
and breach (00:00) page `guardia` at once. Q-4's and Q-5's warnings (00:00, 00:10) are held;
at 00:30 Redis loses everything and the worker restarts; their breaches (02:00, 02:10), armed
again from the database, are held too. At 07:00 an agent answers Q-5. At 09:00 `equipo` receives one digest listing Q-4's two notifications, and
nothing of Q-5, whose page no longer stands. Each release runs twice (at-least-once): the
digest arrives once. On SQLite and PostgreSQL with real Redis.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import select

from shared.config import settings
from shared.db.models import Checkpoint, Notification, NotificationState
from shared.db.models import Ticket as TicketRow
from tests.integration.lifecycle_desk import Desk, Received, Sinks, Ticket
from tests.integration.services import REDIS_URL
from worker.notify.release import due_held, release_held
from worker.runtime import runtime

POLICY = """\
name: mesa
calendars:
  siempre: 24x7
  oficina:
    timezone: Europe/Madrid
    hours: {mon: ["09:00-18:00"], tue: ["09:00-18:00"], wed: ["09:00-18:00"],
            thu: ["09:00-18:00"], fri: ["09:00-18:00"]}
default_timezone: Europe/Madrid
priorities: {P1: {}, P4: {}}
plans: {estandar: {calendar: siempre}}
default_plan: estandar
warn_at: [50]
targets:
  - {priority: P1, first_response: 1h}
  - {priority: P4, first_response: 4h}
channels: {guardia: {}, equipo: {}}
routes:
  - {name: paginas, when: {priorities: [P1]}, channels: [guardia], always: true}
  - {name: recordatorios, when: {priorities: [P4]}, channels: [equipo], quiet_outside: oficina}
"""


def ticket(ticket_id: str, priority: str) -> Ticket:
    return Ticket("api", ticket_id, "estandar", "acme", priority, "")


@pytest.fixture
def sinks(policy_dir: Path, configured: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sinks]:
    (policy_dir / "mesa.yaml").write_text(POLICY)
    monkeypatch.setenv("ESCALERA_DEFAULT_POLICY", "mesa")
    settings.cache_clear()
    runtime.cache_clear()
    made = Sinks(["guardia", "equipo"])
    yield made
    made.close()


def opened(desk: Desk, at: str, which: Ticket) -> None:
    desk.ticket = which
    desk.event(at, "created", priority=which.priority, customer="acme")


def beat_minute(desk: Desk, at: str) -> list[Received]:
    """Beat's minute at ``at``: reconcile, then the held notifications due are released (the
    release task runs twice); what reached the sinks."""
    desk.reconcile(at)
    with desk.rt.sessions() as session:
        ids = due_held(session, desk.now)
    got: list[Received] = []
    for _ in range(2):
        with desk.rt.sessions.begin() as session:
            release_held(session, desk.deliverer, ids, desk.now)
        got += desk.sinks.new_messages(desk.now)
    desk.received += got
    return got


def restart_after_redis_flush(desk: Desk, prefix: str) -> Desk:
    """Redis loses every key of this deployment and the worker starts again."""
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    assert keys, "the timers were in Redis"
    client.delete(*keys)
    desk.rt.engine.dispose()
    runtime.cache_clear()
    return Desk(desk.sinks, "Europe/Madrid", desk.ticket)


def statuses(desk: Desk) -> dict[tuple[str, str], str]:
    """(ticket, checkpoint) -> its notification's status."""
    with desk.rt.sessions() as session:
        rows = session.execute(
            select(TicketRow.ticket_id, Checkpoint.key, Notification.status)
            .join(Checkpoint, Checkpoint.id == Notification.checkpoint_id)
            .join(TicketRow, TicketRow.id == Checkpoint.ticket_pk)
        )
        return {(t, k): s for t, k, s in rows}


def test_a_p4_waits_for_the_morning_as_one_digest_while_a_p1_pages_at_once(
    sinks: Sinks, redis_prefix: str
) -> None:
    """P1 pages go out when they fall due; P4 notifications of the night are held in the
    database through a Redis flush and a restart, and reach their channel at 09:00 as one
    digest, without the ticket answered in the night."""
    desk = Desk(sinks, "Europe/Madrid", ticket("Q-4", "P4"))
    opened(desk, "2026-03-03 22:00", ticket("Q-4", "P4"))
    opened(desk, "2026-03-03 22:10", ticket("Q-5", "P4"))
    opened(desk, "2026-03-03 23:00", ticket("Q-1", "P1"))
    desk.run_until(desk.local("2026-03-04 00:30"))

    pages = [(m.at.astimezone(desk.zone).strftime("%H:%M"), m.title) for m in desk.received]
    assert pages == [
        ("23:30", "[P1] api/Q-1: 50% of the first response time used"),
        ("00:00", "[P1] api/Q-1: first response breached"),
    ]
    sent, held = NotificationState.SENT.value, NotificationState.HELD.value
    assert statuses(desk) == {
        ("Q-1", "first_response:warning:50"): sent,
        ("Q-1", "first_response:breach"): sent,
        ("Q-4", "first_response:warning:50"): held,
        ("Q-5", "first_response:warning:50"): held,
    }

    desk = restart_after_redis_flush(desk, redis_prefix)
    desk.reconcile("2026-03-04 00:31")  # the breaches are armed again from the database
    desk.run_until(desk.local("2026-03-04 02:59"))
    assert len(desk.received) == 0  # the new worker's: nothing more was sent in the night
    assert set(statuses(desk).values()) == {sent, held}
    assert statuses(desk)[("Q-4", "first_response:breach")] == held

    desk.ticket = ticket("Q-5", "P4")
    desk.event("2026-03-04 07:00", "agent_replied")
    assert beat_minute(desk, "2026-03-04 08:59") == []  # still closed

    (digest,) = beat_minute(desk, "2026-03-04 09:00")
    assert (digest.channel, digest.at) == ("equipo", desk.local("2026-03-04 09:00"))
    assert digest.title == "Quiet hours over: 2 SLA alerts held (P4 ×2)"
    assert digest.key.startswith("digest:equipo:")
    lines = [line for line in digest.body.splitlines() if line.startswith("- ")]
    assert [line.split(" · ")[0] for line in lines] == [
        "- [P4] api/Q-4: 50% of the first response time used",
        "- [P4] api/Q-4: first response breached",
    ]
    assert "Q-5" not in digest.body
    after = statuses(desk)
    assert after[("Q-4", "first_response:breach")] == NotificationState.SENT.value
    assert after[("Q-5", "first_response:breach")] == NotificationState.SKIPPED.value
    assert beat_minute(desk, "2026-03-04 09:01") == []  # released once
