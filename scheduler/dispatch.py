"""Handing due checkpoints to the fire queue: one pass, and when to look again.

Beat's ``tick()`` calls `Dispatcher.tick` (celery beat's own shape: do one pass, return the
delay instead of sleeping). The claim is atomic in Redis, so a second beat running the same
loop is harmless: each checkpoint is claimed once. Sending is at-least-once: if the process
dies after claiming and before sending, the lease expires and the reaper hands the checkpoint
out again; the fire task fires each checkpoint once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from scheduler.timer_index import TimerIndex
from shared import metrics
from shared.redis_keys import CLAIM_BATCH

# Look again at least this often (a checkpoint armed by a worker meanwhile is then at most this
# late), and never spin faster than the minimum when something is due right now.
MAX_SLEEP_S = 1.0
MIN_SLEEP_S = 0.01


@dataclass(frozen=True)
class Pass:
    claimed: int
    reaped: int
    sleep_s: float


Send = Callable[[Sequence[int]], None]


class Dispatcher:
    """Claims from the checkpoint index and, if given, from other lanes (page repeats)."""

    def __init__(
        self, index: TimerIndex, send: Send, *, also: Sequence[tuple[TimerIndex, Send]] = ()
    ) -> None:
        self._lanes = [(index, send), *also]

    def tick(self, now: datetime) -> Pass:
        """Reap expired leases, claim everything due by ``now`` in batches, send each batch."""
        started = time.monotonic()
        claimed = reaped = 0
        for index, send in self._lanes:
            reaped += index.reap(now)
            while batch := index.claim(now, limit=CLAIM_BATCH):
                send(batch)
                claimed += len(batch)
        metrics.beat_ticked(claimed, reaped, now)
        # a long tick (a burst) must not sleep through timers that fell due while it ran
        return Pass(
            claimed, reaped, self._sleep(now + timedelta(seconds=time.monotonic() - started))
        )

    def _sleep(self, now: datetime) -> float:
        dues = [due for index, _ in self._lanes if (due := index.next_due()) is not None]
        if not dues:
            return MAX_SLEEP_S
        return min(MAX_SLEEP_S, max(MIN_SLEEP_S, min(dues) - now.timestamp()))
