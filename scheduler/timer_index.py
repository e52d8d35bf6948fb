"""The Redis index of armed checkpoints: a sorted set scored by due instant.

The database is the source of truth; this index only makes "what is due now?" cheap. Members
are checkpoint ids (short digit strings: ~100 bytes of Redis per timer). Claiming is one Lua
script, atomic in Redis, so several claimers never take the same checkpoint twice; a claim is a
lease, returned to the due set by `reap` if its fire task never releases it. Its deadline moves
with the batch (`extend`): short until beat has sent the task, long while the task waits in the
queue, short again from when the task starts (``shared.redis_keys``: LEASE_SECONDS,
QUEUED_LEASE_SECONDS), so a backlog in the fire queue does not hand a checkpoint out twice.
`reconcile` re-arms from the database whatever Redis lost (a restart without persistence, a
FLUSHALL).

At-least-once: a checkpoint may be claimed again after a lost lease; the fire task re-checks
the database and fires each checkpoint once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from itertools import islice
from typing import TypeVar, cast

from redis import Redis

from shared.redis_keys import CLAIM_BATCH, LEASE_SECONDS, TIMERS, TimerKeys

_CHUNK = 1000
REAP_BATCH = 1000
T = TypeVar("T")

# KEYS: due, inflight. ARGV: now, limit, lease deadline. Returns the claimed ids.
_CLAIM = """
local ids = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZADD', KEYS[2], tonumber(ARGV[3]), id)
end
return ids
"""

# KEYS: inflight, due. ARGV: now, limit. Expired leases go back to the due set, due at once.
_REAP = """
local ids = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZADD', KEYS[2], tonumber(ARGV[1]), id)
end
return #ids
"""

# KEYS: due, inflight. ARGV: id1, score1, id2, score2, ... Arms those not leased. Returns how
# many were missing from the index. LT only ever moves a score earlier: the database snapshot a
# reconcile streams from may be older than a re-arm that moved a checkpoint earlier, and putting
# the later score back would fire it late. A too-early score is harmless: the fire task finds
# the checkpoint not yet due and hands it back.
_RECONCILE = """
local ids = {}
for i = 1, #ARGV, 2 do ids[#ids + 1] = ARGV[i] end
local leased = redis.call('ZMSCORE', KEYS[2], unpack(ids))
local present = redis.call('ZMSCORE', KEYS[1], unpack(ids))
local add = {'LT'}
local missing = 0
for j = 1, #ids do
  if not leased[j] then
    if not present[j] then missing = missing + 1 end
    add[#add + 1] = ARGV[2 * j]
    add[#add + 1] = ids[j]
  end
end
if #add > 1 then redis.call('ZADD', KEYS[1], unpack(add)) end
return missing
"""


class TimerIndex:
    def __init__(self, redis: Redis, prefix: str, name: str = TIMERS) -> None:
        self._redis = redis
        self.keys = TimerKeys.under(prefix, name)
        self._claim = redis.register_script(_CLAIM)
        self._reap = redis.register_script(_REAP)
        self._reconcile = redis.register_script(_RECONCILE)

    def arm(self, timers: Iterable[tuple[int, datetime]]) -> None:
        """Index (or re-time) checkpoints; run after the database transaction commits."""
        for chunk in _chunks(timers):
            self._redis.zadd(self.keys.due, {str(cid): due.timestamp() for cid, due in chunk})

    def disarm(self, ids: Iterable[int]) -> None:
        for chunk in _chunks(ids):
            members = [str(cid) for cid in chunk]
            pipe = self._redis.pipeline(transaction=False)
            pipe.zrem(self.keys.due, *members)
            pipe.zrem(self.keys.inflight, *members)
            pipe.execute()

    def claim(
        self, now: datetime, limit: int = CLAIM_BATCH, lease_s: int = LEASE_SECONDS
    ) -> list[int]:
        """Atomically take up to ``limit`` checkpoints due by ``now``, leased for ``lease_s``."""
        at = now.timestamp()
        claimed = self._claim(
            keys=[self.keys.due, self.keys.inflight], args=[at, limit, at + lease_s]
        )
        return [int(member) for member in claimed]

    def extend(self, ids: Sequence[int], until: datetime) -> None:
        """Move the lease of those ``ids`` still leased to end at ``until``, earlier or later.

        ``ZADD XX``: an id released meanwhile (fired) or reaped (handed out again) is not leased
        again. Beat calls it once a batch is on the fire queue, the fire task when it starts.
        """
        if ids:
            at = until.timestamp()
            self._redis.zadd(self.keys.inflight, {str(cid): at for cid in ids}, xx=True)

    def end_leases(self, now: datetime) -> int:
        """End every lease now (how many): a worker starting after a kill held batches in its
        prefetch that will never run, and their queued lease would keep them away for minutes.
        A batch another worker is firing meanwhile is handed out again, and its second fire
        finds it fired (the cost of a worker's start, never a second page)."""
        at = now.timestamp()
        leased = cast(list[bytes], self._redis.zrangebyscore(self.keys.inflight, f"({at}", "+inf"))
        for start in range(0, len(leased), _CHUNK):
            ended = {member: at for member in leased[start : start + _CHUNK]}
            self._redis.zadd(self.keys.inflight, ended, xx=True)
        return len(leased)

    def release(self, ids: Sequence[int]) -> None:
        """The fire task committed: the leases are done."""
        if ids:
            self._redis.zrem(self.keys.inflight, *[str(cid) for cid in ids])

    def reap(self, now: datetime, limit: int = REAP_BATCH) -> int:
        """Return expired leases (a fire task that died) to the due set; how many (<= limit).

        Bounded, so a huge backlog never blocks Redis in one script; the rest comes back on the
        following ticks.
        """
        keys = [self.keys.inflight, self.keys.due]
        return int(self._reap(keys=keys, args=[now.timestamp(), limit]))

    def reconcile(self, armed: Iterable[tuple[int, datetime]]) -> int:
        """Make the index hold every armed checkpoint the database lists; how many were missing."""
        missing = 0
        for chunk in _chunks(armed):
            args: list[str | float] = []
            for cid, due in chunk:
                args += [str(cid), due.timestamp()]
            missing += int(self._reconcile(keys=[self.keys.due, self.keys.inflight], args=args))
        return missing

    def next_due(self) -> float | None:
        """Epoch seconds of the earliest armed checkpoint, or None: when to look again."""
        first = self._redis.zrange(self.keys.due, 0, 0, withscores=True)
        return float(first[0][1]) if first else None

    def count(self) -> tuple[int, int]:
        """(armed, leased) sizes, for metrics and tests."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.zcard(self.keys.due)
        pipe.zcard(self.keys.inflight)
        due, inflight = pipe.execute()
        return int(due), int(inflight)


def _chunks(items: Iterable[T]) -> Iterable[list[T]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, _CHUNK)):
        yield chunk
