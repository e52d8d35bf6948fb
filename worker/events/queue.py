"""A reliable batch consumer of the events queue (a Redis list the ingest service LPUSHes onto).

``take`` atomically moves up to N messages into this consumer's own processing list, so nothing
is ever only in a process's memory: ``ack`` deletes the list once the batch is committed. Each
consumer keeps a heartbeat key alive; when one dies (kill -9, a lost machine), any other
consumer's ``reap`` puts its processing list back on the queue within ``HEARTBEAT_MS``. Applying
is idempotent, so a batch applied just before its consumer died is harmless when redone.
"""

from __future__ import annotations

import os
import socket
import uuid

from redis import Redis

from shared.redis_keys import HEARTBEAT_MS, ConsumerKeys

# Pop up to ARGV[1] messages from the queue's consuming end into the processing list; renew
# the heartbeat and the registration (a consumer reaped while it was only slow registers again).
_TAKE = """
local items = redis.call('RPOP', KEYS[1], ARGV[1])
if items then redis.call('LPUSH', KEYS[2], unpack(items)) else items = {} end
redis.call('SET', KEYS[3], '1', 'PX', ARGV[2])
redis.call('SADD', KEYS[4], ARGV[3])
return items
"""

# A consumer whose heartbeat expired: its processing list goes back where the queue is consumed.
_REAP = """
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
local n = 0
while true do
  local item = redis.call('RPOP', KEYS[2])
  if not item then break end
  redis.call('RPUSH', KEYS[3], item)
  n = n + 1
end
redis.call('SREM', KEYS[4], ARGV[1])
return n
"""


def consumer_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class EventQueue:
    def __init__(self, redis: Redis, queue_key: str, prefix: str, consumer: str) -> None:
        self._redis = redis
        self.keys = ConsumerKeys.appliers(prefix, queue_key, consumer)
        self._take = redis.register_script(_TAKE)
        self._reap = redis.register_script(_REAP)

    def join(self) -> None:
        """Announce this consumer (its heartbeat starts now)."""
        self.beat()
        self._redis.sadd(self.keys.registry, self.keys.consumer)

    def take(self, limit: int, block_s: int) -> list[bytes]:
        """Up to ``limit`` messages, waiting up to ``block_s`` for the first; the batch in hand.

        The previous batch must have been acknowledged: a batch that failed is retried from
        ``in_hand`` instead.
        """
        keys = self.keys
        items = self._take_now(limit)
        if items or block_s <= 0:
            return items
        first = self._redis.blmove(keys.queue, keys.processing(), block_s, "RIGHT", "LEFT")
        if not isinstance(first, bytes):
            return []
        return [first, *self._take_now(limit - 1)]

    def _take_now(self, limit: int) -> list[bytes]:
        keys = self.keys
        items: list[bytes] = self._take(
            keys=[keys.queue, keys.processing(), keys.alive(), keys.registry],
            args=[limit, HEARTBEAT_MS, keys.consumer],
        )
        return items

    def in_hand(self) -> list[bytes]:
        """The unacknowledged batch (e.g. one a database outage interrupted)."""
        items = self._redis.lrange(self.keys.processing(), 0, -1)
        return [item if isinstance(item, bytes) else item.encode() for item in items]

    def ack(self) -> None:
        self._redis.delete(self.keys.processing())

    def beat(self) -> None:
        self._redis.set(self.keys.alive(), "1", px=HEARTBEAT_MS)

    def leave(self) -> None:
        """A clean stop: whatever is still in hand goes back on the queue at once."""
        self._redis.delete(self.keys.alive())
        self.reap_one(self.keys.consumer)

    def reap(self) -> int:
        """Put every dead consumer's batch back on the queue; how many messages came back."""
        returned = 0
        for member in self._redis.smembers(self.keys.registry):
            consumer = member.decode() if isinstance(member, bytes) else str(member)
            if consumer != self.keys.consumer:
                returned += max(0, self.reap_one(consumer))
        return returned

    def reap_one(self, consumer: str) -> int:
        keys = self.keys
        count: int = self._reap(
            keys=[
                keys.alive(consumer),
                keys.processing(consumer),
                keys.queue,
                keys.registry,
            ],
            args=[consumer],
        )
        return count

    def depth(self) -> int:
        return int(self._redis.llen(self.keys.queue))
