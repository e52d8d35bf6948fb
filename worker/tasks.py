"""Celery tasks: thin wrappers that decode, call a plain service, and map errors to retries."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import structlog
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError, OperationalError

from scheduler.timer_index import TimerIndex
from shared.celery_app import (
    APPLY_EVENT,
    DELIVER_NOTIFICATION,
    FIRE_CHECKPOINTS,
    RECONCILE_TIMERS,
    REPEAT_PAGES,
    app,
)
from shared.events import Event
from worker.apply import Applied, apply_event, dead_letter
from worker.fire import fire_checkpoints
from worker.notify.deliver import AppriseSender, Deliverer, Delivery
from worker.notify.paging import repeat_pages
from worker.reconcile import reconcile_timers
from worker.runtime import Runtime, runtime

log = structlog.get_logger("escalera.worker")


@app.task(  # type: ignore[untyped-decorator]  # celery is untyped
    name=APPLY_EVENT,
    acks_late=True,
    autoretry_for=(OperationalError, DBAPIError),  # database down or restarting: retry, never drop
    retry_backoff=True,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=None,
)
def apply_event_task(event: dict[str, Any]) -> str:
    """Apply one canonical event (at-least-once delivery, idempotent on (source, event_id)).

    A database error propagates and is retried. Anything else (a bug in evaluation) would make
    Celery ack and drop the message, so the event is dead-lettered with the error instead:
    never lost, and retryable with ``escalera dead-letters --retry``.
    """
    parsed = Event.model_validate(event)
    rt = runtime()
    try:
        with rt.sessions.begin() as session:
            result = apply_event(session, rt.policies, parsed, datetime.now(UTC))
    except (OperationalError, DBAPIError):
        raise
    except Exception as exc:
        log.exception(
            "event_failed",
            source=parsed.source,
            ticket_id=parsed.ticket_id,
            event_id=parsed.event_id,
        )
        with rt.sessions.begin() as session:
            result = dead_letter(session, parsed, f"{type(exc).__name__}: {exc}")
    _index(rt.timers, result)
    log.info(
        "event_applied",
        source=parsed.source,
        ticket_id=parsed.ticket_id,
        event_id=parsed.event_id,
        type=parsed.type.value,
        outcome=result.outcome.value,
        checkpoints_added=len(result.changes.added),
        checkpoints_moved=len(result.changes.moved),
        checkpoints_cancelled=len(result.changes.cancelled),
        error=result.error,
    )
    return result.outcome.value


def _index(timers: TimerIndex, result: Applied) -> None:
    """After the commit: the timer index follows the re-planned checkpoints.

    Redis failing here loses nothing: the database holds every armed checkpoint, and reconcile
    re-arms what the index is missing.
    """
    changes = result.changes
    try:
        timers.arm([(row.id, row.due_at) for row in changes.added])
        timers.arm([(row.id, row.due_at) for row, _old in changes.moved])
        timers.disarm([row.id for row in changes.cancelled])
    except RedisError:
        log.warning("timer_index_unavailable", source=result.source, ticket_id=result.ticket_id)


@app.task(  # type: ignore[untyped-decorator]  # celery is untyped
    name=FIRE_CHECKPOINTS,
    acks_late=True,
    autoretry_for=(OperationalError, DBAPIError),
    retry_backoff=True,
    retry_backoff_max=10,
    max_retries=None,
)
def fire_checkpoints_task(ids: list[int]) -> int:
    """Fire a claimed batch (at-least-once; each checkpoint fires once), then end the leases."""
    rt = runtime()
    with rt.sessions.begin() as session:
        result = fire_checkpoints(session, rt.policies, ids, datetime.now(UTC))
    rt.timers.arm(result.later)  # moved later since it was claimed: back in the index
    rt.timers.release(ids)
    for notification_id in [*result.notifications, *result.undelivered]:
        deliver_notification_task.apply_async(args=[notification_id])
    log.info(
        "checkpoints_fired",
        fired=result.fired,
        notifications=len(result.notifications),
        undelivered=len(result.undelivered),
        later=len(result.later),
        skipped=len(result.skipped),
    )
    return len(result.fired)


@app.task(  # type: ignore[untyped-decorator]  # celery is untyped
    name=DELIVER_NOTIFICATION,
    bind=True,
    acks_late=True,
    autoretry_for=(OperationalError, DBAPIError),
    retry_backoff=True,
    retry_backoff_max=30,
    max_retries=None,
)
def deliver_notification_task(self: Any, notification_id: int) -> str:
    """Deliver one notification; failed targets retry with backoff up to the route's limit."""
    rt = runtime()
    deliverer = Deliverer(rt.policies, AppriseSender(), os.environ, ack_links=_ack_links(rt))
    with rt.sessions.begin() as session:
        outcome = deliverer.deliver(session, notification_id, datetime.now(UTC))
    if outcome.repeat_at is not None:
        rt.repeats.arm([(notification_id, outcome.repeat_at)])
    log.info(
        "notification_delivery",
        notification_id=notification_id,
        outcome=outcome.delivery.value,
        error=outcome.error,
    )  # errors name a channel's scheme and variable, never its URL
    if outcome.delivery is Delivery.RETRY:
        raise self.retry(countdown=outcome.retry_in_s, max_retries=None)
    if outcome.fallback_id is not None:  # this channel is dead: tell the route's fallback
        deliver_notification_task.apply_async(args=[outcome.fallback_id])
    return outcome.delivery.value


@app.task(name=RECONCILE_TIMERS, acks_late=True, expires=55)  # type: ignore[untyped-decorator]
def reconcile_timers_task() -> int:
    """Beat's minute: every armed checkpoint missing from Redis is armed again (idempotent)."""
    rt = runtime()
    with rt.sessions() as session:
        missing = reconcile_timers(session, rt.timers)
    if missing:
        log.warning("timers_rearmed", missing=missing)
    return missing


@app.task(  # type: ignore[untyped-decorator]  # celery is untyped
    name=REPEAT_PAGES,
    acks_late=True,
    autoretry_for=(OperationalError, DBAPIError),
    retry_backoff=True,
    max_retries=None,
)
def repeat_pages_task(ids: list[int]) -> int:
    """Pages nobody acknowledged go out again (each repeat once, by its dedupe key)."""
    rt = runtime()
    with rt.sessions.begin() as session:
        created = repeat_pages(session, ids, datetime.now(UTC))
    rt.repeats.release(ids)
    for notification_id in created:
        deliver_notification_task.apply_async(args=[notification_id])
    log.info("pages_repeated", repeated=len(created), acknowledged=len(ids) - len(created))
    return len(created)


def _ack_links(rt: Runtime) -> tuple[str, str] | None:
    config = rt.settings
    if config.public_url is None or config.ack_secret is None:
        return None
    return config.public_url, config.ack_secret.get_secret_value()
