"""A channel target that stops answering is parked, not waited on: one time-out, then the
other pages go out at once, and its own run through their attempts without waiting on it
(`worker.notify.breaker`).

Through the deliverer with a clock of our own (the open periods, the probe, the fallback), and
through the fire task against a webhook that takes the request and never answers, its read
time-out cut to 1.2 s (Apprise's ``rto``; 4 s by default)."""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import select

from shared.config import settings
from shared.db.models import Notification
from shared.redis_keys import breaker_key, probe_key, waiting_key
from tests.integration.breach import START, add_routes, fire_breach
from tests.integration.services import apply_now
from tests.integration.sinks import HangingSink, JsonSink
from tests.integration.test_hanging_channel import ROUTES as HANGING_ROUTES
from tests.support import event
from tests.unit.test_notify_retry import Extreme
from worker import tasks
from worker.notify import transport
from worker.notify.breaker import Tripped, open_for_s
from worker.notify.breaker_store import RedisBreakers
from worker.notify.deliver import Deliverer
from worker.notify.messages import Message
from worker.notify.outcome import Delivery, Outcome
from worker.notify.retry import PARK_MARGIN_S, Retry
from worker.notify.transport import DEDUPE_HEADER
from worker.runtime import runtime

ROUTES = """
channels:
  oncall: {}
  leads: {}
routes:
  - {name: p1-page, when: {priorities: [P1], kinds: [breach]}, channels: [oncall], attempts: 4, fallback: leads}
"""
BREACH = START + timedelta(minutes=31)


class Clock:
    """The monotonic clock the deliverer times its sends with: a send moves it on."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Phone:
    """A paging bridge that, while down, keeps each request for its whole 4 s time-out."""

    def __init__(self, clock: Clock) -> None:
        self.clock, self.down, self.calls = clock, True, 0

    def send(self, urls: Sequence[str], message: Message, dedupe_key: str) -> list[str | None]:
        self.calls += 1
        if self.down:
            self.clock.now += 4.0
            return ["json: timed out" for _ in urls]
        self.clock.now += 0.05
        return [None for _ in urls]


@pytest.fixture
def pages(policy_dir: Path, configured: None) -> list[int]:
    """Three P1 tickets breached at `BREACH`, each with its pending page to `oncall`."""
    add_routes(policy_dir, ROUTES)
    for ticket in ("B-1", "B-2", "B-3"):
        fire_breach(ticket)
    with runtime().sessions() as s:
        return list(
            s.scalars(
                select(Notification.id)
                .where(Notification.channel == "oncall")
                .order_by(Notification.id)
            )
        )


def deliverer(phone: Phone, clock: Clock, rng: random.Random | None = None) -> Deliverer:
    rt = runtime()
    return Deliverer(
        rt.policies,
        phone,
        {"ESCALERA_CHANNEL_ONCALL": "json://127.0.0.1:9/phone"},
        rng or Extreme(high=True),  # backoffs of 3, 6, 12 s
        breakers=RedisBreakers(rt.redis, rt.settings.redis_prefix),
        timer=clock,
    )


def deliver(d: Deliverer, notification_id: int, after_s: float) -> Outcome:
    with runtime().sessions.begin() as session:
        return d.deliver(session, notification_id, BREACH + timedelta(seconds=after_s))


def attempts(ids: Sequence[int]) -> list[int]:
    with runtime().sessions() as s:
        tried = {nid: n for nid, n in s.execute(select(Notification.id, Notification.attempts))}
    return [tried[nid] for nid in ids]


def test_one_time_out_parks_the_target_and_the_next_pages_do_not_wait(pages: list[int]) -> None:
    """The first page waits out the phone's 4 s time-out; the next two, within the 10 s the
    phone is parked, are not sent at all (no time lost). A page's tries that would fall inside
    the park could only find it parked: they are counted now, and its next try is queued for
    the first that falls after it, when it would have been made (no task only to find it
    parked)."""
    clock = Clock()
    phone = Phone(clock)
    d = deliverer(phone, clock)
    first = deliver(d, pages[0], 0)
    assert (first.delivery, phone.calls, clock.now) == (Delivery.RETRY, 1, 4.0)

    second, third = deliver(d, pages[1], 1), deliver(d, pages[2], 9)
    assert phone.calls == 1 and clock.now == 4.0, "a parked target was called"
    assert second.error == "json: not answering, not tried"
    # parked until 10 s: the tries at 0 + 3 and 1 + 3 s are counted, the next ones are at
    # 0 + 3 + 6 and 1 + 3 + 6 s; the third page, 1 s before the end, tries again 3 s later
    assert [o.decision for o in (first, second, third)] == [
        Retry(9.0, skipped=1),
        Retry(9.0, skipped=1),
        Retry(3.0),
    ]
    assert attempts(pages) == [2, 2, 1]


def test_once_reopened_one_page_probes_it_and_an_answer_closes_it(pages: list[int]) -> None:
    """10 s on, one page tries the phone again: still down, it stays parked twice as long;
    up, the page is sent and so are the next ones, at once."""
    clock = Clock()
    phone = Phone(clock)
    d = deliverer(phone, clock)
    deliver(d, pages[0], 0)  # trips it for 10 s
    probe = deliver(d, pages[1], 11)  # the probe: times out again, parked for 20 s
    assert (probe.delivery, phone.calls) == (Delivery.RETRY, 2)
    assert probe.decision == Retry(21.0, skipped=2)  # at 11 + 3 and + 9 s parked; + 21: not
    assert deliver(d, pages[2], 30).delivery is Delivery.RETRY and phone.calls == 2  # parked
    phone.down = False
    assert deliver(d, pages[0], 32).delivery is Delivery.SENT  # the next probe: it answers
    assert deliver(d, pages[1], 33).delivery is Delivery.SENT  # closed: sent at once
    assert phone.calls == 4


def test_a_page_that_finds_another_send_probing_the_phone_tries_again_at_its_backoff(
    pages: list[int],
) -> None:
    """The park over and another send probing the phone: this page does not call it, and
    tries again at its usual backoff, nothing counted ahead (the probe may answer any
    moment, and close it)."""
    clock = Clock()
    phone = Phone(clock)
    d = deliverer(phone, clock)
    deliver(d, pages[0], 0)  # trips it for 10 s
    rt = runtime()
    rt.redis.set(probe_key(rt.settings.redis_prefix, "oncall", 0), "1")  # another send's probe
    waiting = deliver(d, pages[1], 11)
    assert phone.calls == 1
    assert (waiting.delivery, waiting.decision) == (Delivery.RETRY, Retry(3.0))
    assert attempts(pages[1:2]) == [1]


def test_a_phone_that_stays_dead_runs_out_of_attempts_and_the_fallback_is_told(
    pages: list[int],
) -> None:
    """Parked tries count. A page (4 attempts, backoffs of 1, 2 and 4 s) that tripped the
    phone for 10 s: its tries at 1 and 3 s are counted now, the one at 7 s is made (its
    countdown starts only after the 4 s the send took: at 11 s, after the park); it finds the
    phone still not answering, its last attempt, and `leads` gets it. That probe parks the
    phone for 20 s, the next for 40 s: a page whose tries left (3, 9 and 21 s) would all fall
    inside that is dead at once, with one time-out waited for instead of four."""
    clock = Clock()
    phone = Phone(clock)
    d = deliverer(phone, clock, Extreme(high=False))
    assert deliver(d, pages[0], 0).decision == Retry(7.0, skipped=2)
    assert deliver(d, pages[0], 11).delivery is Delivery.DEAD  # the probe, its 4th try
    assert phone.calls == 2
    with runtime().sessions() as s:
        leads = s.scalars(select(Notification).where(Notification.channel == "leads")).one()
    assert leads.status == "pending"

    slow = deliverer(phone, clock)  # backoffs of 3, 6, 12 s
    assert deliver(slow, pages[1], 31).delivery is Delivery.DEAD  # the next probe: 40 s
    assert phone.calls == 3
    assert attempts(pages[:2]) == [4, 1]


@pytest.fixture
def hanging(
    policy_dir: Path, configured: None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[HangingSink, JsonSink, list[dict[str, Any]]]]:
    add_routes(policy_dir, HANGING_ROUTES)
    phone, chat = HangingSink(), JsonSink()
    yield phone, chat, _wire(monkeypatch, phone, chat)
    phone.close()
    chat.close()


def _wire(
    monkeypatch: pytest.MonkeyPatch,
    phone: HangingSink,
    chat: JsonSink,
    leads: JsonSink | None = None,
) -> list[dict[str, Any]]:
    """The phone (its read time-out cut to 1.2 s), the chat and `leads` as the channels; the
    tasks queued, kept in the list returned instead of run."""
    monkeypatch.setenv("ESCALERA_CHANNEL_ONCALL_PHONE", phone.url("phone", read_timeout_s=1.2))
    monkeypatch.setenv("ESCALERA_CHANNEL_SUPPORT_CHAT", chat.url("chat"))
    if leads is not None:
        monkeypatch.setenv("ESCALERA_CHANNEL_LEADS", leads.url("leads"))
    queued: list[dict[str, Any]] = []
    monkeypatch.setattr(
        tasks.deliver_notifications_task,
        "apply_async",
        lambda *a, **k: queued.append({**k, "task": tasks.DELIVER_NOTIFICATIONS}),
    )
    monkeypatch.setattr(
        tasks.drain_parked_task,
        "apply_async",
        lambda *a, **k: queued.append({**k, "task": tasks.DRAIN_PARKED}),
    )
    # the backstop of parked pages (tests/integration/test_parked_drain.py): not run here
    monkeypatch.setattr(tasks.rescue_parked_task, "apply_async", lambda *a, **k: None)
    settings.cache_clear()
    runtime.cache_clear()
    return queued


def test_a_hanging_phone_is_waited_on_once_then_the_fire_task_pages_at_once(
    hanging: tuple[HangingSink, JsonSink, list[dict[str, Any]]],
) -> None:
    """Two P1 breaches, fired one after the other: the first fire task waits out the phone's
    time-out (the chat is told meanwhile); the second does not call the phone at all, tells
    the chat, and leaves the phone's page to its retries."""
    phone, chat, retries = hanging
    for ticket in ("H-1", "H-2"):
        apply_now(event("created", START, ticket, priority="P1"))
        ids = runtime().timers.claim(START + timedelta(minutes=30))
        tasks.fire_checkpoints_task.run(ids)
    assert phone.requests == 1, "the second page waited on the hanging phone again"
    assert len(chat.received) == 2
    # each phone page waits for the phone's park to end; one task tries them then
    assert [(q["task"], q["args"]) for q in retries] == [(tasks.DRAIN_PARKED, ["oncall_phone", 0])]
    assert len(_waiting()) == 2
    with runtime().sessions() as s:
        rows = s.execute(
            select(Notification.channel, Notification.status, Notification.last_error).order_by(
                Notification.id
            )
        ).all()
    phone_rows = [(status, error) for channel, status, error in rows if channel == "oncall_phone"]
    assert phone_rows == [
        ("retrying", "json: failure"),  # its read time-out, as Apprise tells it
        ("retrying", "json: not answering, not tried"),
    ]


def test_a_phone_parked_for_longer_than_a_page_s_retries_tells_the_fallback_at_once(
    pages: list[int],
) -> None:
    """After two failed probes the phone is parked for 40 s, longer than a page's retries
    would take: a page that finds it so goes to `leads` now, not after three more tries."""
    clock = Clock()
    phone = Phone(clock)
    d = deliverer(phone, clock)
    deliver(d, pages[0], 0)  # trips it: 10 s
    assert deliver(d, pages[1], 11).delivery is Delivery.RETRY  # probe fails: parked 20 s
    third = deliver(d, pages[2], 32)  # probe fails again: parked 40 s
    assert third.delivery is Delivery.DEAD and phone.calls == 3
    assert deliver(d, pages[0], 40).delivery is Delivery.DEAD  # parked 32 s more: given up
    with runtime().sessions() as s:
        told = s.scalars(select(Notification.status).where(Notification.channel == "leads"))
        assert list(told) == ["pending", "pending"]


FALLING_BACK = """
channels:
  oncall_phone: {}
  support_chat: {}
  leads: {}
routes:
  - {name: p1-page, when: {priorities: [P1], kinds: [breach]}, channels: [oncall_phone, support_chat], fallback: leads}
catch_up: all
"""


@pytest.fixture
def parked_phone(
    policy_dir: Path, configured: None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[HangingSink, JsonSink, JsonSink, list[dict[str, Any]]]]:
    """A hanging phone already found not answering five times running (parked 160 s, longer
    than a page's retries take), a chat beside it on the page's route, and `leads`, the
    route's fallback; every task queued is kept, not run."""
    add_routes(policy_dir, FALLING_BACK)
    phone, chat, leads = HangingSink(), JsonSink(), JsonSink()
    queued = _wire(monkeypatch, phone, chat, leads)
    _park_phone(trips=5)
    yield phone, chat, leads, queued
    phone.close()
    chat.close()
    leads.close()


def _park_phone(trips: int) -> None:
    """The phone's breaker as after ``trips`` slow failures running, the last one now."""
    rt = runtime()
    parked = Tripped(time.time() + open_for_s(trips), trips)
    rt.redis.set(breaker_key(rt.settings.redis_prefix, "oncall_phone", 0), parked.encode())


def _states() -> dict[str, str]:
    with runtime().sessions() as s:
        return dict(s.execute(select(Notification.channel, Notification.status)).all())


def _fire_p1(ticket: str) -> int:
    """A P1 ticket's two warnings and breach fired by one fire task; how many it fired."""
    apply_now(event("created", START, ticket, priority="P1"))
    ids = runtime().timers.claim(START + timedelta(minutes=30))
    return int(tasks.fire_checkpoints_task.run(ids))


def test_a_page_to_a_parked_phone_reaches_the_fallback_from_the_fire_task_itself(
    parked_phone: tuple[HangingSink, JsonSink, JsonSink, list[dict[str, Any]]],
) -> None:
    """The fire task does not call the parked phone; the chat of the same page is told at
    once, and the page, dead at once, is told to `leads` by the same task: no task is queued
    for it (a hanging pager's fallbacks filled the fire queue the other pages wait on)."""
    phone, chat, leads, queued = parked_phone
    assert _fire_p1("F-1") == 3
    assert phone.requests == 0
    assert (len(chat.received), len(leads.received)) == (1, 1)
    assert queued == [], "a task was queued for the fallback"
    assert _states() == {"oncall_phone": "dead", "support_chat": "sent", "leads": "sent"}
    (told,) = leads.received
    assert told["headers"][DEDUPE_HEADER].endswith(":leads:fallback")


def test_a_fallback_sent_by_the_fire_task_is_not_sent_again(
    parked_phone: tuple[HangingSink, JsonSink, JsonSink, list[dict[str, Any]]],
) -> None:
    """The same batch fired again (a redelivered task) and a delivery of the fallback's row
    (a task queued before this change, still on the queue) send nothing more."""
    _phone, chat, leads, queued = parked_phone
    apply_now(event("created", START, "F-2", priority="P1"))
    ids = runtime().timers.claim(START + timedelta(minutes=30))
    assert tasks.fire_checkpoints_task.run(ids) == 3
    assert tasks.fire_checkpoints_task.run(ids) == 0
    with runtime().sessions() as s:
        fallback = s.scalars(select(Notification.id).where(Notification.channel == "leads")).one()
    tasks.deliver_notifications_task.run([fallback])  # finds it sent
    assert (len(chat.received), len(leads.received), queued) == (1, 1, [])


def test_a_retry_that_finds_the_phone_parked_tells_the_fallback_in_the_same_task(
    parked_phone: tuple[HangingSink, JsonSink, JsonSink, list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A phone page retrying (its first try timed out) whose retry finds the phone parked for
    longer than its other tries would take: dead, and `leads` told by that retry's task (the
    drain of the phone's waiting pages)."""
    phone, _chat, leads, queued = parked_phone
    rt = runtime()
    rt.redis.delete(breaker_key(rt.settings.redis_prefix, "oncall_phone", 0))
    assert _fire_p1("F-3") == 3  # the phone hangs: 1.2 s, parked 10 s, the page retrying
    assert (phone.requests, _states()["oncall_phone"]) == (1, "retrying")
    (drain,) = queued
    assert drain["task"] == tasks.DRAIN_PARKED
    _park_phone(trips=5)  # its probes failed meanwhile
    _later(monkeypatch, drain["countdown"])
    assert tasks.drain_parked_task.run(*drain["args"]) == 1  # the fallback's
    assert (phone.requests, len(leads.received), len(queued)) == (1, 1, 1)
    assert _states()["oncall_phone"] == "dead"
    assert _waiting() == []


def _later(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """The waiting pages' clock (`worker.tasks._epoch`) moved ``seconds`` on."""
    now = time.time()
    monkeypatch.setattr(tasks, "_epoch", lambda: now + seconds)


def _waiting(channel: str = "oncall_phone") -> list[int]:
    """The notifications waiting for the channel's first target to reopen."""
    rt = runtime()
    return [
        int(m) for m in rt.redis.zrange(waiting_key(rt.settings.redis_prefix, channel, 0), 0, -1)
    ]


def test_a_fallback_its_own_channel_refuses_is_retried_as_any_notification(
    parked_phone: tuple[HangingSink, JsonSink, JsonSink, list[dict[str, Any]]],
) -> None:
    """`leads` answering 500: the fallback, tried by the fire task, is queued for its retry
    (one task, at its backoff); the retry sends it, once."""
    _phone, _chat, leads, queued = parked_phone
    leads.failing = True
    assert _fire_p1("F-4") == 3
    (retry,) = queued
    assert 1 <= retry["countdown"] <= 3
    assert _states()["leads"] == "retrying"
    leads.failing = False
    assert tasks.deliver_notifications_task.run(retry["args"][0]) == 1
    assert (len(leads.received), _states()["leads"]) == (1, "sent")


def test_a_page_to_a_phone_parked_briefly_is_queued_once_for_after_the_park(
    parked_phone: tuple[HangingSink, JsonSink, JsonSink, list[dict[str, Any]]],
) -> None:
    """Parked 20 s (two time-outs running) with a 5-attempt page: the fire task sends the
    chat at once and queues the phone's page once, for after the park, its tries inside it
    counted; or, if those were all its tries, tells `leads` at once. No task is queued only
    to find the phone parked (the soak's fire pool spent thousands on them)."""
    phone, chat, leads, queued = parked_phone
    _park_phone(trips=2)
    assert _fire_p1("R-1") == 3
    assert (phone.requests, len(chat.received)) == (0, 1)
    with runtime().sessions() as s:
        page = s.scalars(select(Notification).where(Notification.channel == "oncall_phone")).one()
    if page.status == "dead":
        assert (queued, len(leads.received)) == ([], 1)
    else:
        (drain,) = queued  # the one task that tries the phone's waiting pages
        assert drain["task"] == tasks.DRAIN_PARKED and _waiting() == [page.id]
        # its first try not surely inside the park (measured at the task's start)
        assert drain["countdown"] >= 20 - PARK_MARGIN_S and page.attempts >= 2
        assert len(leads.received) == 0


def test_while_the_fallback_is_sent_an_event_for_the_ticket_waits_for_nothing(
    parked_phone: tuple[HangingSink, JsonSink, JsonSink, list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`leads` is told by the fire task, and whatever that takes (a fallback may hang too),
    the appliers can write meanwhile: on SQLite the database's one write lock is free (the
    dead page is committed before its fallback is sent); on PostgreSQL the ticket's row is
    (a reply to it applies at once). Found by a review: on SQLite the send held the lock."""
    _phone, _chat, leads, _queued = parked_phone
    url = runtime().settings.database_url
    seen: list[str] = []
    real_one = transport.AppriseSender._one

    def meanwhile(self: Any, target: str, message: Any, key: str) -> str | None:
        if "/leads" in target:
            if url.startswith("sqlite"):
                other = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=0)
                try:
                    other.execute("BEGIN IMMEDIATE")  # what any writer (the applier) needs
                    other.execute("ROLLBACK")
                    seen.append("free")
                except sqlite3.OperationalError as exc:
                    seen.append(f"sqlite: {exc}")
                finally:
                    other.close()
            else:
                dsn = url.replace("postgresql+psycopg://", "postgresql://")
                with psycopg.connect(dsn) as other:
                    try:
                        other.execute("SELECT id FROM tickets FOR UPDATE NOWAIT").fetchall()
                        seen.append("free")
                    except psycopg.errors.LockNotAvailable as exc:
                        seen.append(f"postgresql: {exc}")
        return real_one(self, target, message, key)

    monkeypatch.setattr(transport.AppriseSender, "_one", meanwhile)
    assert _fire_p1("L-1") == 3
    assert len(leads.received) == 1
    assert seen == ["free"]
