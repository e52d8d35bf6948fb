"""Turns for heavy reads: at most N evaluations run at once, M more wait, the rest are refused.

A ticket read evaluates its whole history on a thread, which holds a core (and the GIL) for as
long as the history is long. Left unbounded, 45 concurrent reads of a 5,000-event ticket took
every thread of the pool and most of the GIL, and ``/healthz`` answered in 24 s. With turns,
waiting reads hold nothing but a future on the event loop, and a read that would wait beyond
the queue is told when to come back (``Retry-After``) instead of piling up.

Everything here runs on the event loop's thread: no lock is needed.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool

from worker.adapters.base import RejectedRequest

MAX_RETRY_AFTER_S = 60
T = TypeVar("T")


class ReadsBusy(RejectedRequest):
    """Every turn is taken and the queue is full: 503, come back in ``retry_after`` seconds."""

    status = 503

    def __init__(self, retry_after: int, running: int, queued: int) -> None:
        super().__init__(
            f"{running} reads are running and {queued} waiting: try again in {retry_after} s"
        )
        self.retry_after = retry_after


class ReadSlots:
    """``at_once`` turns, ``waiting`` places in the queue for one, first come first served."""

    def __init__(self, at_once: int, waiting: int) -> None:
        if at_once < 1 or waiting < 0:
            raise ValueError(f"read turns: at_once={at_once} >= 1, waiting={waiting} >= 0")
        self.at_once, self.waiting = at_once, waiting
        self.running = 0
        self._queue: deque[asyncio.Future[None]] = deque()
        self._seconds = 1.0  # a moving average of one read's duration, for Retry-After

    @property
    def queued(self) -> int:
        return len(self._queue)

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Hold a turn for the body; raises `ReadsBusy` at once when none can be had."""
        await self._acquire()
        started = time.monotonic()
        try:
            yield
        finally:
            self._seconds = 0.8 * self._seconds + 0.2 * (time.monotonic() - started)
            self._release()

    async def run(self, read: Callable[..., T], *args: Any) -> T:
        """``read(*args)`` on the thread pool, in a turn (`ReadsBusy` when none can be had)."""
        async with self.turn():
            return await run_in_threadpool(read, *args)

    def retry_after(self) -> int:
        """Seconds until the queue ahead of a new read has likely drained (1 to 60)."""
        ahead = (self.running + self.queued) / self.at_once
        return max(1, min(MAX_RETRY_AFTER_S, math.ceil(ahead * self._seconds)))

    async def _acquire(self) -> None:
        if self.running < self.at_once and not self._queue:
            self.running += 1
            return
        if len(self._queue) >= self.waiting:
            raise ReadsBusy(self.retry_after(), self.running, self.queued)
        handed = asyncio.get_running_loop().create_future()
        self._queue.append(handed)
        try:
            await handed  # a finishing read hands its turn over: ``running`` stays as it is
        except asyncio.CancelledError:
            if handed.done() and not handed.cancelled():
                self._release()  # handed a turn just as the client went away: pass it on
            elif handed in self._queue:
                self._queue.remove(handed)
            raise

    def _release(self) -> None:
        while self._queue:
            handed = self._queue.popleft()
            if not handed.done():
                handed.set_result(None)
                return
        self.running -= 1
