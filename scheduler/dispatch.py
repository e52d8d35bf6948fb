"""Handing due checkpoints to the fire queue: one pass, and when to look again.

Beat's ``tick()`` calls `Dispatcher.tick` (celery beat's own shape: do one pass, return the
delay instead of sleeping). The claim is atomic in Redis, so a second beat running the same
loop is harmless: each checkpoint is claimed once. Sending is at-least-once: if the process
dies after claiming and before sending, the lease expires and the reaper hands the checkpoint
out again; the fire task fires each checkpoint once.

Backpressure: given the fire queue's depth, a pass claims and reaps nothing while the queue
holds `FIRE_QUEUE_HOLD` tasks or more, and sends at most enough batches to bring it there.
What falls due meanwhile waits in the due set (cheap) and leaves in fuller batches once the
queue drains, instead of piling up small tasks whose waiting outlasts their leases; a reap
held back would only have queued its checkpoints behind the same backlog. Once a batch is on
the queue its lease is lengthened to ``QUEUED_LEASE_SECONDS``, which covers that bounded wait;
the fire task shortens it again when it starts (docs/reliability.md, "Leases").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from scheduler.timer_index import TimerIndex
from shared import metrics
from shared.redis_keys import CLAIM_BATCH, QUEUED_LEASE_SECONDS

# Look again at least this often (a checkpoint armed by a worker meanwhile is then at most this
# late), and never spin faster than the minimum when something is due right now.
MAX_SLEEP_S = 1.0
MIN_SLEEP_S = 0.01
# Tasks on the fire queue (beside each worker's prefetch, 8 a process) at which beat stops
# claiming: enough that workers never wait for beat, few enough that a task's wait stays far
# inside QUEUED_LEASE_SECONDS. While the queue is that deep, look again this often.
FIRE_QUEUE_HOLD = 10
HELD_SLEEP_S = 0.1
# After a pass that sent a batch, the next waits at least this long: under load the checkpoints
# falling due meanwhile leave together, one fire task for several instead of one each (a fire
# task's own cost, two transactions and its Redis calls, is most of a lone checkpoint's), at
# most this much later. A lone checkpoint, the pass before it having sent nothing, goes at once.
COALESCE_S = 0.1

_QUEUED_LEASE = timedelta(seconds=QUEUED_LEASE_SECONDS)


@dataclass(frozen=True)
class Pass:
    claimed: int
    reaped: int
    sleep_s: float
    held: bool = False  # the fire queue was full: nothing claimed or reaped


Send = Callable[[Sequence[int]], None]
Lane = tuple[TimerIndex, Send]


class Dispatcher:
    """Claims from the checkpoint index and, if given, from other lanes (page repeats).

    ``queue_depth`` (tasks waiting on the fire queue every lane sends to) turns backpressure
    on; without it (benchmarks, tests of one pass) every pass claims all that is due.
    """

    def __init__(
        self,
        index: TimerIndex,
        send: Send,
        *,
        also: Sequence[Lane] = (),
        queue_depth: Callable[[], int] | None = None,
    ) -> None:
        self._lanes: list[Lane] = [(index, send), *also]
        self._queue_depth = queue_depth

    def tick(self, now: datetime) -> Pass:
        """Reap expired leases, claim what is due by ``now`` in batches, send each batch."""
        started = time.monotonic()
        room = self._room()
        held = room == 0
        claimed, reaped = [0] * len(self._lanes), 0
        if not held:
            reaped = sum(index.reap(now) for index, _ in self._lanes)
            room = self._claim(now, room, claimed)
        metrics.beat_ticked(sum(claimed), reaped, now, checkpoints=claimed[0], held=held)
        # a long tick (a burst) must not sleep through timers that fell due while it ran
        sleep_s = self._sleep(now + timedelta(seconds=time.monotonic() - started))
        if room == 0:  # the queue is full: what is due waits for it to drain
            sleep_s = max(sleep_s, HELD_SLEEP_S)
        elif any(claimed):  # what falls due next leaves with what falls due just after it
            sleep_s = max(sleep_s, COALESCE_S)
        return Pass(sum(claimed), reaped, sleep_s, held)

    def _room(self) -> int | None:
        """Batches this pass may send (None: no bound)."""
        if self._queue_depth is None:
            return None
        return max(0, FIRE_QUEUE_HOLD - self._queue_depth())

    def _claim(self, now: datetime, room: int | None, claimed: list[int]) -> int | None:
        """One batch from each lane in turn (a busy lane never starves another) until every
        lane is drained or ``room`` batches went; counts into ``claimed``, returns the room left."""
        lanes = list(enumerate(self._lanes))
        while lanes:
            for entry in list(lanes):
                if room == 0:
                    return room
                lane, (index, send) = entry
                if not (batch := index.claim(now, limit=CLAIM_BATCH)):
                    lanes.remove(entry)
                    continue
                send(batch)
                index.extend(batch, now + _QUEUED_LEASE)  # on the queue: it may wait there
                claimed[lane] += len(batch)
                room = None if room is None else room - 1
        return room

    def _sleep(self, now: datetime) -> float:
        dues = [due for index, _ in self._lanes if (due := index.next_due()) is not None]
        if not dues:
            return MAX_SLEEP_S
        return min(MAX_SLEEP_S, max(MIN_SLEEP_S, min(dues) - now.timestamp()))
