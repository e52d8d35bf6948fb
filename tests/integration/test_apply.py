"""apply_event against real databases (SQLite and PostgreSQL): stored state, idempotence, order."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from shared.config import Settings
from shared.db.engine import make_engine, session_factory
from shared.db.models import Checkpoint, DeadLetter, StoredEvent, Ticket
from shared.events import Event
from tests.support import PRESETS, event
from worker.events.apply import Applied, Outcome, apply_event, apply_events
from worker.policies.book import PolicyBook

MX = ZoneInfo("America/Mexico_City")
START = datetime(2026, 3, 2, 9, 0, tzinfo=MX)
NOW = datetime(2026, 3, 2, 23, 0, tzinfo=MX)


@pytest.fixture(scope="module")
def policies() -> PolicyBook:
    return PolicyBook.from_settings(Settings(policy_dir=PRESETS, default_policy="soporte-completo"))


@pytest.fixture
def sessions(database_url: str) -> sessionmaker[Session]:
    return session_factory(make_engine(database_url))


def apply(
    sessions: sessionmaker[Session], policies: PolicyBook, ev: Event, now: datetime = NOW
) -> Applied:
    with sessions.begin() as session:
        return apply_event(session, policies, ev, now)


def stored_state(sessions: sessionmaker[Session]) -> dict[str, Any]:
    """Everything a user could observe in the database, in a comparable form."""
    with sessions() as s:
        tickets = sorted(
            (t.source, t.ticket_id, t.plan, t.priority, t.status, t.waiting, t.created_at)
            for t in s.scalars(select(Ticket))
        )
        checkpoints = sorted(
            (t.ticket_id, c.key, c.due_at, c.state)
            for c, t in s.execute(
                select(Checkpoint, Ticket).join(Ticket, Checkpoint.ticket_pk == Ticket.id)
            )
        )
        events = sorted((e.source, e.event_id) for e in s.scalars(select(StoredEvent)))
        dead = sorted((d.source, d.event_id) for d in s.scalars(select(DeadLetter)))
    return {"tickets": tickets, "checkpoints": checkpoints, "events": events, "dead": dead}


def lifecycle(ticket: str, offset_min: int = 0) -> list[Event]:
    t0 = START + timedelta(minutes=offset_min)
    return [
        event("created", t0, ticket, priority="Crítico", customer="acme"),
        event("agent_replied", t0 + timedelta(minutes=20), ticket),
        event("status_changed", t0 + timedelta(hours=1), ticket, status="pending"),
        event("status_changed", t0 + timedelta(hours=2), ticket, status="open"),
        event("agent_replied", t0 + timedelta(hours=3), ticket),
        event("priority_changed", t0 + timedelta(hours=4), ticket, priority="Alto"),
        event("agent_replied", t0 + timedelta(hours=5), ticket, public=False),
    ]


def test_applied_event_stores_ticket_and_arms_its_checkpoints(
    sessions: sessionmaker[Session], policies: PolicyBook
) -> None:
    """A created event stores the ticket with plan, priority and armed first-response checkpoints."""
    result = apply(
        sessions, policies, event("created", START, "T-1", priority="critico"), now=START
    )
    assert result.outcome is Outcome.APPLIED
    assert {c.key for c in result.changes.added} == {
        "first_response:warning:75",
        "first_response:warning:90",
        "first_response:breach",
    }
    state = stored_state(sessions)
    assert state["tickets"] == [
        ("api", "T-1", "completo", "P1", "new", False, START.astimezone(UTC))
    ]
    assert (
        "T-1",
        "first_response:breach",
        (START + timedelta(minutes=30)).astimezone(UTC),
        "armed",
    ) in state["checkpoints"]


def test_a_reply_cancels_first_response_and_arms_update_and_escalations(
    sessions: sessionmaker[Session], policies: PolicyBook
) -> None:
    """Answering in time cancels the breach and arms the update cadence and tier 2/3."""
    apply(sessions, policies, event("created", START, "T-2", priority="P1"), now=START)
    result = apply(
        sessions,
        policies,
        event("agent_replied", START + timedelta(minutes=10), "T-2"),
        now=START + timedelta(minutes=10),
    )
    assert {c.key for c in result.changes.cancelled} == {
        "first_response:warning:75",
        "first_response:warning:90",
        "first_response:breach",
    }
    assert {c.key for c in result.changes.added} >= {
        "update#1:breach",
        "escalation:tier2",
        "escalation:tier3",
    }


def test_a_duplicate_event_changes_nothing(
    sessions: sessionmaker[Session], policies: PolicyBook
) -> None:
    """The same (source, event_id) delivered twice is applied once."""
    created = event("created", START, "T-3", priority="P2")
    assert apply(sessions, policies, created).outcome is Outcome.APPLIED
    before = stored_state(sessions)
    assert apply(sessions, policies, created).outcome is Outcome.DUPLICATE
    assert stored_state(sessions) == before


def test_events_before_created_wait_and_apply_when_it_arrives(
    sessions: sessionmaker[Session], policies: PolicyBook
) -> None:
    """A reply that overtakes its ticket's created event is kept, then counted."""
    reply = event("agent_replied", START + timedelta(minutes=5), "T-4")
    assert apply(sessions, policies, reply).outcome is Outcome.WAITING
    assert (
        apply(sessions, policies, event("created", START, "T-4", priority="P1")).outcome
        is Outcome.APPLIED
    )
    with sessions() as s:
        sla = s.scalars(select(Ticket.sla).where(Ticket.ticket_id == "T-4")).one()
    assert sla is not None
    assert sla["metrics"]["first_response"]["state"] == "met"


def test_a_poison_event_is_dead_lettered_and_blocks_nothing(
    sessions: sessionmaker[Session], policies: PolicyBook
) -> None:
    """An unknown priority goes to the dead letters with the reason; the ticket's other events apply."""
    apply(sessions, policies, event("created", START, "T-5", priority="P1"))
    bad = apply(
        sessions,
        policies,
        event("priority_changed", START + timedelta(minutes=1), "T-5", priority="Gravísimo"),
    )
    assert bad.outcome is Outcome.DEAD_LETTERED
    assert bad.error is not None and "unknown priority 'Gravísimo'" in bad.error
    assert (
        apply(
            sessions, policies, event("agent_replied", START + timedelta(minutes=2), "T-5")
        ).outcome
        is Outcome.APPLIED
    )
    with sessions() as s:
        dead = s.scalars(select(DeadLetter)).one()
        stored = s.scalars(
            select(StoredEvent.type).join(Ticket).where(Ticket.ticket_id == "T-5")
        ).all()
    assert (dead.ticket_id, dead.payload["priority"]) == ("T-5", "Gravísimo")
    assert sorted(stored) == ["agent_replied", "created"]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_any_order_or_duplication_leaves_the_same_stored_state(
    database_url: str, policies: PolicyBook, seed: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Three tickets' streams, shuffled and partly repeated, store exactly what the ordered stream does."""
    streams = lifecycle("A-1") + lifecycle("A-2", 7) + lifecycle("A-3", 45)
    ordered = session_factory(make_engine(database_url))
    for ev in streams:
        apply(ordered, policies, ev)
    expected = stored_state(ordered)
    _wipe(ordered)
    rng = random.Random(seed)
    scrambled = streams + rng.sample(streams, k=8)
    rng.shuffle(scrambled)
    for ev in scrambled:
        apply(ordered, policies, ev)
    assert stored_state(ordered) == expected


@pytest.mark.parametrize("seed", [4, 5])
def test_batches_of_any_size_store_what_one_by_one_does(
    database_url: str, policies: PolicyBook, seed: int
) -> None:
    """The worker applies whatever the queue holds at once: batching must not change the result."""
    streams = lifecycle("B-1") + lifecycle("B-2", 7) + lifecycle("B-3", 45)
    poison = event("priority_changed", START + timedelta(minutes=3), "B-2", priority="Gravísimo")
    sessions = session_factory(make_engine(database_url))
    for ev in [*streams, poison]:
        apply(sessions, policies, ev)
    expected = stored_state(sessions)
    _wipe(sessions)
    rng = random.Random(seed)
    scrambled = [*streams, poison, *rng.sample(streams, k=10)]
    rng.shuffle(scrambled)
    outcomes: list[Outcome] = []
    while scrambled:
        size = rng.randint(1, 12)
        batch, scrambled = scrambled[:size], scrambled[size:]
        with sessions.begin() as session:
            results = apply_events(session, policies, batch, NOW)
        assert [r.event_id for r in results] == [e.event_id for e in batch]
        outcomes += [r.outcome for r in results]
    assert stored_state(sessions) == expected
    assert outcomes.count(Outcome.DEAD_LETTERED) == 1
    assert outcomes.count(Outcome.DUPLICATE) == 10


def test_a_batch_holding_a_ticket_twice_evaluates_it_once_with_every_event(
    sessions: sessionmaker[Session], policies: PolicyBook
) -> None:
    """Created and the first reply in one batch: the first response is met, nothing left armed."""
    created = event("created", START, "B-4", priority="P1")
    reply = event("agent_replied", START + timedelta(minutes=10), "B-4")
    with sessions.begin() as session:
        results = apply_events(
            session, policies, [reply, created, reply], START + timedelta(minutes=10)
        )
    assert [r.outcome for r in results] == [Outcome.APPLIED, Outcome.APPLIED, Outcome.DUPLICATE]
    assert not results[0].changes and results[1].changes  # the ticket's changes ride on its last
    keys = {c.key for c in results[1].changes.added}
    assert "first_response:breach" not in keys and "escalation:tier2" in keys
    with sessions() as s:
        sla = s.scalars(select(Ticket.sla).where(Ticket.ticket_id == "B-4")).one()
    assert sla is not None and sla["metrics"]["first_response"]["state"] == "met"


def _wipe(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        for model in (Checkpoint, StoredEvent, DeadLetter, Ticket):
            s.query(model).delete()
