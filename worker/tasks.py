"""Celery tasks: thin wrappers that decode, call a plain service, and map errors to retries."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any, NamedTuple

import structlog
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
from worker.notify.deliver import AppriseSender, Deliverer, Delivery, channel_urls, scheme
from worker.notify.paging import repeat_pages
from worker.reconcile import reconcile_timers
from worker.runtime import Runtime, runtime

log = structlog.get_logger("escalera.worker")


@app.task(name=APPLY_EVENT, acks_late=True)  # type: ignore[untyped-decorator]
def apply_event_task(event: dict[str, Any]) -> str:
    """One event message that Celery itself consumed (a worker started with ``-Q events``).

    The worker's applier normally drains the events queue in batches (`worker.applier`); this
    applies the same way: a database outage is retried, a failing event is dead-lettered.
    """
    results = make_applier(runtime()).apply_events([Event.model_validate(event)])
    assert results is not None  # without a stop signal it returns only once committed
    return results[0].outcome.value


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
    rt, now = runtime(), datetime.now(UTC)
    with rt.sessions.begin() as session:
        result = fire_checkpoints(session, rt.policies, ids, now)
        fired = [_Fired.of(session.get_one(Checkpoint, cid), session) for cid in result.fired]
    rt.timers.arm(result.later)  # moved later since it was claimed: back in the index
    rt.timers.release(ids)
    for notification_id in result.notifications:
        deliver_notification_task.apply_async(args=[notification_id])
    for one in fired:
        metrics.checkpoint_fired(one.kind, one.due_at, now)
        log.info(
            "checkpoint_fired", **one.log_fields(), lateness_s=(now - one.due_at).total_seconds()
        )
    log.info(
        "checkpoints_fired",
        fired=result.fired,
        notifications=len(result.notifications),
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
        target = _Target.of(session, notification_id)
    if outcome.repeat_at is not None:
        rt.repeats.arm([(notification_id, outcome.repeat_at)])
    metrics.notification_delivered(target.scheme, outcome.delivery.value)
    log.info(
        "notification_delivery",
        notification_id=notification_id,
        **target.log_fields(),
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


class _Fired(NamedTuple):
    """What the logs and metrics say of a fired checkpoint."""

    checkpoint: int
    key: str
    kind: str
    due_at: datetime
    source: str
    ticket_id: str

    @classmethod
    def of(cls, row: Checkpoint, session: Session) -> _Fired:
        ticket = session.get_one(Ticket, row.ticket_pk)  # loaded by the fire query: no round trip
        return cls(row.id, row.key, row.kind, row.due_at, ticket.source, ticket.ticket_id)

    def log_fields(self) -> dict[str, Any]:
        return {**self._asdict(), "due_at": self.due_at.isoformat()}


class _Target(NamedTuple):
    """Whom a notification was for: its checkpoint, ticket and channel (the scheme, no URL)."""

    checkpoint: int | None
    source: str | None
    ticket_id: str | None
    channel: str | None
    scheme: str

    @classmethod
    def of(cls, session: Session, notification_id: int) -> _Target:
        notification = session.get(Notification, notification_id)  # loaded by the deliverer
        if notification is None:
            return cls(None, None, None, None, "none")
        ticket = session.get_one(
            Ticket, session.get_one(Checkpoint, notification.checkpoint_id).ticket_pk
        )
        schemes = sorted({scheme(url) for url in channel_urls(notification.channel, os.environ)})
        return cls(
            notification.checkpoint_id,
            ticket.source,
            ticket.ticket_id,
            notification.channel,
            "+".join(schemes) or "none",
        )

    def log_fields(self) -> dict[str, Any]:
        return self._asdict()


def _ack_links(rt: Runtime) -> tuple[str, str] | None:
    config = rt.settings
    if config.public_url is None or config.ack_secret is None:
        return None
    return config.public_url, config.ack_secret.get_secret_value()
