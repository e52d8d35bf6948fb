"""Firing: claimed checkpoints become fired rows and one notification per route and channel."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from scheduler import timer_index
from scheduler.dispatch import MAX_SLEEP_S, Dispatcher
from shared.config import settings
from shared.db.models import Checkpoint, Notification, Ticket
from shared.redis_keys import LEASE_SECONDS
from tests.integration.breach import START, add_routes
from tests.integration.services import apply_now
from tests.integration.sinks import JsonSink
from tests.support import event
from worker import tasks
from worker.events import reconcile, replan
from worker.notify import deliver
from worker.notify.fire import fire_checkpoints
from worker.runtime import runtime

KEY = re.compile(r"(?:Notification|Notificación): (\S+)")
ACK = re.compile(r"/v1/acks\?key=([^&\s]+)&exp=")
ROUTES = """
channels:
  oncall_phone: {}
  support_email: {}
routes:
  - {name: p1-page, when: {priorities: [P1], kinds: [breach, escalation]}, channels: [oncall_phone, support_email]}
  - {name: warnings, when: {kinds: [warning]}, channels: [support_email]}
catch_up: all  # tests of the fire task: every overdue checkpoint pages
"""


@pytest.fixture
def routed(policy_dir: Path, configured: None) -> None:
    """The soporte-completo preset with a paging route for P1 and e-mail for warnings."""
    add_routes(policy_dir, ROUTES)


def _created(ticket: str = "F-1") -> None:
    apply_now(event("created", START, ticket, priority="P1"))


def _checkpoints() -> dict[str, int]:
    with runtime().sessions() as s:
        return {key: cid for key, cid in s.execute(select(Checkpoint.key, Checkpoint.id))}


def _fire(ids: Sequence[int], now: datetime):  # type: ignore[no-untyped-def]
    rt = runtime()
    with rt.sessions.begin() as session:
        return fire_checkpoints(session, rt.policies, ids, now)


def test_a_due_breach_fires_once_and_writes_one_notification_per_channel(routed: None) -> None:
    """The P1 breach at 15:30 pages the phone and e-mails support; firing it again writes nothing."""
    _created()
    breach = _checkpoints()["first_response:breach"]
    first = _fire([breach], START + timedelta(minutes=30))
    assert first.fired == [breach]
    with runtime().sessions() as s:
        keys = sorted(
            s.scalars(
                select(Notification.dedupe_key).where(Notification.id.in_(first.notifications))
            )
        )
    assert keys == [f"{breach}:p1-page:oncall_phone:0", f"{breach}:p1-page:support_email:0"]
    again = _fire([breach], START + timedelta(minutes=31))  # a redelivered fire task
    assert (again.fired, again.notifications, again.skipped) == ([], [], [breach])
    with runtime().sessions() as s:
        assert s.scalars(select(Checkpoint.state).where(Checkpoint.id == breach)).one() == "fired"
        assert len(s.scalars(select(Notification)).all()) == 2


def test_a_checkpoint_met_after_its_claim_does_not_fire(routed: None) -> None:
    """A reply that lands just before the fire task runs cancels the breach: nobody is paged."""
    _created()
    breach = _checkpoints()["first_response:breach"]
    apply_now(event("agent_replied", START + timedelta(minutes=29), "F-1"))
    result = _fire([breach], START + timedelta(minutes=30))
    assert (result.fired, result.skipped) == ([], [breach])


def test_a_checkpoint_moved_later_is_handed_back_not_fired(routed: None) -> None:
    """Claimed but re-timed later by a pause: it is returned for re-arming with its new instant."""
    _created()
    warning = _checkpoints()["first_response:warning:75"]
    result = _fire([warning], START + timedelta(minutes=10))
    assert result.fired == []
    assert result.later == [(warning, START + timedelta(minutes=22, seconds=30))]


def test_dispatcher_sends_due_checkpoints_in_batches_and_says_when_to_look_again(
    routed: None,
) -> None:
    """One beat pass claims what is due, sends it to the fire queue, and sleeps until the next."""
    _created()
    sent: list[list[int]] = []
    dispatcher = Dispatcher(runtime().timers, lambda ids: sent.append(list(ids)))
    early = dispatcher.tick(START + timedelta(minutes=1))
    assert (early.claimed, sent, early.sleep_s) == (0, [], MAX_SLEEP_S)
    at_warning = dispatcher.tick(START + timedelta(minutes=22, seconds=30))
    assert at_warning.claimed == 1 and sent == [[_checkpoints()["first_response:warning:75"]]]
    assert at_warning.sleep_s == MAX_SLEEP_S  # the 90 % warning is 4.5 minutes away
    almost = dispatcher.tick(START + timedelta(minutes=26, seconds=59.5))
    assert almost.sleep_s == pytest.approx(
        0.5, abs=0.05
    )  # wake at 15:27:00, less the tick's own time


@pytest.fixture
def sink(routed: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[JsonSink]:
    """Both channels of the routes post to one webhook on 127.0.0.1; acknowledgement links on."""
    hook = JsonSink()
    monkeypatch.setenv("ESCALERA_CHANNEL_ONCALL_PHONE", hook.url("phone"))
    monkeypatch.setenv("ESCALERA_CHANNEL_SUPPORT_EMAIL", hook.url("email"))
    monkeypatch.setenv("ESCALERA_PUBLIC_URL", "https://escalera.example")
    monkeypatch.setenv("ESCALERA_ACK_SECRET", "fire-test-ack-secret")
    settings.cache_clear()
    runtime.cache_clear()
    yield hook
    hook.close()


def _queued_deliveries(monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    queued: list[list[int]] = []
    monkeypatch.setattr(
        tasks.deliver_notifications_task, "apply_async", lambda args, **_: queued.append(args[0])
    )
    return queued


def _received(sink: JsonSink) -> list[str]:
    return sorted(KEY.findall("\n".join(m["json"]["message"] for m in sink.received)))


def test_the_fire_task_fires_delivers_what_it_wrote_and_ends_the_leases(
    sink: JsonSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the task: fired checkpoints leave the index, and the task itself sends the four
    notifications it wrote (no delivery task, no second read): each key once at the webhook,
    and each page's acknowledgement link names its stored notification."""
    queued = _queued_deliveries(monkeypatch)
    _created()
    timers = runtime().timers
    ids = timers.claim(START + timedelta(minutes=30))
    assert len(ids) == 3  # 75 %, 90 % and the breach, all due by 15:30
    assert tasks.fire_checkpoints_task.run(ids) == 3  # it reads the real clock: all are due
    assert timers.count() == (0, 0)  # leases ended, nothing left armed
    assert queued == []  # nothing left for a delivery task
    with runtime().sessions() as s:
        rows = s.execute(
            select(Notification.id, Notification.dedupe_key, Notification.status)
        ).all()
    assert sorted((key.split(":", 1)[1], status) for _, key, status in rows) == [
        ("p1-page:oncall_phone:0", "sent"),
        ("p1-page:support_email:0", "sent"),
        ("warnings:support_email:0", "sent"),
        ("warnings:support_email:0", "sent"),
    ]
    assert _received(sink) == sorted(key for _, key, _ in rows)
    for message in (m["json"]["message"] for m in sink.received):
        (linked,) = map(unquote, ACK.findall(message))
        assert f": {linked}" in message  # the link names this message's own notification


def test_a_fire_task_cut_off_after_sending_sends_again_and_never_loses_one(
    sink: JsonSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database goes away after the messages left but before their results were stored:
    the task fails, and running it again (the claim comes back once its lease expires) sends
    every notification again under the same key (at-least-once) and stores each one sent."""
    queued = _queued_deliveries(monkeypatch)
    _created()
    ids = runtime().timers.claim(START + timedelta(minutes=30))

    def cut(*_args: object, **_kwargs: object) -> None:
        raise OperationalError("INSERT …", {}, Exception("connection to the database lost"))

    with monkeypatch.context() as during:
        during.setattr(deliver, "write_back", cut)  # sent after storing them pending
        with pytest.raises(OperationalError):
            tasks.fire_checkpoints_task.run(ids)
    first = _received(sink)
    assert len(first) == 4
    tasks.fire_checkpoints_task.run(ids)
    for batch in queued:  # the pending ones go to a delivery task
        tasks.deliver_notifications_task.run(batch)
    assert _received(sink) == sorted(first * 2)
    with runtime().sessions() as s:
        assert sorted(s.scalars(select(Notification.status))) == ["sent"] * 4


def test_a_fire_task_holds_its_batch_from_its_start_however_long_it_waited(
    sink: JsonSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Claimed at 15:30 on 2 March, its task starts only now (a backlog, months by the claim's
    clock) and is cut off mid-fire: the reaper does not hand the batch out while the task could
    still be running, and hands it out 60 s after the task started."""
    _queued_deliveries(monkeypatch)
    _created()
    timers = runtime().timers
    ids = timers.claim(START + timedelta(minutes=30))

    def cut(*_args: object, **_kwargs: object) -> None:
        raise OperationalError("INSERT …", {}, Exception("connection to the database lost"))

    monkeypatch.setattr(deliver, "write_back", cut)
    before = datetime.now(UTC)
    with pytest.raises(OperationalError):
        tasks.fire_checkpoints_task.run(ids)
    after = datetime.now(UTC)
    assert timers.reap(before + timedelta(seconds=LEASE_SECONDS - 1)) == 0
    assert timers.reap(after + timedelta(seconds=LEASE_SECONDS)) == len(ids) == 3


def test_a_checkpoint_fired_while_reconcile_reads_is_not_armed_again(
    routed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beat's minute re-arms what Redis lost, a page at a time: the breach, fired (and its
    lease ended) while the first page was being re-armed, is not armed again from a stale
    read, so it is never claimed a second time."""
    _created()
    timers = runtime().timers
    with runtime().sessions() as s:
        due = [cid for (cid,) in s.execute(select(Checkpoint.id).order_by(Checkpoint.due_at))]
    breach = _checkpoints()["first_response:breach"]
    assert due[-1] == breach and len(due) == 3
    timers.disarm(due)  # Redis lost them
    monkeypatch.setattr(reconcile, "_PAGE", 1)
    monkeypatch.setattr(timer_index, "_CHUNK", 1)  # one script call a checkpoint
    script = timers._reconcile

    def fire_after_the_first(**call: Any) -> Any:
        missing = script(**call)
        if timers.count() == (1, 0):
            assert _fire([breach], START + timedelta(minutes=30)).fired == [breach]
        return missing

    monkeypatch.setattr(timers, "_reconcile", fire_after_the_first)
    with runtime().sessions() as session:
        assert reconcile.reconcile_timers(session, timers) == 2
    assert timers.claim(START + timedelta(hours=1)) == due[:2]


def test_firing_again_hands_back_notifications_never_tried(routed: None) -> None:
    """A fire task killed after its commit left its notifications pending: the next claim of
    the same checkpoint (lease expired, message redelivered) hands them to delivery again."""
    _created()
    breach = _checkpoints()["first_response:breach"]
    first = _fire([breach], START + timedelta(minutes=30))
    again = _fire([breach], START + timedelta(minutes=31))
    assert again.fired == [] and sorted(again.undelivered) == sorted(first.notifications)
    with runtime().sessions.begin() as s:
        s.get_one(Notification, first.notifications[0]).status = "sent"
        s.get_one(Notification, first.notifications[1]).status = "retrying"  # retry never queued
    last = _fire([breach], START + timedelta(minutes=32))
    assert last.undelivered == first.notifications[1:]


def test_a_bug_while_sending_leaves_the_batch_fired_and_a_later_task_delivers_it(
    sink: JsonSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recording the batch's tries fails for a reason that is not the database (a bug): the
    firing stands, committed before anything was sent, its notifications pending; the next
    fire task of the batch (its claim back once the lease expires) hands them to a delivery
    task, and every one ends sent."""
    queued = _queued_deliveries(monkeypatch)
    _created()
    ids = runtime().timers.claim(START + timedelta(minutes=30))

    def bug(*_args: object, **_kwargs: object) -> None:
        raise ValueError("a bug")

    with monkeypatch.context() as during:
        during.setattr(deliver, "write_back", bug)
        with pytest.raises(ValueError, match="a bug"):
            tasks.fire_checkpoints_task.run(ids)
    with runtime().sessions() as s:
        assert set(s.scalars(select(Checkpoint.state).where(Checkpoint.id.in_(ids)))) == {"fired"}
        assert sorted(s.scalars(select(Notification.status))) == ["pending"] * 4
    assert tasks.fire_checkpoints_task.run(ids) == 0  # fired before: it only finds them
    for batch in queued:
        tasks.deliver_notifications_task.run(batch)
    with runtime().sessions() as s:
        keys = s.scalars(select(Notification.dedupe_key).where(Notification.status == "sent"))
        assert sorted(keys) == sorted(set(_received(sink))) and len(set(_received(sink))) == 4


def test_a_route_naming_a_channel_twice_notifies_it_once(
    policy_dir: Path, configured: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = JsonSink()
    monkeypatch.setenv("ESCALERA_CHANNEL_ONCALL_PHONE", sink.url("phone"))
    preset = policy_dir / "soporte-completo.yaml"
    preset.write_text(
        preset.read_text()
        + "channels: {oncall_phone: {}}\nroutes:\n"
        + "  - {name: page, when: {kinds: [breach]}, channels: [oncall_phone, oncall_phone]}\n"
    )
    runtime.cache_clear()
    _created()
    breach = _checkpoints()["first_response:breach"]
    try:
        assert tasks.fire_checkpoints_task.run([breach]) == 1
    finally:
        sink.close()
    with runtime().sessions() as s:
        assert s.scalars(select(Notification.status)).all() == ["sent"]
    assert len(sink.received) == 1


def test_a_replan_read_before_a_fire_leaves_the_fired_checkpoint_and_its_pages(
    routed: None,
) -> None:
    """A reply's re-planning read the breach as armed; a fire task fired it before the reply's
    transaction wrote: the breach stays fired with its pages, and the reply still applies.

    Found by the full chaos run: the reply's DELETE of the "cancelled" breach broke the
    notifications' foreign key and dead-lettered the reply.
    """
    _created()
    breach = _checkpoints()["first_response:breach"]
    due = START + timedelta(minutes=30)
    rt = runtime()
    with rt.sessions.begin() as replanning:
        stored = replan.load(replanning, [_ticket_pk(replanning)])
        ((pk, rows),) = stored.items()
        cancel = replan.diff(rows, [])  # the reply met the clock: nothing left to fire
        move = replan.Diff(
            moved=[(next(r for r in rows if r.id == breach), due + timedelta(hours=1))]
        )
        assert breach in [row.id for row in cancel.cancelled]
        fired = _fire([breach], due)  # another transaction, committed meanwhile
        assert fired.fired == [breach]
        replan.write(replanning, {pk: move}, due)
        changes = replan.write(replanning, {pk: cancel}, due)
        # the other armed checkpoints are gone; the fired breach is not reported cancelled
        cancelled = [row.id for row in changes[pk].cancelled]
        assert breach not in cancelled and len(cancelled) == len(cancel.cancelled) - 1
    with rt.sessions() as s:
        state, due_at = s.execute(
            select(Checkpoint.state, Checkpoint.due_at).where(Checkpoint.id == breach)
        ).one()
        pages = s.scalars(select(Notification.id).where(Notification.checkpoint_id == breach))
        assert (state, due_at.astimezone(UTC)) == ("fired", due)
        assert sorted(pages.all()) == sorted(fired.notifications)


def _ticket_pk(session) -> int:  # type: ignore[no-untyped-def]
    return int(session.scalars(select(Ticket.id)).one())
