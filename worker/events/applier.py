"""The worker's event applier: drains the events queue in batches into the database.

Each round takes whatever the queue holds (up to ``batch``), lets a small batch fill for up to
``ESCALERA_APPLY_LINGER_MS``, applies it in one transaction
(`worker.events.apply.apply_events`), re-arms the timer index after the commit, then
acknowledges the batch. A database outage keeps the batch in hand and retries it with backoff;
a batch that fails for any other reason is applied one event at a time, and an event that
still fails is dead-lettered with the error: never dropped, never blocking the others.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import structlog
from redis.exceptions import RedisError
from sqlalchemy.exc import InterfaceError, OperationalError

from shared import metrics
from shared.celery_app import DELIVER_NOTIFICATION, app, queue_key
from shared.db.models import DeadLetter
from shared.events import Event
from shared.text import storable
from worker.events.apply import Applied, apply_events, dead_letter
from worker.events.message import decode
from worker.events.queue import EventQueue, consumer_id
from worker.runtime import Runtime

log = structlog.get_logger("escalera.applier")

BATCH = 500  # events per transaction at most; the queue's backlog decides how many are taken
# A batch of fewer than FILL events waits up to the linger for more, looking every LINGER_POLL_S.
# A transaction costs about 8 ms of the worker's CPU and 6 ms of PostgreSQL's whatever it holds
# (bench/README.md "Batch size"): at 400 events/s, batches of 8 cost twice as much per event as
# batches of 40.
FILL = 100
LINGER_POLL_S = 0.02
REAP_EVERY_S = 5.0
_TRANSIENT = (OperationalError, InterfaceError)  # the database is down or restarting


class Applier:
    def __init__(
        self,
        rt: Runtime,
        queue: EventQueue,
        forward: Callable[[bytes], object],
        batch: int = BATCH,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        retry_first_s: float = 0.5,
        linger_s: float = 0.0,
        gathering: threading.Lock | None = None,
    ) -> None:
        self.rt, self.queue, self.forward, self.batch, self.clock = rt, queue, forward, batch, clock
        self.retry_first_s = retry_first_s  # the first wait for a database that is down
        self.linger_s = linger_s  # how long a small batch may wait to fill
        # Held while a batch is gathered: the process's appliers gather one at a time (while the
        # others apply), so a trickle of events fills one batch instead of one per applier.
        self.gathering = gathering or threading.Lock()

    def run(self, stop: threading.Event) -> None:
        """Apply until ``stop`` is set; a clean stop hands any unfinished batch back."""
        backoff = _Backoff()
        last_reap = 0.0
        joined = False
        # A batch may be in hand from before a crash or a Redis error: finish it first. Taking
        # more would mix new events into it, and acknowledging would drop what was never stored.
        unsure = True
        while not stop.is_set():
            try:
                if not joined:
                    self.queue.join()
                    joined = True
                if time.monotonic() - last_reap >= REAP_EVERY_S:
                    if returned := self.queue.reap():
                        log.warning("events_requeued_from_dead_worker", events=returned)
                    last_reap = time.monotonic()
                batch = self.queue.in_hand() if unsure else []
                batch = batch or self._gather(stop)
                unsure = True  # until the batch is acknowledged
                if batch and self.apply(batch, stop):
                    self.queue.ack()
                unsure = False
                backoff.reset()
            except RedisError as exc:
                unsure = True
                log.warning("queue_unavailable", error=str(exc), retry_in_s=backoff.delay)
                stop.wait(backoff.next())
        try:
            self.queue.leave()
        except RedisError:  # its heartbeat expires and another worker reaps the batch
            log.warning("queue_unavailable_at_stop")

    def _gather(self, stop: threading.Event) -> list[bytes]:
        """The next batch: what the queue holds, waiting up to a second for the first event;
        then, while the batch is under `FILL` events, what arrives within `linger_s`. Each
        event taken is in this applier's processing list at once, as with a single take."""
        with self.gathering:
            batch = self.queue.take(self.batch, block_s=1)
            waited = 0.0
            while batch and len(batch) < min(FILL, self.batch) and waited < self.linger_s:
                step = min(LINGER_POLL_S, self.linger_s - waited)
                if stop.wait(step):
                    break
                waited += step
                batch += self.queue.take(self.batch - len(batch), block_s=0)
            return batch

    def apply(self, raw: Sequence[bytes], stop: threading.Event) -> bool:
        """Apply one batch; False if stopped before it could be committed (it stays in hand)."""
        events: list[Event] = []
        messages: list[bytes] = []
        for message, decoded in zip(raw, map(decode, raw), strict=True):
            if decoded.event is not None:
                events.append(decoded.event)
                messages.append(message)
            elif decoded.other_task is not None:  # another task routed here: send it on
                self.forward(message)
            else:
                self._unreadable(message, decoded.error or "unreadable")
        return self.apply_events(events, stop, messages) is not None

    def apply_events(
        self,
        events: list[Event],
        stop: threading.Event | None = None,
        messages: Sequence[bytes] | None = None,
    ) -> list[Applied] | None:
        """Commit, index and log ``events`` (``messages``: each one's queue message, kept with
        it if it is dead-lettered); None if stopped while the database was down."""
        backoff = _Backoff(self.retry_first_s)
        while True:
            try:
                results = self._commit(events, messages)
                break
            except _TRANSIENT as exc:
                log.warning(
                    "database_unavailable",
                    events=len(events),
                    error=type(exc).__name__,
                    retry_in_s=backoff.delay,
                )
                self.queue.beat()
                if (stop or threading.Event()).wait(backoff.next()):
                    return None
        self._index(results)
        for notification_id in (n for result in results for n in result.notifications):
            app.send_task(DELIVER_NOTIFICATION, args=[notification_id])
        for result in results:
            metrics.event_applied(result.source, result.outcome.value, result.changes.added)
            log.info(
                "event_applied",
                source=result.source,
                ticket_id=result.ticket_id,
                event_id=result.event_id,
                outcome=result.outcome.value,
                checkpoints_added=len(result.changes.added),
                checkpoints_moved=len(result.changes.moved),
                checkpoints_cancelled=len(result.changes.cancelled),
                error=result.error,
            )
        return results

    def _commit(self, events: list[Event], messages: Sequence[bytes] | None) -> list[Applied]:
        sessions, now = self.rt.sessions, self.clock()
        try:
            with sessions.begin() as session:
                return apply_events(session, self.rt.policies, events, now)
        except _TRANSIENT:
            raise
        except Exception:
            log.exception("batch_failed", events=len(events))
        results = []
        for i, event in enumerate(events):  # find the event that fails; the others apply
            try:
                with sessions.begin() as session:
                    results += apply_events(session, self.rt.policies, [event], now)
            except _TRANSIENT:
                raise
            except Exception as exc:
                log.exception(
                    "event_failed",
                    source=storable(event.source),
                    ticket_id=storable(event.ticket_id),
                    event_id=storable(event.event_id),
                )
                error = f"{type(exc).__name__}: {exc}"
                results.append(self._dead_letter(event, error, messages[i] if messages else None))
        return results

    def _dead_letter(self, event: Event, error: str, message: bytes | None) -> Applied:
        """Dead-letter in a transaction of its own. Its text is made storable, so only the
        database's being down can make it fail; then the batch stays in hand and is retried."""
        with self.rt.sessions.begin() as session:
            return dead_letter(session, event, error, message or None)

    def _index(self, results: list[Applied]) -> None:
        """After the commit: the timer index follows the re-planned checkpoints.

        Redis failing here loses nothing: the database holds every armed checkpoint, and
        reconcile re-arms what the index is missing.
        """
        arm = [(c.id, c.due_at) for r in results for c in r.changes.added]
        arm += [(c.id, c.due_at) for r in results for c, _old in r.changes.moved]
        gone = [c.id for r in results for c in r.changes.cancelled]
        try:
            self.rt.timers.arm(arm)
            self.rt.timers.disarm(gone)
        except RedisError:
            log.warning("timer_index_unavailable", armed=len(arm), disarmed=len(gone))

    def _unreadable(self, message: bytes, error: str) -> None:
        """Kept as a dead letter (an operator can read it), never silently dropped."""
        digest = hashlib.sha256(message).hexdigest()[:16]
        log.error("queue_message_unreadable", digest=digest, error=storable(error))
        text = storable(message.decode("utf-8", "replace"))
        with self.rt.sessions.begin() as session:
            session.add(
                DeadLetter(
                    source="?",
                    event_id=digest,
                    ticket_id="?",
                    payload={"unreadable_message": text},
                    error=storable(error),
                    raw=message,
                )
            )


class _Backoff:
    def __init__(self, first: float = 0.5, most: float = 30.0) -> None:
        self.first, self.most, self.delay = first, most, first

    def next(self) -> float:
        delay, self.delay = self.delay, min(self.delay * 2, self.most)
        return delay

    def reset(self) -> None:
        self.delay = self.first


def make_applier(
    rt: Runtime, batch: int = BATCH, gathering: threading.Lock | None = None
) -> Applier:
    """An applier of the events queue as the ingest service fills it (Celery's list);
    ``gathering``: the lock the process's appliers share (`Applier.gathering`)."""
    config = rt.settings
    queue = EventQueue(
        rt.redis, queue_key(config, config.events_queue), config.redis_prefix, consumer_id()
    )
    fire_queue = queue_key(config, config.fire_queue)
    return Applier(
        rt,
        queue,
        lambda message: rt.redis.lpush(fire_queue, message),
        batch,
        linger_s=config.apply_linger_ms / 1000,
        gathering=gathering,
    )
