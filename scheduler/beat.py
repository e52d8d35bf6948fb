"""``escalera beat``: Celery beat whose every tick also hands due checkpoints to the fire queue.

Beat's own entries (reconcile every minute) run as usual; on top, each ``tick`` runs one
`Dispatcher` pass and sleeps no longer than until the next due checkpoint (at most a second).
The pass reads the fire queue's depth first: a full queue holds claims back (backpressure).
Claiming in beat's own process, not in a task beat sends, keeps firing independent of any
backlog on the queues (ARCHITECTURE.md). A second beat is harmless: claims are atomic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from celery.beat import Scheduler
from redis import Redis
from redis.exceptions import RedisError

from scheduler.dispatch import MAX_SLEEP_S, Dispatcher
from scheduler.timer_index import TimerIndex
from shared.celery_app import FIRE_CHECKPOINTS, RECONCILE_TIMERS, REPEAT_PAGES
from shared.config import settings
from shared.logging import log
from shared.metrics_export import QueueDepth
from shared.redis_keys import REPEATS, celery_prefix


class EscaleraScheduler(Scheduler):  # type: ignore[misc]  # celery is untyped
    @cached_property
    def dispatcher(self) -> Dispatcher:
        config = settings()
        redis = Redis.from_url(config.redis_url, socket_timeout=5)
        checkpoints = TimerIndex(redis, config.redis_prefix)
        repeats = TimerIndex(redis, config.redis_prefix, REPEATS)
        # both lanes' tasks go to the fire queue (its depth holds their claims back)
        fire = QueueDepth(redis, celery_prefix(config.redis_prefix), [config.fire_queue])
        return Dispatcher(
            checkpoints,
            self._sender(FIRE_CHECKPOINTS),
            also=[(repeats, self._sender(REPEAT_PAGES))],
            queue_depth=lambda: fire.depths()[config.fire_queue],
        )

    def _sender(self, task: str) -> Callable[[Sequence[int]], None]:
        return lambda ids: self.app.send_task(task, args=[list(ids)])

    def setup_schedule(self) -> None:
        super().setup_schedule()
        # At start: a Redis that lost its timers while beat was down is refilled at once.
        self.app.send_task(RECONCILE_TIMERS)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        delay = float(super().tick(*args, **kwargs))
        try:
            dispatched = self.dispatcher.tick(datetime.now(UTC))
        except RedisError as exc:
            # Redis restarting: try again next second instead of ending the process (found by
            # tests/chaos/test_redis_loss.py). Claims are atomic, so nothing is half done.
            log.warning("timer_index_unavailable", error=type(exc).__name__)
            return min(delay, MAX_SLEEP_S)
        return min(delay, dispatched.sleep_s)
