"""Celery tasks: thin wrappers that decode, call a plain service, and map errors to retries."""

from __future__ import annotations

import math
import os
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from celery.signals import worker_init, worker_ready
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from shared import metrics
from shared.celery_app import (
    APPLY_EVENT,
    DELIVER_NOTIFICATION,
    FIRE_CHECKPOINTS,
    RECONCILE_TIMERS,
    REPEAT_PAGES,
    app,
)
from shared.db.models import Notification, NotificationState
from shared.db.statements import among, is_postgresql
from shared.events import Event
from shared.redis_keys import LEASE_SECONDS
from worker.events.applier import make_applier
from worker.events.reconcile import reconcile_repeats, reconcile_timers
from worker.notify.breaker import Target, wait_s
from worker.notify.breaker_store import RedisBreakers
from worker.notify.breaker_waiting import DRAIN_SLACK_S, WaitingRoom
from worker.notify.deliver import Deliverer
from worker.notify.fire import FireResult, fire_checkpoints
from worker.notify.firing_log import report_deliveries, report_fired
from worker.notify.outcome import Delivery, Outcome
from worker.notify.overdue import overdue_tries, untried_since
from worker.notify.paging import Stopped, repeat_pages
from worker.notify.release import due_held, release_held
from worker.notify.retry import BUSY_RECHECK_S, PARK_MARGIN_S, Retry
from worker.notify.storm import StormSettings
from worker.notify.transport import AppriseSender, warm_apprise
from worker.notify.writeback import WritebackSender
from worker.runtime import Runtime, runtime

log = structlog.get_logger("escalera.worker")
# A batch of notifications to deliver: many ids in one task (shared.celery_app names the rest).
DELIVER_NOTIFICATIONS = "escalera.deliver_notifications"
DELIVER_BATCH = 500
RELEASE_HELD = "escalera.release_held"  # notifications held in quiet hours, now due
# What waits for a parked target, tried when it reopens (`worker.notify.breaker_waiting`)
DRAIN_PARKED = "escalera.drain_parked"
DRAIN_PROBES = 5  # probes one drain makes whose rows were done already, before looking later
# A backstop for parked pages, after their try's drain: those the waiting set lost (Redis
# flushed or failed over), that nobody tried since, are delivered (`rescue_parked_task`).
RESCUE_PARKED = "escalera.rescue_parked"
RESCUE_AFTER_S = 120  # after a parked page's try is due: its drain ran, or beat re-queued it
_LEASE = timedelta(seconds=LEASE_SECONDS)  # a started batch's lease (shared.redis_keys)


# Database down or restarting: retry with backoff, for ever; at-least-once (acks_late), and each
# task is idempotent. Celery is untyped, hence the ignores on the decorators.
_ON_DATABASE_ERRORS: dict[str, Any] = {
    "acks_late": True,
    "autoretry_for": (OperationalError, DBAPIError),
    "retry_backoff": True,
    "max_retries": None,
}


@app.task(name=APPLY_EVENT, acks_late=True)  # type: ignore[untyped-decorator]
def apply_event_task(event: dict[str, Any]) -> str:
    """One event message that Celery itself consumed (a worker started with ``-Q events``).

    The worker's applier normally drains the events queue in batches (`worker.events.applier`); this
    applies the same way: a database outage is retried, a failing event is dead-lettered.
    """
    results = make_applier(runtime()).apply_events([Event.model_validate(event)])
    assert results is not None  # without a stop signal it returns only once committed
    return results[0].outcome.value


@app.task(name=FIRE_CHECKPOINTS, retry_backoff_max=10, **_ON_DATABASE_ERRORS)  # type: ignore[untyped-decorator]
def fire_checkpoints_task(ids: list[int]) -> int:
    """Fire a claimed batch (at-least-once; each checkpoint fires once) and deliver its
    notifications right here (no second task, no second read), then end the leases.

    Two transactions: the first fires the checkpoints and stores their notifications pending,
    and commits at once; the second locks those notifications alone, sends them and records
    how each went. Nothing is sent while a checkpoint or a ticket is held: a channel that
    hangs until its time-out delays no event of those tickets (the applier waits on no
    lock of ours). A worker killed in between leaves them pending, and the next fire task of
    those ids (the claim comes back once its lease expires), finding them so, delivers them.

    The leases count from here: the batch's wait in the queue was covered by the longer lease
    beat gave it, and from this start (each retry's too) a worker killed mid-fire has it handed
    out again `LEASE_SECONDS` later.
    """
    rt, now = runtime(), datetime.now(UTC)
    rt.timers.extend(ids, now + _LEASE)
    outcomes: dict[int, Outcome] = {}
    with rt.sessions.begin() as session:
        result = fire_checkpoints(session, rt.policies, ids, now, directory=rt.directory)
    if result.notes:
        deliverer, sent_at = _deliverer(rt), datetime.now(UTC)
        outcomes = _with_fallbacks(
            rt,
            deliverer,
            lambda session: deliverer.deliver_written(session, result.notes, result.about, sent_at),
        )
    rt.timers.arm(result.later)  # moved later since it was claimed: back in the index
    report_fired([result.about[cid] for cid in result.fired], now, _storm(rt), result.not_paged)
    if result.notes:
        _after_delivery(rt, outcomes, asked=len(result.notes))
    deliver_soon(rt, result.undelivered)
    rt.timers.release(ids)
    _count_skipped(result)
    log.info(
        "checkpoints_fired",
        fired=result.fired,
        notifications=len(result.notes),
        not_paged=len(result.not_paged),
        undelivered=len(result.undelivered),
        later=len(result.later),
        skipped=len(result.skipped),
    )
    return len(result.fired)


def _count_skipped(result: FireResult) -> None:
    """Count what the fire task claimed and did not fire: a checkpoint found fired was
    claimed again (the soak's claims per checkpoint); one gone (met, cancelled) was not."""
    fired = len(result.fired_before)
    gone = len(result.skipped) - fired
    metrics.checkpoints_skipped(gone=gone, fired=fired, later=len(result.later))


@app.task(name=DELIVER_NOTIFICATIONS, retry_backoff_max=30, **_ON_DATABASE_ERRORS)  # type: ignore[untyped-decorator]
def deliver_notifications_task(ids: list[int], swept_at: str | None = None) -> int:
    """Deliver a batch (a storm on a channel becomes digests); how many were sent.

    Notifications with failed targets go back on the queue in one task per second of backoff;
    dead ones' fallbacks are delivered by this task too (`_with_fallbacks`). ``swept_at``: the
    batch was queued again by beat's minute then (its tries were long overdue); only those
    nobody tried since are delivered (`worker.notify.overdue.untried_since`).
    """
    rt = runtime()
    if swept_at is not None:
        with rt.sessions() as session:
            ids = untried_since(session, ids, datetime.fromisoformat(swept_at))
        if not ids:
            return 0
    deliverer = _deliverer(rt)
    outcomes = _with_fallbacks(
        rt, deliverer, lambda session: deliverer.deliver_many(session, ids, datetime.now(UTC))
    )
    return _after_delivery(rt, outcomes, asked=len(ids))


def _deliverer(rt: Runtime) -> Deliverer:
    sender = WritebackSender(AppriseSender(), rt.integrations, os.environ)
    return Deliverer(
        rt.policies,
        sender,
        os.environ,
        ack_links=_ack_links(rt),
        storm=_storm(rt),
        breakers=RedisBreakers(rt.redis, rt.settings.redis_prefix),
    )


def _storm(rt: Runtime) -> StormSettings:
    return StormSettings.from_settings(rt.settings)


def _after_delivery(rt: Runtime, outcomes: dict[int, Outcome], *, asked: int) -> int:
    """Log and count what was tried (the fallbacks delivered with it among ``outcomes``:
    `_with_fallbacks`), arm page repeats, queue retries and busy rows (as each outcome's
    `worker.notify.retry` decision says); how many were sent."""
    report_deliveries(outcomes)
    rt.repeats.arm([(nid, o.repeat_at) for nid, o in outcomes.items() if o.repeat_at is not None])
    retries: dict[int, list[int]] = defaultdict(list)
    waiting: dict[Target, dict[int, int]] = defaultdict(dict)  # target -> id -> countdown
    reopens: dict[Target, float] = {}  # target -> in how long its park ends, at the soonest
    attempts: dict[Target, dict[str, int]] = defaultdict(dict)  # target -> id -> attempts
    for nid, outcome in outcomes.items():
        if isinstance(outcome.decision, Retry):
            if (parked := outcome.decision.parked_on) is not None:  # waits for it to reopen
                waiting[parked][nid] = outcome.decision.countdown_s
                attempts[parked][str(nid)] = outcome.decision.attempts
                reopens[parked] = min(reopens.get(parked, math.inf), outcome.decision.parked_s)
            else:
                retries[outcome.decision.countdown_s].append(nid)
        if outcome.error is not None:  # errors name a channel's scheme and variable, never its URL
            log.warning(
                "notification_failed",
                notification_id=nid,
                outcome=outcome.delivery.value,
                error=outcome.error,
            )
    busy = [nid for nid, outcome in outcomes.items() if outcome.delivery is Delivery.BUSY]
    if busy:  # another batch is sending these: by then they are sent (or free, if it died)
        retries[BUSY_RECHECK_S] += busy
    for countdown, retry_ids in sorted(retries.items()):
        deliver_notifications_task.apply_async(
            args=[retry_ids], countdown=countdown, queue=rt.settings.fire_queue
        )
    if waiting:
        room, now = _room(rt), _epoch()
        for target, countdowns in sorted(waiting.items()):
            due = {nid: now + countdown for nid, countdown in countdowns.items()}
            _queue_drain(rt, target, room.wait(target, due, now, now + reopens[target]), now)
            rescue_parked_task.apply_async(  # in the worker's memory: a Redis flush keeps it
                args=[target.channel, target.position, attempts[target]],
                countdown=max(countdowns.values()) + RESCUE_AFTER_S,
                queue=rt.settings.fire_queue,
            )
    counts = Counter(outcome.delivery.value for outcome in outcomes.values())
    fallbacks = sum(1 for outcome in outcomes.values() if outcome.fallback_id is not None)
    log.info(
        "notifications_delivered",
        asked=asked,
        swept=len(outcomes) - asked - fallbacks,
        fallbacks=fallbacks,
        sent=counts[Delivery.SENT.value],
        retrying=counts[Delivery.RETRY.value],
        parked=sum(len(ids) for ids in waiting.values()),
        dead=counts[Delivery.DEAD.value],
        busy=counts[Delivery.BUSY.value],
        skipped=counts[Delivery.SKIPPED.value],
    )
    return counts[Delivery.SENT.value]


def _with_fallbacks(
    rt: Runtime, deliverer: Deliverer, deliver: Callable[[Session], dict[int, Outcome]]
) -> dict[int, Outcome]:
    """What ``deliver`` did, in a transaction, and the outcomes of the fallbacks its dead
    wrote, delivered now by this task.

    Not a task of their own: with a channel not answering, every page that finds it parked
    dies and is told to its fallback, and a task for each filled the fire queue and the pool
    that the other channels' pages wait on (the hanging-pager soak). On PostgreSQL they are
    tried in the transaction that wrote them: a page's death and its fallback's try commit
    together, so a worker killed or a database lost before the commit leaves the page to be
    tried again, and its fallback is written again, once (its dedupe key). On SQLite, whose
    one writer at a time that transaction already is, sending there would stall the appliers
    for the send: the fallbacks go in a transaction of their own, after the commit. A
    fallback's own failures are retried as any notification's.
    """
    with rt.sessions.begin() as session:
        outcomes = deliver(session)
        if is_postgresql(session):
            return _fallbacks_of(deliverer, lambda: nullcontext(session), outcomes)
    return _fallbacks_of(deliverer, rt.sessions.begin, outcomes)


def _fallbacks_of(
    deliverer: Deliverer,
    transaction: Callable[[], AbstractContextManager[Session]],
    outcomes: dict[int, Outcome],
) -> dict[int, Outcome]:
    """``outcomes`` and those of the fallbacks their dead wrote (and theirs), each round
    delivered in a ``transaction``."""
    told = outcomes
    while fallbacks := [o.fallback_id for o in told.values() if o.fallback_id is not None]:
        with transaction() as session:
            told = deliverer.deliver_many(session, fallbacks, datetime.now(UTC))
        outcomes = {**outcomes, **told}
    return outcomes


@app.task(name=DRAIN_PARKED, retry_backoff_max=30, **_ON_DATABASE_ERRORS)  # type: ignore[untyped-decorator]
def drain_parked_task(channel: str, position: int) -> int:
    """The notifications waiting for a parked target (`worker.notify.breaker_waiting`), when
    its park ends: one of them tries it (the probe); answered, they all go out, in batches
    (digests when a storm); not, they stay parked, each due try counted as failed
    (`worker.notify.retry.next_try`), and the dead are told to their fallback. The next drain
    is queued for the new park's end. How many were sent.

    One task for all of them: a try task of each, falling due together at the park's end,
    stalled the fire pool for every other channel (the hanging-pager soak)."""
    rt, target = runtime(), Target(channel, position)
    room = _room(rt)
    room.started(target)
    sent, at = _drain(rt, room, target)
    now = _epoch()
    _queue_drain(rt, target, room.next_drain(target, at, now), now)
    return sent


def _drain(rt: Runtime, room: WaitingRoom, target: Target) -> tuple[int, float]:
    """Deliver what waits for ``target`` as its breaker says; how many were sent, and when
    the next drain is worth running (if any notification still waits)."""
    breakers = RedisBreakers(rt.redis, rt.settings.redis_prefix)
    deliverer, sent = _deliverer(rt), 0
    answered = False  # this drain's probe was sent and did not park the target again
    for _ in range(DRAIN_PROBES):
        now = _epoch()
        waiting = room.everyone(target)
        if not waiting:
            return sent, now
        state, probing = breakers.state(target)
        left = wait_s(state, now)
        if state is None or (answered and left is None and not probing):
            # closed (it answered), or this drain's probe was refused at once (a 500, not
            # parked again): it answers, so nothing waits for it any longer; each page goes
            # on at its usual backoff then, as a page's own retry did
            return sent + _deliver_waiting(rt, deliverer, room, target, waiting), now
        if left is not None and left <= PARK_MARGIN_S:  # about to reopen: then
            return sent, state.until
        if left is not None:  # parked: the tries due, surely inside it, counted (no send)
            if due := room.due(target, now):
                sent += _deliver_waiting(rt, deliverer, room, target, due)
            # a try due before the park's end is counted then, not at the end: a long park
            # (5 minutes after a few failed probes) would hold the dead pages' fallback
            first = room.first_due(target)
            return sent, state.until if first is None else min(state.until, first + DRAIN_SLACK_S)
        if probing:  # reopened, and another send is trying it: look again shortly
            return sent, now + BUSY_RECHECK_S
        # reopened: the earliest one tries it (the probe); the loop then goes by its answer
        tried: set[int] = set()
        sent += _deliver_waiting(rt, deliverer, room, target, waiting[:1], tried=tried)
        answered = bool(tried)
    return sent, _epoch() + BUSY_RECHECK_S


def _deliver_waiting(
    rt: Runtime,
    deliverer: Deliverer,
    room: WaitingRoom,
    target: Target,
    ids: Sequence[int],
    *,
    tried: set[int] | None = None,
) -> int:
    """Deliver ``ids`` (waiting for ``target``) in batches, each committed before its ids
    leave the waiting set (those parked again stay, due at their next try); ``tried`` gets
    those tried here (not done before, nor held by another batch)."""
    sent = 0
    for start in range(0, len(ids), DELIVER_BATCH):
        batch = list(ids[start : start + DELIVER_BATCH])

        def deliver(session: Session, batch: list[int] = batch) -> dict[int, Outcome]:
            return deliverer.deliver_many(session, batch, datetime.now(UTC), sweep=False)

        outcomes = _with_fallbacks(rt, deliverer, deliver)
        sent += _after_delivery(rt, outcomes, asked=len(batch))
        if tried is not None:
            tried.update(nid for nid in batch if (o := outcomes.get(nid)) and o.about is not None)
        room.leave(target, [nid for nid in batch if not _waits_for(outcomes.get(nid), target)])
    return sent


@app.task(name=RESCUE_PARKED, **_ON_DATABASE_ERRORS)  # type: ignore[untyped-decorator]
def rescue_parked_task(channel: str, position: int, attempts: dict[str, int]) -> int:
    """The backstop of pages parked on a target (id -> attempts when parked), after their
    tries fell due: those its waiting set no longer holds, still retrying and untried since
    (the same attempts), were lost with the set (Redis flushed, or failed over to a replica
    behind) and are delivered now, as their own retry task would have; how many.

    A drain takes a page out of the set only once its try is committed, so a page it tried
    shows more attempts (or is done), and one still in the set is the drain's: neither is
    touched. Queued in the worker's memory with its countdown, as a retry task was."""
    rt, target = runtime(), Target(channel, position)
    ids = [int(nid) for nid in attempts]
    held = _room(rt).holds(target, ids)
    if len(held) == len(ids):
        return 0  # all still the drain's
    with rt.sessions() as session:
        rows = session.execute(
            select(Notification.id, Notification.status, Notification.attempts).where(
                among(session, Notification.id, [nid for nid in ids if nid not in held])
            )
        ).all()
    lost = [
        int(row.id)
        for row in rows
        if row.status == NotificationState.RETRYING.value and row.attempts == attempts[str(row.id)]
    ]
    if lost:
        log.warning("parked_pages_rescued", channel=channel, target=position, count=len(lost))
        deliver_soon(rt, lost)
    return len(lost)


def _waits_for(outcome: Outcome | None, target: Target) -> bool:
    decision = outcome.decision if outcome is not None else None
    return isinstance(decision, Retry) and decision.parked_on == target


def _room(rt: Runtime) -> WaitingRoom:
    return WaitingRoom(rt.redis, rt.settings.redis_prefix)


def _queue_drain(rt: Runtime, target: Target, at: float | None, now: float) -> None:
    """Queue ``target``'s drain for ``at`` (epoch seconds; None: one is queued already)."""
    if at is None:
        return
    drain_parked_task.apply_async(
        args=[target.channel, target.position],
        countdown=max(0, math.ceil(at - now)),
        queue=rt.settings.fire_queue,
    )


def _epoch() -> float:
    """Now, in epoch seconds: when a waiting notification's try is due (tests move it)."""
    return time.time()


@app.task(name=DELIVER_NOTIFICATION, retry_backoff_max=30, **_ON_DATABASE_ERRORS)  # type: ignore[untyped-decorator]
def deliver_notification_task(notification_id: int) -> int:
    """One notification: what releases before batches queued (kept so none is dropped)."""
    return int(deliver_notifications_task.run([notification_id]))


def deliver_soon(rt: Runtime, ids: Sequence[int], *, swept_at: datetime | None = None) -> None:
    """Queue delivery of ``ids`` on the fire queue (no event backlog delays a page), in batches;
    ``swept_at``: queued again by beat's minute then (`deliver_notifications_task`)."""
    extra = [] if swept_at is None else [swept_at.isoformat()]
    for start in range(0, len(ids), DELIVER_BATCH):
        deliver_notifications_task.apply_async(
            args=[list(ids[start : start + DELIVER_BATCH]), *extra], queue=rt.settings.fire_queue
        )


@app.task(name=RECONCILE_TIMERS, acks_late=True, expires=55)  # type: ignore[untyped-decorator]
def reconcile_timers_task() -> int:
    """Beat's minute: every armed checkpoint and every coming page repeat (or chain step)
    missing from Redis is armed again (idempotent), notifications held in their route's
    quiet hours whose opening came are handed to `release_held_task`, and those whose try is
    long overdue (its task lost with Redis: `worker.notify.overdue`) are queued again."""
    rt, at = runtime(), datetime.now(UTC)
    with rt.sessions() as session:
        missing = reconcile_timers(session, rt.timers)
        repeats = reconcile_repeats(session, rt.repeats)
        held = due_held(session, at)
    with rt.sessions.begin() as session:
        lost = overdue_tries(session, at)
    if held:  # from the database: a Redis flush or a restart loses none
        release_held_task.apply_async(args=[held], queue=rt.settings.fire_queue)
    if lost:
        log.warning("tries_requeued", count=len(lost), first_id=lost[0])
        deliver_soon(rt, lost, swept_at=at)
    room, now = _room(rt), _epoch()
    for target in room.overdue(now):  # its drain was lost with its worker: another
        log.warning("parked_drain_lost", channel=target.channel, target=target.position)
        _queue_drain(rt, target, room.next_drain(target, now, now), now)
    if missing:
        log.warning("timers_rearmed", missing=missing)
    if repeats:
        log.warning("repeats_rearmed", missing=repeats)
    return missing + repeats


@app.task(name=RELEASE_HELD, **_ON_DATABASE_ERRORS)  # type: ignore[untyped-decorator]
def release_held_task(ids: list[int]) -> int:
    """Held notifications whose quiet hours ended go out, one digest per channel (those whose
    page is over or acknowledged are skipped); how many were sent. Queued twice, the second
    finds them sent."""
    rt = runtime()
    deliverer = _deliverer(rt)
    outcomes = _with_fallbacks(
        rt, deliverer, lambda session: release_held(session, deliverer, ids, datetime.now(UTC))
    )
    return _after_delivery(rt, outcomes, asked=len(ids))


@app.task(name=REPEAT_PAGES, **_ON_DATABASE_ERRORS)  # type: ignore[untyped-decorator]
def repeat_pages_task(ids: list[int]) -> int:
    """Pages nobody acknowledged go on: a repeat, or their chain's next step (each once, by
    its dedupe key); those acknowledged or over stop, each with a ``chain_stopped`` line."""
    rt, now = runtime(), datetime.now(UTC)
    rt.repeats.extend(ids, now + _LEASE)  # leased from this start, as the fire task's
    with rt.sessions.begin() as session:
        done = repeat_pages(session, rt.policies, ids, now, directory=rt.directory)
    rt.repeats.arm(done.later)  # the lane was ahead of the database: back at its time
    rt.repeats.release(ids)
    deliver_soon(rt, done.to_deliver)
    for stop in done.stopped:
        _chain_stopped(stop)
    log.info(
        "pages_repeated",
        repeated=len(done.written),
        unsent=len(done.unsent),
        stopped=len(done.stopped),
        later=len(done.later),
    )
    return len(done.written)


def _chain_stopped(stop: Stopped) -> None:
    log.info(
        "chain_stopped",
        source=stop.source,
        ticket_id=stop.ticket_id,
        checkpoint=stop.checkpoint,
        checkpoint_id=stop.checkpoint_id,
        route=stop.route,
        repeat=stop.repeat,
        reason=stop.reason.value,
        by=stop.by,
        acknowledged_at=stop.at.isoformat() if stop.at else None,
    )


@worker_init.connect  # type: ignore[untyped-decorator]  # celery is untyped
def _load_apprise_before_fork(**_: Any) -> None:
    warm_apprise()


@worker_ready.connect  # type: ignore[untyped-decorator]  # celery is untyped
def _end_leases_of_the_dead(**_: Any) -> None:
    end_leases_at_start(runtime(), datetime.now(UTC))


def end_leases_at_start(rt: Runtime, now: datetime) -> None:
    """A worker starting (after a kill, most often) ends every lease: the batches a killed
    worker held in its prefetch go back to the due set at beat's next tick, not minutes later
    (`shared.redis_keys.QUEUED_LEASE_SECONDS`). Kombu would bring their messages back only
    after its visibility timeout; the fire task they carry then finds them fired."""
    timers, repeats = rt.timers.end_leases(now), rt.repeats.end_leases(now)
    if timers or repeats:
        log.info("leases_ended_at_start", checkpoints=timers, repeats=repeats)


def _ack_links(rt: Runtime) -> tuple[str, str] | None:
    config = rt.settings
    if config.public_url is None or config.ack_secret is None:
        return None
    return config.public_url, config.ack_secret.get_secret_value()
