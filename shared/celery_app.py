"""The Celery application every Escalera process shares (broker: Redis).

Creating it connects to nothing; the broker is reached on the first publish or consume.
Delivery is at-least-once (``acks_late``; a task whose worker dies is redelivered) and every task
is idempotent, so the effect is exactly once.
"""

from __future__ import annotations

from celery import Celery

from shared.config import Settings, settings
from shared.redis_keys import celery_prefix, queue_list

APPLY_EVENT = "escalera.apply_event"
FIRE_CHECKPOINTS = "escalera.fire_checkpoints"
DELIVER_NOTIFICATION = "escalera.deliver_notification"
RECONCILE_TIMERS = "escalera.reconcile_timers"
REPEAT_PAGES = "escalera.repeat_pages"
RECONCILE_EVERY_S = 60.0


def key_prefix(config: Settings) -> str:
    """Keys of Celery's own live under the same Redis as our timers: keep them apart."""
    return celery_prefix(config.redis_prefix)


def queue_key(config: Settings, queue: str) -> str:
    """The Redis list a queue's messages wait in (the worker's applier drains the events one)."""
    return queue_list(key_prefix(config), queue)


def make_celery(config: Settings) -> Celery:
    app = Celery("escalera", broker=config.redis_url, include=["worker.tasks"])
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        # Events have their own queue, drained in batches by the worker's applier (not by
        # Celery); every other task (firing, delivery) goes to the fire queue, so a backlog of
        # ingested events never delays a page.
        task_default_queue=config.fire_queue,
        task_routes={APPLY_EVENT: {"queue": config.events_queue}},
        # Re-arm every armed checkpoint Redis lost (a restart, a FLUSHALL); beat also sends
        # one at start (scheduler/beat.py).
        beat_schedule={
            "reconcile-timers": {"task": RECONCILE_TIMERS, "schedule": RECONCILE_EVERY_S}
        },
        worker_prefetch_multiplier=8,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "global_keyprefix": key_prefix(config),
            "visibility_timeout": config.broker_visibility_timeout_s,
            # look for a dead worker's tasks every 10 s, not kombu's default 100 s (10 s x 10)
            "unacked_restore_throttle": 1,
        },
        worker_hijack_root_logger=False,
    )
    return app


app = make_celery(settings())
