"""Every Redis key and lease Escalera uses outside Celery's own, in one place.

All keys live under the configured prefix (``ESCALERA_REDIS_PREFIX``, default ``escalera``), so
several deployments or test runs can share one Redis.
"""

from __future__ import annotations

from dataclasses import dataclass

# A claimed checkpoint stays leased this long. A fire task normally finishes in well under a
# second; a worker killed mid-fire has its claims returned to the due set once this passes, so
# a lost worker delays a checkpoint by at most this much, and never loses it.
LEASE_SECONDS = 60

# Checkpoints claimed per Lua call and sent per fire task. ARCHITECTURE.md said up to 100; a
# fire task's own cost (two transactions, a message per channel, Celery's hand-off) made a burst
# of 100,000 take 16 s that way, and 8-10 s in batches of 1,000 (`bench/delivery_bench.py`).
# Only a burst fills a batch: a tick's claim is whatever is due, so single pages are unaffected.
CLAIM_BATCH = 1000


@dataclass(frozen=True)
class TimerKeys:
    due: str  # ZSET: checkpoint id -> due instant (epoch seconds)
    inflight: str  # ZSET: checkpoint id -> lease deadline (epoch seconds)

    @classmethod
    def under(cls, prefix: str, name: str = "timers") -> TimerKeys:
        """``timers``: armed checkpoints; ``repeats``: unacknowledged pages' next repeat."""
        return cls(due=f"{prefix}:{name}:due", inflight=f"{prefix}:{name}:inflight")
