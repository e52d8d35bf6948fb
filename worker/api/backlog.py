"""Backpressure: past a configured depth of the events queue, a write is refused whole (503).

Workers that fall behind (a slow database, too few of them, a burst) leave events waiting on the
Redis list ingest fills. Unbounded, that list grows until Redis runs out of memory and refuses
every write. Instead, at ``ESCALERA_INGEST_MAX_QUEUE`` events waiting, ingest answers 503 with
``Retry-After`` before it queues anything of the request, so the sender keeps the events and
sends them again (docs/reliability.md, "When the events queue is full").

`Backlog` is the depth this process last saw and how fresh it is; the publisher does the reading:
every LPUSH answers with the list's new length, so under load the depth is known for free, and
only a process that has not pushed within `FRESH_S` (idle, or refusing) asks Redis with LLEN.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from shared.config import Settings
from worker.adapters.base import RejectedRequest

# When to come back. How fast the queue drains is not known to one ingest process without
# sampling it over time (and other processes fill it meanwhile), so a constant: one worker
# applies about 800 events/s (bench/apply_bench.py), so 10 s frees some 8,000 places, several of
# the largest requests (ESCALERA_MAX_BATCH, 1,000); sooner mostly meets the same full queue. A
# later event loses nothing but time: it is evaluated at its own timestamp.
RETRY_AFTER_S = 10

# How long a depth read stands for this process: at most one LLEN per 100 ms while nothing is
# pushed. The queue may meanwhile pass the limit by what the processes accept in that time.
FRESH_S = 0.1


class QueueFull(RejectedRequest):
    """The events queue holds ``limit`` events or more: 503, nothing of the request queued."""

    status = 503
    metric_reason = "queue_full"  # escalera_ingest_refused_total's reason (else "unavailable")

    def __init__(self, depth: int, limit: int) -> None:
        super().__init__(
            f"the events queue is full: {depth:,} events wait, the limit is {limit:,} "
            f"(ESCALERA_INGEST_MAX_QUEUE); nothing of this request was queued: send it again "
            f"in {RETRY_AFTER_S} s"
        )
        self.depth, self.limit = depth, limit
        self.retry_after = RETRY_AFTER_S


class Backlog:
    """The events queue's depth as this process last saw it, against the limit (0: none)."""

    def __init__(
        self, limit: int, clock: Callable[[], float] = time.monotonic, fresh_s: float = FRESH_S
    ) -> None:
        self.limit, self._clock, self._fresh_s = limit, clock, fresh_s
        self._depth, self._seen_at = 0, -math.inf

    @classmethod
    def from_settings(cls, config: Settings) -> Backlog:
        return cls(config.ingest_max_queue)

    def stale(self) -> bool:
        """True when the depth should be read again before it decides anything."""
        return self._clock() - self._seen_at >= self._fresh_s

    def saw(self, depth: int) -> None:
        """The queue's depth, just read (LLEN) or just made (LPUSH's reply)."""
        self._depth, self._seen_at = depth, self._clock()

    def check(self) -> None:
        """Raise `QueueFull` if the queue was at or past the limit when last seen."""
        if self.limit and self._depth >= self.limit:
            raise QueueFull(self._depth, self.limit)
