"""Delivering in batches, and storms as digests, for real: Apprise to sinks on 127.0.0.1."""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from shared.db.models import Notification
from tests.integration.breach import START, add_routes, fire_due
from tests.integration.sinks import JsonSink
from tests.support import event
from worker import tasks
from worker.notify.deliver import Deliverer
from worker.notify.messages import Message
from worker.notify.outcome import Delivery, Outcome
from worker.notify.paging import acknowledge, repeat_pages
from worker.notify.storm import StormSettings
from worker.notify.transport import AppriseSender
from worker.runtime import runtime

SENT_AT = START + timedelta(minutes=31)
KEY = re.compile(r"Notificación: (\S+)")
ROUTES = """
channels:
  oncall: {}
  leads: {}
routes:
  - {name: page, when: {kinds: [warning, breach]}, channels: [oncall], attempts: 3, fallback: leads, repeat: {every: 15m, limit: 1}}
catch_up: all  # every overdue checkpoint pages: three per ticket make the storms here
"""


@pytest.fixture
def routed(policy_dir: Path, configured: None) -> None:
    add_routes(policy_dir, ROUTES)


def fired(tickets: int) -> list[int]:
    """``tickets`` P1 tickets whose 75 %, 90 % and breach all fired: three pages each."""
    for n in range(tickets):
        tasks.apply_event_task.run(
            event("created", START, f"S-{n}", priority="P1").model_dump(mode="json")
        )
    return fire_due().notifications


def deliver(
    ids: list[int], environ: dict[str, str], storm: StormSettings, now: datetime = SENT_AT
) -> dict[int, Outcome]:
    rt = runtime()
    deliverer = Deliverer(rt.policies, AppriseSender(), environ, storm=storm)
    with rt.sessions.begin() as session:
        return deliverer.deliver_many(session, ids, now)


def keys_received(sink: JsonSink) -> Counter[str]:
    return Counter(
        key for message in sink.received for key in KEY.findall(message["json"]["message"])
    )


def statuses() -> dict[str, tuple[str, Any]]:
    with runtime().sessions() as s:
        return {n.dedupe_key: (n.status, n.results) for n in s.scalars(select(Notification))}


def test_a_batch_under_the_threshold_sends_each_notification_on_its_own(
    routed: None, sink: JsonSink
) -> None:
    """Three pages of one ticket in one batch: three messages, each with its own key."""
    ids = fired(1)
    outcomes = deliver(ids, {"ESCALERA_CHANNEL_ONCALL": sink.url()}, StormSettings(threshold=10))
    assert {o.delivery for o in outcomes.values()} == {Delivery.SENT}
    assert len(sink.received) == 3
    headers = sorted(m["headers"]["X-Escalera-Dedupe-Key"] for m in sink.received)
    assert headers == sorted(statuses())
    assert all(o.repeat_at == SENT_AT + timedelta(minutes=15) for o in outcomes.values())


def test_a_storm_on_a_channel_becomes_digests_listing_every_key_once(
    routed: None, sink: JsonSink
) -> None:
    """12 pages at once, threshold 5, at most 5 per digest: three messages (5, 5, 2), not 12."""
    ids = fired(4)
    outcomes = deliver(
        ids, {"ESCALERA_CHANNEL_ONCALL": sink.url()}, StormSettings(threshold=5, digest_max=5)
    )
    assert len(sink.received) == 3
    titles = sorted(m["json"]["title"] for m in sink.received)  # sent at once: any order
    assert titles == [
        "Tormenta: 2 alertas de SLA a la vez (P1 ×2)",
        "Tormenta: 5 alertas de SLA a la vez (P1 ×5)",
        "Tormenta: 5 alertas de SLA a la vez (P1 ×5)",
    ]
    bodies = "\n".join(m["json"]["message"] for m in sink.received)
    assert "- [P1] api/S-0: primera respuesta incumplida · Plazo: 2026-03-02 09:30 CST" in bodies
    assert keys_received(sink) == Counter(
        list(statuses())
    )  # every row's key, in exactly one digest
    assert {status for status, _ in statuses().values()} == {"sent"}
    # each row is a page of its own: each repeats (and can be acknowledged) on its own
    assert all(o.repeat_at == SENT_AT + timedelta(minutes=15) for o in outcomes.values())


def test_a_batch_run_again_sends_nothing_again(routed: None, sink: JsonSink) -> None:
    """A redelivered deliver task (its worker died after the commit) finds every row sent."""
    ids = fired(4)
    environ = {"ESCALERA_CHANNEL_ONCALL": sink.url()}
    deliver(ids, environ, StormSettings(threshold=5))
    again = deliver(ids, environ, StormSettings(threshold=5), SENT_AT + timedelta(minutes=1))
    assert {o.delivery for o in again.values()} == {Delivery.SENT}
    assert all(o.repeat_at is None for o in again.values())  # repeats are not armed twice
    assert len(sink.received) == 1 and sum(keys_received(sink).values()) == 12


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_overlapping_batches_at_once_deliver_each_notification_exactly_once(
    routed: None, sink: JsonSink
) -> None:
    """Three workers with overlapping batches at the same instant (a redelivery racing the first
    run, sweeps taking each other's rows): each key reaches the channel once. A row another
    batch holds comes back busy, and looking at it again (the task re-queues it) sends nothing."""
    ids = fired(10)
    environ = {"ESCALERA_CHANNEL_ONCALL": sink.url()}
    outcomes: list[dict[int, Outcome]] = []
    batches = [ids[:20], ids[10:], ids[::2]]
    threads = [
        threading.Thread(
            target=lambda b: outcomes.append(deliver(b, environ, StormSettings(threshold=5))),
            args=(batch,),
        )
        for batch in batches
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    busy = sorted({nid for o in outcomes for nid, x in o.items() if x.delivery is Delivery.BUSY})
    assert {x.delivery for x in deliver(busy, environ, StormSettings(5)).values()} <= {
        Delivery.SENT
    }
    assert keys_received(sink) == Counter(list(statuses()))
    assert {status for status, _ in statuses().values()} == {"sent"}


def test_a_failed_target_in_a_storm_is_retried_alone(routed: None, sink: JsonSink) -> None:
    """A channel with two webhooks, one down during a storm: the digests reach the other; the
    retry sends the same notifications to the failed one only, once each."""
    ids = fired(4)
    down = JsonSink()
    try:
        environ = {"ESCALERA_CHANNEL_ONCALL": f"{sink.url('a')} {down.url('b')}"}
        down.failing = True
        first = deliver(ids, environ, StormSettings(threshold=5, digest_max=50))
        assert {o.delivery for o in first.values()} == {Delivery.RETRY}
        assert all(1 <= (o.retry_in_s or 0) <= 3 for o in first.values())
        assert {str(results) for _, results in statuses().values()} == {
            str({"0": True, "1": False})
        }
        down.failing = False
        second = deliver(ids, environ, StormSettings(threshold=5, digest_max=50))
        assert {o.delivery for o in second.values()} == {Delivery.SENT}
        assert keys_received(sink) == keys_received(down) == Counter(list(statuses()))
        assert (len(sink.received), len(down.received)) == (1, 1)
    finally:
        down.close()


def test_in_one_batch_a_dead_channel_falls_back_while_the_others_are_sent(
    routed: None, sink: JsonSink
) -> None:
    """The down channel's rows die after their attempts and each gets one fallback row; the
    fallback batch, itself a storm, reaches `leads` as a digest."""
    ids = fired(4)
    leads = JsonSink()
    try:
        environ = {"ESCALERA_CHANNEL_ONCALL": sink.url(), "ESCALERA_CHANNEL_LEADS": leads.url()}
        sink.failing = True
        outcomes = {}
        for attempt in range(3):
            outcomes = deliver(
                ids, environ, StormSettings(threshold=5), SENT_AT + timedelta(minutes=attempt)
            )
        assert {o.delivery for o in outcomes.values()} == {Delivery.DEAD}
        fallbacks = sorted(o.fallback_id for o in outcomes.values() if o.fallback_id is not None)
        assert len(fallbacks) == 12
        deliver(fallbacks, environ, StormSettings(threshold=5))
        assert len(leads.received) == 1
        assert sorted(keys_received(leads)) == sorted(
            key for key in statuses() if key.endswith(":leads:fallback")
        )
    finally:
        leads.close()


def test_the_task_retries_only_the_failed_and_queues_them_on_the_fire_queue(
    routed: None, sink: JsonSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the task: sent pages arm their repeats; failed ones go back on the fire queue with
    a countdown of their backoff, in one task per second of it, not one each."""
    ids = fired(4)
    monkeypatch.setenv("ESCALERA_CHANNEL_ONCALL", sink.url())
    queued: list[dict[str, Any]] = []
    monkeypatch.setattr(
        tasks.deliver_notifications_task, "apply_async", lambda **kw: queued.append(kw)
    )
    sink.failing = True
    assert tasks.deliver_notifications_task.run(ids) == 0
    assert sorted(i for kw in queued for i in kw["args"][0]) == sorted(ids)
    assert all(kw["queue"] == runtime().settings.fire_queue for kw in queued)
    assert all(1 <= kw["countdown"] <= 3 for kw in queued) and len(queued) <= 3
    sink.failing = False
    assert tasks.deliver_notifications_task.run(ids) == 12
    assert runtime().repeats.count() == (12, 0)  # every page armed to repeat in 15 minutes


def test_a_storm_of_pages_repeats_as_a_digest_except_the_acknowledged_one(
    routed: None, sink: JsonSink
) -> None:
    """12 pages sent as digests; one is acknowledged; 15 minutes later the other 11 repeat,
    together, as one digest of their repeat keys (`…:1`)."""
    ids = fired(4)
    deliver(ids, {"ESCALERA_CHANNEL_ONCALL": sink.url()}, StormSettings(threshold=5))
    repeat_at = SENT_AT + timedelta(minutes=15)
    with runtime().sessions.begin() as session:
        acknowledge(session, ids[0], repeat_at - timedelta(minutes=1))
    with runtime().sessions.begin() as session:
        repeats = repeat_pages(session, runtime().policies, ids, repeat_at).written
    assert len(repeats) == 11
    deliver(repeats, {"ESCALERA_CHANNEL_ONCALL": sink.url()}, StormSettings(threshold=5), repeat_at)
    assert len(sink.received) == 2
    again = KEY.findall(sink.received[1]["json"]["message"])
    assert len(again) == 11 and all(key.endswith(":1") for key in again)
    assert not any(key.startswith(f"{ids[0]}:") for key in again)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_row_another_batch_holds_is_handed_back_not_waited_for_nor_sent(
    routed: None, sink: JsonSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While another transaction holds a notification, the task sends the rest and re-queues
    that one a moment later; once free, it is sent once."""
    ids = fired(1)
    monkeypatch.setenv("ESCALERA_CHANNEL_ONCALL", sink.url())
    queued: list[dict[str, Any]] = []
    monkeypatch.setattr(
        tasks.deliver_notifications_task, "apply_async", lambda **kw: queued.append(kw)
    )
    with runtime().sessions.begin() as other:
        other.get(Notification, ids[0], with_for_update=True)
        assert tasks.deliver_notifications_task.run(ids) == 2
        assert [(kw["args"][0], kw["countdown"]) for kw in queued] == [
            ([ids[0]], tasks.BUSY_RECHECK_S)
        ]
    assert tasks.deliver_notifications_task.run([ids[0]]) == 1
    assert len(sink.received) == 3


def test_a_sender_that_raises_fails_its_target_only_and_never_shows_the_url(
    routed: None, sink: JsonSink
) -> None:
    """A bug in one target's Apprise plugin: the batch is still sent to the other target and
    the error names the scheme and the exception, not the URL (it may hold a key)."""

    class Broken(AppriseSender):
        def send(self, urls: Sequence[str], message: Message, dedupe_key: str) -> list[str | None]:
            if urls[0].endswith("/secret-key"):
                raise RuntimeError(f"cannot reach {urls[0]}")
            return super().send(urls, message, dedupe_key)

    ids = fired(1)
    rt = runtime()
    environ = {"ESCALERA_CHANNEL_ONCALL": f"{sink.url('a')} {sink.url('secret-key')}"}
    deliverer = Deliverer(rt.policies, Broken(), environ, storm=StormSettings(threshold=10))
    with rt.sessions.begin() as session:
        outcomes = deliverer.deliver_many(session, ids, SENT_AT)
    assert {(o.delivery, o.error) for o in outcomes.values()} == {
        (Delivery.RETRY, "json: RuntimeError")
    }
    assert len(sink.received) == 3
