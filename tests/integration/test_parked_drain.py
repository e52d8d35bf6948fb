"""Pages parked on one target cost the fire pool one task when the park ends, not one each.

In the hanging-pager soak the retries of every page parked on the pager fell due together at
the park's end, each fire task's as a delivery task of its own, and the other channels' firing
stalled 15-25 s behind them. Now a page whose every failed target is parked waits in that
target's waiting set (`worker.notify.breaker_waiting`), and one drain task tries the target when
the park ends: answered, the pages go out in batches (a digest here); not, their tries are
counted as before and they wait for the next park's end, or tell their fallback.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from shared.config import settings
from shared.db.models import Notification
from shared.redis_keys import breaker_key, drain_key, waiting_key
from tests.integration.breach import START, add_routes
from tests.integration.services import apply_now
from tests.integration.sinks import HangingSink, JsonSink
from tests.integration.test_channel_breaker import FALLING_BACK
from tests.support import event
from worker import tasks
from worker.notify.breaker import Tripped, open_for_s
from worker.runtime import runtime

PAGES = 12  # more than a storm's threshold (10): what waits goes out as a digest


class Queued(list[tuple[str, dict[str, Any]]]):
    """Tasks queued (name, its options), kept instead of run; the parked pages' backstops
    (`tasks.rescue_parked_task`, one per task that parked pages) kept apart in ``rescues``."""

    rescues: list[dict[str, Any]]


def _queue(monkeypatch: pytest.MonkeyPatch) -> Queued:
    queued = Queued()
    queued.rescues = []
    for task, name in (
        (tasks.deliver_notifications_task, tasks.DELIVER_NOTIFICATIONS),
        (tasks.drain_parked_task, tasks.DRAIN_PARKED),
    ):
        monkeypatch.setattr(task, "apply_async", lambda *a, _n=name, **k: queued.append((_n, k)))
    monkeypatch.setattr(
        tasks.rescue_parked_task, "apply_async", lambda *a, **k: queued.rescues.append(k)
    )
    return queued


@pytest.fixture
def wired(
    policy_dir: Path, configured: None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[JsonSink, JsonSink, Queued]]:
    """The phone (answering), the chat and `leads`; the tasks queued, not run."""
    add_routes(policy_dir, FALLING_BACK)
    phone, chat, leads = JsonSink(), JsonSink(), JsonSink()
    monkeypatch.setenv("ESCALERA_CHANNEL_ONCALL_PHONE", phone.url("phone"))
    monkeypatch.setenv("ESCALERA_CHANNEL_SUPPORT_CHAT", chat.url("chat"))
    monkeypatch.setenv("ESCALERA_CHANNEL_LEADS", leads.url("leads"))
    queued = _queue(monkeypatch)
    settings.cache_clear()
    runtime.cache_clear()
    yield phone, leads, queued
    for sink in (phone, chat, leads):
        sink.close()


def _hanging_phone(monkeypatch: pytest.MonkeyPatch) -> HangingSink:
    """The phone becomes a sink that takes each request and never answers (read time-out
    cut to 1.2 s)."""
    phone = HangingSink()
    monkeypatch.setenv("ESCALERA_CHANNEL_ONCALL_PHONE", phone.url("phone", read_timeout_s=1.2))
    settings.cache_clear()
    runtime.cache_clear()
    return phone


def _set_phone(until: float, trips: int) -> None:
    rt = runtime()
    rt.redis.set(
        breaker_key(rt.settings.redis_prefix, "oncall_phone", 0), Tripped(until, trips).encode()
    )


def _fire_pages(count: int) -> None:
    """``count`` P1 tickets breached, each fired by a fire task of its own (as beat's ticks
    claim them one by one): each pages the phone and the chat."""
    for n in range(count):
        apply_now(event("created", START, f"P-{n}", priority="P1"))
        ids = runtime().timers.claim(START + timedelta(minutes=30))
        assert tasks.fire_checkpoints_task.run(ids) == 3


def _waiting() -> list[int]:
    rt = runtime()
    key = waiting_key(rt.settings.redis_prefix, "oncall_phone", 0)
    return [int(m) for m in rt.redis.zrange(key, 0, -1)]


def _park_ends() -> None:
    """The phone's park is over, and the waiting pages' tries are due."""
    rt = runtime()
    now = time.time()
    _set_phone(now - 1, trips=1)
    key = waiting_key(rt.settings.redis_prefix, "oncall_phone", 0)
    rt.redis.zadd(key, {str(nid): now - 1 for nid in _waiting()})


def _phone_pages() -> list[Notification]:
    with runtime().sessions() as s:
        return list(
            s.scalars(
                select(Notification)
                .where(Notification.channel == "oncall_phone")
                .order_by(Notification.id)
            )
        )


def test_pages_parked_on_the_phone_wait_for_one_task_which_sends_them_when_it_answers(
    wired: tuple[JsonSink, JsonSink, Queued],
) -> None:
    """Twelve fire tasks each park a page on the phone (parked 10 s): one drain task is
    queued for the park's end, none for each page. When it runs, one page tries the phone,
    it answers, and the other eleven go out in one digest: two requests, no task more."""
    phone, _leads, queued = wired
    _set_phone(time.time() + open_for_s(1), trips=1)
    _fire_pages(PAGES)
    assert phone.received == []
    assert [name for name, _ in queued] == [tasks.DRAIN_PARKED], "a task per parked page"
    ((_, drain),) = queued
    assert 5 <= drain["countdown"] <= 11  # the park's end, measured at the fire task's start
    assert sorted(_waiting()) == [p.id for p in _phone_pages()]

    _park_ends()
    assert tasks.drain_parked_task.run(*drain["args"]) == PAGES
    assert len(phone.received) == 2  # the probe, then a digest of the other eleven
    assert [p.status for p in _phone_pages()] == ["sent"] * PAGES
    assert len(queued) == 1 and _waiting() == []
    # each fire task's backstop, when it falls due, finds its page sent: nothing more is sent
    assert len(queued.rescues) == PAGES
    assert all(rescue["countdown"] >= tasks.RESCUE_AFTER_S for rescue in queued.rescues)
    assert sum(tasks.rescue_parked_task.run(*rescue["args"]) for rescue in queued.rescues) == 0
    assert len(phone.received) == 2


def test_pages_parked_on_the_phone_are_delivered_after_a_redis_flush(
    wired: tuple[JsonSink, JsonSink, Queued],
) -> None:
    """Redis is flushed (or fails over to a replica behind) while pages wait for the parked
    phone: the waiting set, the phone's park and the drain's marker are gone, and the drain
    task, still queued in a worker's memory, finds nobody waiting. Each fire task's backstop
    then finds its page still retrying, tried by nobody since, and delivers it: the phone gets
    every page, none stays `retrying` for good."""
    phone, _leads, queued = wired
    _set_phone(time.time() + open_for_s(1), trips=1)
    _fire_pages(3)
    rt = runtime()
    prefix = rt.settings.redis_prefix
    rt.redis.delete(
        waiting_key(prefix, "oncall_phone", 0),
        breaker_key(prefix, "oncall_phone", 0),
        drain_key(prefix, "oncall_phone", 0),
    )
    ((_, drain),) = queued
    assert tasks.drain_parked_task.run(*drain["args"]) == 0  # nobody waits, as far as it knows
    assert sum(tasks.rescue_parked_task.run(*rescue["args"]) for rescue in queued.rescues) == 3
    delivers = [k for name, k in queued if name == tasks.DELIVER_NOTIFICATIONS]
    for deliver in delivers:
        tasks.deliver_notifications_task.run(*deliver["args"])
    assert [p.status for p in _phone_pages()] == ["sent"] * 3
    assert len(phone.received) == 3


def test_a_probe_that_finds_the_phone_still_hanging_keeps_the_pages_parked_in_one_task(
    wired: tuple[JsonSink, JsonSink, Queued],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At the park's end the drain's probe times out (the phone hangs): the phone is parked
    20 s, the other pages are not sent to it, their due tries are counted (no request, no task
    each), and one drain is queued for the new park's end; those out of attempts tell `leads`
    from this very task."""
    _answering, leads, queued = wired
    phone = _hanging_phone(monkeypatch)
    try:
        _set_phone(time.time() + open_for_s(1), trips=1)
        _fire_pages(PAGES)
        before = {p.id: p.attempts for p in _phone_pages()}
        ((_, drain),) = queued
        _park_ends()
        tasks.drain_parked_task.run(*drain["args"])
        assert phone.requests == 1, "more than one page tried the hanging phone"
        pages = _phone_pages()
        assert all(p.attempts > before[p.id] for p in pages), "a due try was not counted"
        dead = [p for p in pages if p.status == "dead"]
        assert sorted(_waiting()) == [p.id for p in pages if p.status == "retrying"]
        assert len(leads.received) == (1 if len(dead) > 1 else len(dead))  # a digest, if many
        later = [(name, k) for name, k in queued[1:]]
        assert [name for name, _ in later] == ([tasks.DRAIN_PARKED] if _waiting() else [])
        if later:
            assert later[0][1]["countdown"] >= open_for_s(2) - 5  # the new park's end
    finally:
        phone.close()


def test_a_drain_lost_with_its_worker_is_queued_again_by_beat_s_minute(
    wired: tuple[JsonSink, JsonSink, Queued],
) -> None:
    """The drain task was lost (its worker killed after queueing it took the marker): once the
    marker has expired and the pages' tries are a minute overdue, beat's reconcile queues
    another drain, which delivers them. The waiting set is only an index: the rows decide."""
    phone, _leads, queued = wired
    _set_phone(time.time() + open_for_s(1), trips=1)
    _fire_pages(2)
    rt = runtime()
    rt.redis.delete(drain_key(rt.settings.redis_prefix, "oncall_phone", 0))  # expired
    tasks.reconcile_timers_task.run()
    assert len(queued) == 1, "a drain queued while the pages' tries are not overdue"
    key = waiting_key(rt.settings.redis_prefix, "oncall_phone", 0)
    rt.redis.zadd(key, {str(nid): time.time() - 120 for nid in _waiting()})
    _set_phone(time.time() - 100, trips=1)
    tasks.reconcile_timers_task.run()
    name, again = queued[-1]
    assert (name, again["countdown"], len(queued)) == (tasks.DRAIN_PARKED, 0, 2)
    assert tasks.drain_parked_task.run(*again["args"]) == 2
    assert len(phone.received) == 2 and _waiting() == []


def test_a_page_due_inside_a_long_park_tells_its_fallback_then_not_at_the_park_s_end(
    wired: tuple[JsonSink, JsonSink, Queued],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The probe fails after five failed probes already: the phone is parked for 5 minutes.
    A page whose try was due 20 s later is not held to the park's end: the next drain comes
    when that try is due, counts it, and the page (no try left outside the park) tells `leads`
    then. Found by the hanging-pager soak: the fallback's p99 went from 42 s to 329 s."""
    _answering, leads, queued = wired
    phone = _hanging_phone(monkeypatch)
    try:
        _set_phone(time.time() + open_for_s(1), trips=1)
        _fire_pages(2)
        ((_, drain),) = queued
        first, second = (p.id for p in _phone_pages())
        rt, now = runtime(), time.time()
        key = waiting_key(rt.settings.redis_prefix, "oncall_phone", 0)
        rt.redis.zadd(key, {str(first): now - 1, str(second): now + 20})
        _set_phone(now - 1, trips=5)  # reopened after five failed probes
        tasks.drain_parked_task.run(*drain["args"])
        assert phone.requests == 1
        assert _waiting() == [second] and len(leads.received) == 1  # the probe's page: dead
        ((_, again),) = [q for q in queued[1:] if q[0] == tasks.DRAIN_PARKED]
        assert again["countdown"] <= 30, "the waiting page was held to the 5 minutes' end"
        monkeypatch.setattr(tasks, "_epoch", lambda: now + again["countdown"])
        tasks.drain_parked_task.run(*again["args"])
        assert phone.requests == 1 and _waiting() == []
        assert [p.status for p in _phone_pages()] == ["dead", "dead"]
        assert len(leads.received) == 2
    finally:
        phone.close()


def test_a_phone_that_refuses_at_once_when_the_park_ends_gets_every_waiting_page_tried_then(
    wired: tuple[JsonSink, JsonSink, Queued],
) -> None:
    """At the park's end the phone answers, but with an error at once (a 500, as a proxy in
    front of a pager that is down answers): it is not parked again, so the pages waiting for
    it are all tried by this drain and go on at their usual backoff, as each page's own retry
    did before the drain. Not one page per probe, five a drain, two seconds apart: the
    hundredth page of a pager that refuses waited 40 s for its try."""
    phone, _leads, queued = wired
    _set_phone(time.time() + open_for_s(1), trips=1)
    _fire_pages(PAGES)
    ((_, drain),) = queued
    before = {p.id: p.attempts for p in _phone_pages()}
    phone.failing = True
    _park_ends()
    tasks.drain_parked_task.run(*drain["args"])
    assert _waiting() == [], "pages left waiting for a phone that answers"
    assert all(p.attempts > before[p.id] for p in _phone_pages()), "a waiting page not tried"
    assert [name for name, _ in queued[1:] if name == tasks.DRAIN_PARKED] == []
