"""The worker's applier: events on the queue reach the database once, whatever fails meanwhile."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from celery import Celery
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from shared.celery_app import queue_key
from shared.config import settings
from shared.db.models import Checkpoint, DeadLetter, StoredEvent
from shared.events import Event
from tests.support import event
from worker.api.publisher import QueuePublisher
from worker.events import applier as applier_module
from worker.events.applier import Applier, make_applier
from worker.events.apply import Applied, apply_events, dead_letter
from worker.policies.book import PolicyBook
from worker.runtime import runtime

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
CREATED = event("created", START, "K-1", priority="P1")
REPLY = event("agent_replied", START + timedelta(minutes=10), "K-1")


def _messages(*events: Event) -> list[str]:
    """The queue messages the ingest service writes for these events."""
    from shared.celery_app import app  # noqa: PLC0415 - the process's app, after `configured`

    publisher = QueuePublisher(app, None, settings().events_queue)  # type: ignore[arg-type]
    return publisher.messages(events)


def _enqueue(*events: Event) -> None:
    rt = runtime()
    rt.redis.lpush(queue_key(rt.settings, rt.settings.events_queue), *_messages(*events))


def _drain(applier: Applier) -> None:
    """One round as the worker does it: take what is queued, apply, acknowledge."""
    batch = applier.queue.take(applier.batch, block_s=0)
    assert applier.apply(batch, threading.Event())
    applier.queue.ack()


def _stored() -> list[str]:
    with runtime().sessions() as s:
        return sorted(s.scalars(select(StoredEvent.event_id)))


def _dead() -> list[tuple[str, str]]:
    with runtime().sessions() as s:
        return [
            (d.event_id, d.error) for d in s.scalars(select(DeadLetter).order_by(DeadLetter.id))
        ]


def test_queued_events_are_applied_in_one_round_and_their_timers_armed(configured: None) -> None:
    """Created and its reply are applied together; the timer index holds what is armed."""
    _enqueue(CREATED, REPLY, CREATED)  # the portal retried the created webhook
    applier = make_applier(runtime())
    _drain(applier)
    assert _stored() == sorted([CREATED.event_id, REPLY.event_id])
    with runtime().sessions() as s:
        armed = s.scalars(select(Checkpoint.key).where(Checkpoint.state == "armed")).all()
    assert "first_response:breach" not in armed and "escalation:tier2" in armed
    assert runtime().timers.count() == (len(armed), 0)
    assert applier.queue.depth() == 0 and applier.queue.in_hand() == []


def test_a_bug_dead_letters_only_the_event_that_hits_it(
    configured: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch that raises is applied event by event: the failing one is kept with the error."""
    other = event("created", START, "K-2", priority="P2")

    def buggy(
        session: Session, policies: PolicyBook, events: Sequence[Event], now: datetime
    ) -> list[Applied]:
        if any(e.ticket_id == "K-2" for e in events):
            raise ZeroDivisionError("a bug")
        return apply_events(session, policies, events, now)

    monkeypatch.setattr(applier_module, "apply_events", buggy)
    _enqueue(CREATED, other, REPLY)
    _drain(make_applier(runtime()))
    assert _stored() == sorted([CREATED.event_id, REPLY.event_id])
    assert _dead() == [(other.event_id, "ZeroDivisionError: a bug")]


def test_a_database_outage_is_waited_out_not_dead_lettered(
    configured: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database refuses twice; the batch stays in hand and is applied on the third try."""
    refusals = iter([True, True])

    def flaky(
        session: Session, policies: PolicyBook, events: Sequence[Event], now: datetime
    ) -> list[Applied]:
        if next(refusals, False):
            raise OperationalError("SELECT 1", {}, Exception("connection refused"))
        return apply_events(session, policies, events, now)

    monkeypatch.setattr(applier_module, "apply_events", flaky)
    _enqueue(CREATED)
    applier = make_applier(runtime())
    applier.retry_first_s = 0
    _drain(applier)
    assert _stored() == [CREATED.event_id]
    assert _dead() == []


def test_stopping_during_an_outage_hands_the_batch_back(
    configured: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker stopped while the database is down puts its events back on the queue."""

    def down(*_args: object) -> list[Applied]:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(applier_module, "apply_events", down)
    _enqueue(CREATED, REPLY)
    applier = make_applier(runtime())
    applier.queue.join()
    stop = threading.Event()
    stop.set()
    assert not applier.apply(applier.queue.take(10, block_s=0), stop)
    applier.queue.leave()
    assert applier.queue.depth() == 2 and _stored() == []


def test_a_dead_workers_batch_is_applied_by_another_once(configured: None) -> None:
    """kill -9 after taking a batch: when its heartbeat lapses, another worker applies it."""
    _enqueue(CREATED, REPLY)
    dead, alive = make_applier(runtime()), make_applier(runtime())
    dead.queue.join()
    assert len(dead.queue.take(10, block_s=0)) == 2  # ... and the process is killed here
    alive.queue.join()
    assert alive.queue.reap() == 0  # its heartbeat has not lapsed yet: nothing is taken from it
    runtime().redis.delete(dead.queue.keys.alive())  # the heartbeat lapses
    assert alive.queue.reap() == 2
    _drain(alive)
    assert _stored() == sorted([CREATED.event_id, REPLY.event_id])
    assert alive.queue.reap() == 0
    dead.queue.take(10, block_s=0)  # it was only slow: taking again registers it again
    assert dead.queue.keys.consumer.encode() in runtime().redis.smembers(dead.queue.keys.registry)


def test_an_unreadable_message_is_dead_lettered_and_other_tasks_are_passed_on(
    configured: None,
) -> None:
    """Nothing on the queue is dropped: junk is kept for an operator, other tasks forwarded."""
    rt = runtime()
    celery = Celery("other", broker="memory://")
    stray = QueuePublisher(celery, None, "events")  # type: ignore[arg-type]
    message = stray.messages([CREATED])[0].replace("escalera.apply_event", "escalera.reconcile")
    rt.redis.lpush(queue_key(rt.settings, rt.settings.events_queue), b"{not json", message)
    _drain(make_applier(rt))
    assert [error.split(":")[0] for _id, error in _dead()] == ["unreadable queue message"]
    assert rt.redis.lrange(queue_key(rt.settings, rt.settings.fire_queue), 0, -1) == [
        message.encode()
    ]


def _unchecked(kind: str, ticket: str, **fields: object) -> Event:
    """An event as an older ingest (or a future bug) might have queued it: not validated."""
    valid = event(kind, START, "placeholder", **fields)
    return Event.model_construct(**{**valid.__dict__, "ticket_id": ticket})


def test_a_queued_event_with_a_nul_is_dead_lettered_with_its_message(configured: None) -> None:
    """A NUL in a ticket id, queued before ingest refused them (PostgreSQL text cannot hold
    it): the event is dead-lettered with the queue message's bytes, and the valid events around
    it are applied (issue 13, item 1: it was in neither table)."""
    poisoned = _unchecked("created", "N\x00X", priority="P1")
    other = event("created", START, "K-2", priority="P2")
    messages = _messages(CREATED, poisoned, other)
    rt = runtime()
    rt.redis.lpush(queue_key(rt.settings, rt.settings.events_queue), *messages)
    applier = make_applier(rt)
    _drain(applier)
    assert applier.queue.in_hand() == [] and applier.queue.depth() == 0
    assert _stored() == sorted([CREATED.event_id, other.event_id])
    with runtime().sessions() as s:
        dead = s.scalars(select(DeadLetter)).one()
    assert "control character U+0000" in dead.error
    assert dead.raw == messages[1].encode()  # the message as it was queued, byte for byte


def test_a_dead_letter_can_be_written_whatever_its_event_holds(configured: None) -> None:
    """The last resort cannot fail on content: a NUL, a lone surrogate, ids past the columns'
    lengths are stored as U+FFFD and cut; the raw message is kept as it came."""
    odd = _unchecked("created", "N\x00X" + "\ud800" + "t" * 300, priority="P1")
    with runtime().sessions.begin() as session:
        dead_letter(session, odd, "error with a \x00 in it", raw=b"\x00raw")
    with runtime().sessions() as s:
        dead = s.scalars(select(DeadLetter)).one()
    assert dead.ticket_id == ("N\ufffdX\ufffd" + "t" * 300)[:256]
    assert dead.error == "error with a \ufffd in it" and dead.raw == b"\x00raw"


def test_a_restarted_applier_applies_the_batch_it_had_in_hand(configured: None) -> None:
    """A crash between taking a batch and acknowledging it: the restarted applier applies that
    batch again before taking more; it never acknowledges events it has not stored."""
    later = event("created", START, "K-3", priority="P3")
    _enqueue(CREATED, REPLY)
    applier = make_applier(runtime())
    applier.queue.join()
    assert len(applier.queue.take(10, block_s=0)) == 2  # ... and the applier thread crashes here
    _enqueue(later)
    stop = threading.Event()
    acknowledge = applier.queue.ack

    def ack_once() -> None:
        acknowledge()
        stop.set()

    applier.queue.ack = ack_once  # type: ignore[method-assign]
    applier.run(stop)  # the worker's bootstep runs it again after a crash
    assert _stored() == sorted([CREATED.event_id, REPLY.event_id])
    assert applier.queue.depth() == 1  # the later event waits for the next round


class _Arrivals(threading.Event):
    """A stop signal whose waits stand in for time passing: each wait lets the next of
    ``arrivals`` reach the queue (as a portal's next webhook would), and is recorded."""

    def __init__(self, *arrivals: Event) -> None:
        super().__init__()
        self.arrivals, self.waits = list(arrivals), []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        if self.arrivals:
            _enqueue(self.arrivals.pop(0))
        return self.is_set()


def _one_round(applier: Applier, stop: threading.Event) -> None:
    """Run the applier until it acknowledges its first batch."""
    acknowledge = applier.queue.ack

    def ack_once() -> None:
        acknowledge()
        stop.set()

    applier.queue.ack = ack_once  # type: ignore[method-assign]
    applier.run(stop)


def test_events_arriving_while_a_small_batch_lingers_are_applied_with_it(
    configured: None,
) -> None:
    """A desk's trickle: the created webhook is taken, and the reply and another ticket that
    arrive within the linger are applied in the same transaction, not one each."""
    later = event("created", START, "K-3", priority="P3")
    _enqueue(CREATED)
    applier = make_applier(runtime())
    assert applier.linger_s == settings().apply_linger_ms / 1000 > 0
    stop = _Arrivals(REPLY, later)
    _one_round(applier, stop)
    assert _stored() == sorted([CREATED.event_id, REPLY.event_id, later.event_id])
    assert applier.queue.depth() == 0 and applier.queue.in_hand() == []
    assert sum(w or 0 for w in stop.waits) == pytest.approx(applier.linger_s)  # not longer


def test_a_full_batch_or_no_linger_is_applied_without_waiting(configured: None) -> None:
    """A backlog fills the batch at once, and ESCALERA_APPLY_LINGER_MS=0 applies a lone event
    at once: neither waits for more."""
    later = event("created", START, "K-3", priority="P3")
    _enqueue(CREATED, REPLY, later)
    full = make_applier(runtime(), batch=2)
    stop = _Arrivals()
    _one_round(full, stop)
    assert stop.waits == [] and len(_stored()) == 2 and full.queue.depth() == 1
    at_once = make_applier(runtime())
    at_once.linger_s = 0.0
    stop = _Arrivals()
    _one_round(at_once, stop)
    assert stop.waits == [] and len(_stored()) == 3
