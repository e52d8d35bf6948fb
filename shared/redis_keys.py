"""Every Redis key, lane and lease Escalera uses, in one place, each expiry with its reason.

All keys live under the configured prefix (``ESCALERA_REDIS_PREFIX``, default ``escalera``), so
several deployments or test runs can share one Redis:

- ``<prefix>:timers:due`` / ``:timers:inflight``: armed checkpoints (ZSETs, `TimerKeys`);
- ``<prefix>:repeats:due`` / ``:repeats:inflight``: unacknowledged pages' next repeat;
- ``<prefix>:celery:<queue>``: a Celery queue's list (kombu's ``global_keyprefix``), and kombu's
  own keys beside it (``unacked``, ``unacked_index``, the priority lists);
- ``<prefix>:appliers``: the event appliers' ids (SET), with ``:<id>:processing`` (the batch in a
  consumer's hand, LIST) and ``:<id>:alive`` (its heartbeat, expiring) under it;
- ``<prefix>:breaker:<channel>:<index>``: a channel target found not answering (its circuit
  breaker, `worker.notify.breaker`), expiring once forgotten, and ``:probe`` under it (who
  tries it again when it reopens, expiring); ``:waiting`` under it, the notifications whose
  next try waits for it to reopen (ZSET), and ``:drain``, when the one task that tries them is
  queued for (expiring); ``<prefix>:breakers:waiting``, the targets with such a set (SET);
"""

from __future__ import annotations

from dataclasses import dataclass

# A claim is a lease, and its deadline moves with the batch (docs/reliability.md, "Leases"):
#
# - claimed, not yet sent: LEASE_SECONDS from the claim (beat killed before sending: back then);
# - sent, waiting in the fire queue or a worker's prefetch: QUEUED_LEASE_SECONDS from the claim,
#   set by beat once the task is on the queue, so a backlog does not hand the batch out again;
# - running: LEASE_SECONDS from when the fire task started (set again by each start, a retry's
#   too). A fire task normally finishes in well under a second; a worker killed mid-fire has its
#   claims returned to the due set once this passes, so it delays a checkpoint by at most this.
LEASE_SECONDS = 60
# Longer than a task waits under backpressure: beat claims nothing while the fire queue holds
# `scheduler.dispatch.FIRE_QUEUE_HOLD` tasks, so a task waits behind at most that many plus each
# worker's prefetch (8 a process). Also the longest a sent task that never starts (its message
# lost, or its worker killed holding it; kombu's visibility timeout may bring it back sooner)
# keeps its checkpoints away.
QUEUED_LEASE_SECONDS = 300

# Checkpoints claimed per Lua call and sent per fire task. ARCHITECTURE.md said up to 100; a
# fire task's own cost (two transactions, a message per channel, Celery's hand-off) made a burst
# of 100,000 take 16 s that way, and 8-10 s in batches of 1,000 (`bench/delivery_bench.py`).
# Only a burst fills a batch: a tick's claim is whatever is due, so single pages are unaffected.
CLAIM_BATCH = 1000

# An applier's heartbeat lives this long. A consumer silent this long is dead (kill -9, a lost
# machine): any other applier puts its batch back on the queue. Long enough that a slow batch
# (a 500-event transaction on a loaded database) never looks like a death; a false death is
# harmless anyway, since applying is idempotent.
HEARTBEAT_MS = 15_000

# The timer index's lanes: one pair of ZSETs each.
TIMERS = "timers"  # armed checkpoints, due at their deadline
REPEATS = "repeats"  # pages nobody acknowledged, due at their next repeat


@dataclass(frozen=True)
class TimerKeys:
    due: str  # ZSET: checkpoint id -> due instant (epoch seconds)
    inflight: str  # ZSET: checkpoint id -> lease deadline (epoch seconds)

    @classmethod
    def under(cls, prefix: str, name: str = TIMERS) -> TimerKeys:
        """``TIMERS``: armed checkpoints; ``REPEATS``: unacknowledged pages' next repeat."""
        return cls(due=f"{prefix}:{name}:due", inflight=f"{prefix}:{name}:inflight")


def celery_prefix(prefix: str) -> str:
    """Celery's own keys live under the same Redis as our timers: kombu's ``global_keyprefix``."""
    return f"{prefix}:celery:"


def queue_list(key_prefix: str, queue: str) -> str:
    """The Redis list a queue's messages wait in: the queue's name under kombu's key prefix."""
    return f"{key_prefix}{queue}"


def unacked(key_prefix: str) -> str:
    """kombu's HASH of messages a Celery worker took and has not acknowledged yet."""
    return f"{key_prefix}unacked"


# kombu's Redis transport keeps priorities 3, 6 and 9 in lists of their own beside the queue's
PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


def queue_lists(key_prefix: str, queue: str) -> list[str]:
    """Every list a queue's messages may wait in, whatever their priority."""
    return [f"{queue_list(key_prefix, queue)}{suffix}" for suffix in PRIORITY_SUFFIXES]


@dataclass(frozen=True)
class ConsumerKeys:
    """The events queue's reliable consumers (`worker.events.queue`)."""

    queue: str
    registry: str  # SET: every consumer's id
    consumer: str

    @classmethod
    def appliers(cls, prefix: str, queue: str, consumer: str) -> ConsumerKeys:
        return cls(queue, f"{prefix}:appliers", consumer)

    def processing(self, consumer: str | None = None) -> str:
        """LIST: the batch in a consumer's hand, deleted once committed."""
        return f"{self.registry}:{consumer or self.consumer}:processing"

    def alive(self, consumer: str | None = None) -> str:
        """STRING expiring after `HEARTBEAT_MS`: the consumer's heartbeat."""
        return f"{self.registry}:{consumer or self.consumer}:alive"


def breaker_key(prefix: str, channel: str, index: int) -> str:
    """A channel target's breaker state (``until:trips``; `worker.notify.breaker.Tripped`)."""
    return f"{prefix}:breaker:{channel}:{index}"


def probe_key(prefix: str, channel: str, index: int) -> str:
    """Held by the one send that tries a reopened target again (SET NX, expiring)."""
    return f"{breaker_key(prefix, channel, index)}:probe"


def waiting_key(prefix: str, channel: str, index: int) -> str:
    """ZSET: notification id -> when its next try is due (epoch seconds), for the notifications
    whose every failed target is parked, this one first to reopen: an index of their rows
    (`worker.notify.breaker_waiting`), drained by one task when the park ends."""
    return f"{breaker_key(prefix, channel, index)}:waiting"


def drain_key(prefix: str, channel: str, index: int) -> str:
    """When the task that drains a target's waiting set is queued for (epoch seconds),
    expiring a minute after it: none queued, or it was lost, once gone."""
    return f"{breaker_key(prefix, channel, index)}:drain"


def waiting_targets_key(prefix: str) -> str:
    """SET of ``<channel>:<index>``: the targets with a waiting set, for beat's minute to find
    one whose drain was lost (a worker killed between queueing it and running it)."""
    return f"{prefix}:breakers:waiting"
