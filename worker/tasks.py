"""Celery tasks: thin wrappers that decode, call a plain service, and map errors to retries."""

from __future__ import annotations

import math
import os
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

import structlog
from celery.signals import worker_init
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
from shared.db.models import Checkpoint, Notification, Ticket
from shared.events import Event
from worker.applier import make_applier
from worker.fire import fire_checkpoints
from worker.notify.deliver import (
    AppriseSender,
    Deliverer,
    Delivery,
    Outcome,
    channel_urls,
    scheme,
    warm_apprise,
)
from worker.notify.paging import repeat_pages
from worker.reconcile import reconcile_timers
from worker.runtime import Runtime, runtime

log = structlog.get_logger("escalera.worker")
# A batch of notifications to deliver: many ids in one task (shared.celery_app names the rest).
DELIVER_NOTIFICATIONS = "escalera.deliver_notifications"
DELIVER_BATCH = 500
BUSY_RECHECK_S = 2


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

    The worker's applier normally drains the events queue in batches (`worker.applier`); this
    applies the same way: a database outage is retried, a failing event is dead-lettered.
    """
    results = make_applier(runtime()).apply_events([Event.model_validate(event)])
    assert results is not None  # without a stop signal it returns only once committed
    return results[0].outcome.value


@app.task(name=FIRE_CHECKPOINTS, retry_backoff_max=10, **_ON_DATABASE_ERRORS)  # type: ignore[untyped-decorator]
def fire_checkpoints_task(ids: list[int]) -> int:
    """Fire a claimed batch (at-least-once; each checkpoint fires once), then end the leases."""
    rt, now = runtime(), datetime.now(UTC)
    with rt.sessions.begin() as session:
        result = fire_checkpoints(session, rt.policies, ids, now)
        fired = _Fired.of(session, result.fired)
    rt.timers.arm(result.later)  # moved later since it was claimed: back in the index
    rt.timers.release(ids)
    deliver_soon(rt, [*result.notifications, *result.undelivered])
    for one in fired:
        metrics.checkpoint_fired(one.kind, one.due_at, now)
        log.info(
            "checkpoint_fired", **one.log_fields(), lateness_s=(now - one.due_at).total_seconds()
        )
    log.info(
        "checkpoints_fired",
        fired=result.fired,
        notifications=len(result.notifications),
        undelivered=len(result.undelivered),
        later=len(result.later),
        skipped=len(result.skipped),
    )
    return len(result.fired)


@app.task(name=DELIVER_NOTIFICATIONS, retry_backoff_max=30, **_ON_DATABASE_ERRORS)  # type: ignore[untyped-decorator]
def deliver_notifications_task(ids: list[int]) -> int:
    """Deliver a batch (a storm on a channel becomes digests); how many were sent.

    Notifications with failed targets go back on the queue in one task per second of backoff;
    dead ones' fallbacks are delivered by a task of their own.
    """
    rt = runtime()
    deliverer = Deliverer(rt.policies, AppriseSender(), os.environ, ack_links=_ack_links(rt))
    with rt.sessions.begin() as session:
        outcomes = deliverer.deliver_many(session, ids, datetime.now(UTC))
    with rt.sessions() as session:
        _report_deliveries(session, outcomes)
    rt.repeats.arm([(nid, o.repeat_at) for nid, o in outcomes.items() if o.repeat_at is not None])
    retries: dict[int, list[int]] = defaultdict(list)
    for nid, outcome in outcomes.items():
        if outcome.delivery is Delivery.RETRY and outcome.retry_in_s is not None:
            retries[math.ceil(outcome.retry_in_s)].append(nid)
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
    deliver_soon(rt, [o.fallback_id for o in outcomes.values() if o.fallback_id is not None])
    counts = Counter(outcome.delivery.value for outcome in outcomes.values())
    log.info(
        "notifications_delivered",
        asked=len(ids),
        swept=len(outcomes) - len(ids),
        sent=counts[Delivery.SENT.value],
        retrying=counts[Delivery.RETRY.value],
        dead=counts[Delivery.DEAD.value],
        busy=counts[Delivery.BUSY.value],
    )
    return counts[Delivery.SENT.value]


@app.task(name=DELIVER_NOTIFICATION, retry_backoff_max=30, **_ON_DATABASE_ERRORS)  # type: ignore[untyped-decorator]
def deliver_notification_task(notification_id: int) -> int:
    """One notification: what releases before batches queued (kept so none is dropped)."""
    return int(deliver_notifications_task.run([notification_id]))


def deliver_soon(rt: Runtime, ids: Sequence[int]) -> None:
    """Queue delivery of ``ids`` on the fire queue (no event backlog delays a page), in batches."""
    for start in range(0, len(ids), DELIVER_BATCH):
        deliver_notifications_task.apply_async(
            args=[list(ids[start : start + DELIVER_BATCH])], queue=rt.settings.fire_queue
        )


@app.task(name=RECONCILE_TIMERS, acks_late=True, expires=55)  # type: ignore[untyped-decorator]
def reconcile_timers_task() -> int:
    """Beat's minute: every armed checkpoint missing from Redis is armed again (idempotent)."""
    rt = runtime()
    with rt.sessions() as session:
        missing = reconcile_timers(session, rt.timers)
    if missing:
        log.warning("timers_rearmed", missing=missing)
    return missing


@app.task(name=REPEAT_PAGES, **_ON_DATABASE_ERRORS)  # type: ignore[untyped-decorator]
def repeat_pages_task(ids: list[int]) -> int:
    """Pages nobody acknowledged go out again (each repeat once, by its dedupe key)."""
    rt = runtime()
    with rt.sessions.begin() as session:
        created = repeat_pages(session, ids, datetime.now(UTC))
    rt.repeats.release(ids)
    deliver_soon(rt, created)
    log.info("pages_repeated", repeated=len(created), acknowledged=len(ids) - len(created))
    return len(created)


class _Fired(NamedTuple):
    """What the logs and metrics say of a fired checkpoint."""

    checkpoint: int
    key: str
    kind: str
    due_at: datetime
    source: str
    ticket_id: str

    @classmethod
    def of(cls, session: Session, ids: Sequence[int]) -> list[_Fired]:
        """The fired checkpoints with their tickets, in one query."""
        if not ids:
            return []
        query = (
            select(
                Checkpoint.id,
                Checkpoint.key,
                Checkpoint.kind,
                Checkpoint.due_at,
                Ticket.source,
                Ticket.ticket_id,
            )
            .join(Ticket, Checkpoint.ticket_pk == Ticket.id)
            .where(Checkpoint.id.in_(ids))
        )
        return [cls(*row) for row in session.execute(query)]

    def log_fields(self) -> dict[str, Any]:
        return {**self._asdict(), "due_at": self.due_at.isoformat()}


def _report_deliveries(session: Session, outcomes: dict[int, Outcome]) -> None:
    """A metric and a log line per notification tried: ticket, checkpoint, channel and scheme
    (never a URL); one query for the batch."""
    query = (
        select(
            Notification.id,
            Notification.checkpoint_id,
            Notification.channel,
            Ticket.source,
            Ticket.ticket_id,
        )
        .join(Checkpoint, Notification.checkpoint_id == Checkpoint.id)
        .join(Ticket, Checkpoint.ticket_pk == Ticket.id)
        .where(Notification.id.in_(list(outcomes)))
    )
    schemes: dict[str, str] = {}
    for nid, checkpoint, channel, source, ticket_id in session.execute(query):
        if channel not in schemes:
            urls = channel_urls(channel, os.environ)
            schemes[channel] = "+".join(sorted({scheme(url) for url in urls})) or "none"
        outcome = outcomes[nid]
        if outcome.delivery is Delivery.BUSY:
            continue  # another batch is sending it and reports it
        metrics.notification_delivered(schemes[channel], outcome.delivery.value)
        log.info(
            "notification_delivery",
            notification_id=nid,
            checkpoint=checkpoint,
            source=source,
            ticket_id=ticket_id,
            channel=channel,
            scheme=schemes[channel],
            outcome=outcome.delivery.value,
        )


@worker_init.connect  # type: ignore[untyped-decorator]  # celery is untyped
def _load_apprise_before_fork(**_: Any) -> None:
    warm_apprise()


def _ack_links(rt: Runtime) -> tuple[str, str] | None:
    config = rt.settings
    if config.public_url is None or config.ack_secret is None:
        return None
    return config.public_url, config.ack_secret.get_secret_value()
