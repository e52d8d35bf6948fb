"""Putting accepted events on the queue. A 202 is answered only after this returns.

Each event becomes one ``apply_event`` task message (`worker.events.message`, where the applier
reads it too); all of a request's messages are pushed with a single LPUSH.

How durable a 202 is depends on `Durability` (``ESCALERA_DURABILITY``, docs/reliability.md "What
a 202 means"): ``local`` answers once the primary holds the events; ``replica`` sends ``WAIT n
timeout`` right behind the LPUSH, on the same connection (WAIT counts the replicas that hold this
connection's writes), and answers only once n replicas confirmed them, else `NotReplicated` (503,
Retry-After). The events of a 503 may still be applied: they are on the primary. The portal's
retry carries the same event ids, which the worker stores once per ``(source, event_id)``.

Before anything is pushed, `Backlog` (``ESCALERA_INGEST_MAX_QUEUE``) refuses the whole request
with `QueueFull` (503, Retry-After) while the queue is at its limit: nothing of it is queued.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import redis.exceptions
import structlog
from celery import Celery
from redis.asyncio import Redis

from shared.config import Settings, settings
from shared.events import Event
from shared.redis_keys import queue_list
from worker.adapters.base import RejectedRequest
from worker.api.backlog import Backlog, QueueFull
from worker.events.message import encode

log = structlog.get_logger("escalera.ingest")

# What a 503 for unconfirmed replication tells the portal: a replica that missed one WAIT is
# usually back within seconds (a restart, a resync); sooner would only meet the same replica.
RETRY_AFTER_S = 5

# How long a request waits on Redis (its reads and writes, WAIT's own timeout aside) before it is
# answered 503 as a store outage. One deadline over the request, not redis-py's
# ``socket_timeout``: that wraps every command's write in ``asyncio.wait_for``, a task of its own
# per command.
IO_TIMEOUT_S = 5.0


class Publisher(Protocol):
    async def publish(self, events: Sequence[Event]) -> None:
        """Durably enqueue every event, or raise."""


@dataclass(frozen=True)
class Durability:
    """What a 202 waits for: the primary alone (``replicas == 0``), or that many replicas too."""

    replicas: int = 0
    timeout_ms: int = 0

    @classmethod
    def from_settings(cls, config: Settings) -> Durability:
        if config.durability == "replica":
            return cls(config.durability_replicas, config.durability_timeout_ms)
        return cls()


class NotReplicated(RejectedRequest):
    """Fewer replicas than required confirmed a request's events in time: 503, retry later.

    The events are on the primary and may well be applied; the retry is a duplicate the worker
    stores once. ``retry_after`` is the ``Retry-After`` header's seconds.
    """

    status = 503

    def __init__(self, confirmed: int, durability: Durability) -> None:
        super().__init__(
            f"the events reached {confirmed} of the {durability.replicas} Redis replica(s) "
            f"required within {durability.timeout_ms} ms; retry (a repeat is stored once)"
        )
        self.retry_after = RETRY_AFTER_S


class QueuePublisher:
    """``apply_event`` task messages LPUSHed onto the events queue, one round trip a request."""

    def __init__(
        self,
        app: Celery,
        redis: Redis,
        queue: str,
        durability: Durability | None = None,
        backlog: Backlog | None = None,
        *,
        io_timeout_s: float = IO_TIMEOUT_S,
    ) -> None:
        """``durability`` and ``backlog``: the process's settings' (``ESCALERA_DURABILITY``,
        ``ESCALERA_INGEST_MAX_QUEUE``) when not given. ``redis`` needs no ``socket_timeout``:
        a request that waits on it past ``io_timeout_s`` raises redis' `TimeoutError`."""
        self._app, self._redis, self._queue = app, redis, queue
        prefix = app.conf.broker_transport_options.get("global_keyprefix", "")
        self._key = queue_list(prefix, queue)
        self.durability = durability or Durability.from_settings(settings())
        self.backlog = backlog or Backlog.from_settings(settings())
        self._deadline_s = io_timeout_s + self.durability.timeout_ms / 1000

    async def publish(self, events: Sequence[Event]) -> None:
        if not events:
            return
        deadline = asyncio.timeout(self._deadline_s)
        try:
            async with deadline:
                await self._publish(events)
        except TimeoutError:
            if not deadline.expired():
                raise
            # redis-py closed the connection it was cancelled on: the next request opens another
            raise redis.exceptions.TimeoutError(
                f"Redis did not answer within {self._deadline_s:g} s"
            ) from None

    async def _publish(self, events: Sequence[Event]) -> None:
        await self._admit(events)
        if not self.durability.replicas:
            self.backlog.saw(await self._redis.lpush(self._key, *self.messages(events)))
            return
        depth, confirmed = await self._push_and_wait(self.messages(events))
        self.backlog.saw(depth)
        if confirmed < self.durability.replicas:
            log.warning(
                "events_not_replicated",
                source=events[0].source,
                ticket_id=events[0].ticket_id,
                count=len(events),
                replicas=confirmed,
                required=self.durability.replicas,
                timeout_ms=self.durability.timeout_ms,
            )
            raise NotReplicated(confirmed, self.durability)

    async def _admit(self, events: Sequence[Event]) -> None:
        """Refuse the request (`QueueFull`) while the queue is at its limit; read its depth
        (LLEN) only when this process has not seen it lately."""
        if not self.backlog.limit:
            return
        if self.backlog.stale():
            self.backlog.saw(await self._redis.llen(self._key))
        try:
            self.backlog.check()
        except QueueFull as full:
            log.warning(
                "events_queue_full",
                source=events[0].source,
                ticket_id=events[0].ticket_id,
                count=len(events),
                depth=full.depth,
                limit=full.limit,
                retry_after=full.retry_after,
            )
            raise

    async def _push_and_wait(self, messages: list[str]) -> tuple[int, int]:
        """LPUSH, then WAIT on the same connection: the queue's new depth, and how many
        replicas hold the push."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.lpush(self._key, *messages)
            pipe.wait(self.durability.replicas, self.durability.timeout_ms)
            depth, confirmed = await pipe.execute()
        return int(depth), int(confirmed)

    def messages(self, events: Sequence[Event]) -> list[str]:
        return [self._message(event) for event in events]

    def _message(self, event: Event) -> str:
        return encode(self._app, self._queue, event)
