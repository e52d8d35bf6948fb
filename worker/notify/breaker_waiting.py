"""Notifications waiting for a parked target (`worker.notify.breaker`) to reopen, in Redis.

While a target is parked, a notification whose every failed target is parked is not given a
retry task of its own: its id joins the target's waiting set, scored by when its next try is
due (`worker.notify.retry.next_try`). One drain task per target is queued for the earliest of
them (a marker says for when, so every batch that parks a page does not queue one more), and
when it runs at the park's end it makes one try of the target and then delivers the waiting
ones in batches (`worker.tasks.drain_parked_task`). A hundred pages parked on a dead pager then
cost the pool one task at the park's end instead of a hundred.

The set is only an index of the rows: an id leaves it once the row's try is committed (sent,
dead, or retried otherwise), so a worker killed at any point leaves it there, and the next drain
finds the row as it is. A drain lost with its worker leaves its marker to expire; beat's minute
(`worker.tasks.reconcile_timers_task`) queues a drain for every set whose earliest try is
overdue and that has none (`overdue`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from redis import Redis

from shared.redis_keys import drain_key, waiting_key, waiting_targets_key
from worker.notify.breaker import Target

# A drain queued this much later than a try is due still serves it: the tries of a park's pages
# fall due together at its end (each with its own jitter), and one drain takes them all.
DRAIN_SLACK_S = 5.0
# A drain's marker outlives the time it is queued for by this much: a drain not started by then
# was lost, and a set whose earliest try is this overdue gets another (`overdue`).
DRAIN_GRACE_S = 60.0

# The marker set to ``at`` unless one already says a drain comes no later than ``at`` + slack;
# 1 when set (the caller queues the drain).
_CLAIM = """
local at = redis.call('GET', KEYS[1])
if at and tonumber(at) <= tonumber(ARGV[1]) + tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1
"""
# The target forgotten only while its set is empty (a page may join it at any moment).
_FORGET = """
if redis.call('ZCARD', KEYS[1]) == 0 then return redis.call('SREM', KEYS[2], ARGV[1]) end
return 0
"""


class WaitingRoom:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._claim = redis.register_script(_CLAIM)
        self._forget = redis.register_script(_FORGET)

    def wait(
        self, target: Target, due: Mapping[int, float], now: float, reopens: float = 0.0
    ) -> float | None:
        """``due``'s notifications (id -> when its try is due) wait for ``target``, parked
        until ``reopens`` (epoch seconds); when a drain must be queued for (None: one is queued
        already, in time): the park's end (whatever their tries' jitter: one drain for all of
        them), or their earliest try if the park is over."""
        if not due:
            return None
        pipe = self._redis.pipeline(transaction=False)
        pipe.zadd(self._key(target), {str(nid): at for nid, at in due.items()})
        pipe.sadd(waiting_targets_key(self._prefix), _member(target))
        pipe.execute()
        return self._drain_at(target, reopens if reopens > now else min(due.values()), now)

    def due(self, target: Target, until: float) -> list[int]:
        """The notifications whose try is due by ``until``, earliest first."""
        return _ids(self._redis.zrangebyscore(self._key(target), "-inf", until))

    def first_due(self, target: Target) -> float | None:
        """When the earliest waiting try is due (None: nobody waits)."""
        first = self._redis.zrange(self._key(target), 0, 0, withscores=True)
        return float(first[0][1]) if first else None

    def everyone(self, target: Target) -> list[int]:
        """Every notification waiting for ``target``, earliest due first."""
        return _ids(self._redis.zrange(self._key(target), 0, -1))

    def holds(self, target: Target, ids: Sequence[int]) -> set[int]:
        """Those of ``ids`` waiting for ``target`` now."""
        if not ids:
            return set()
        scores = self._redis.zmscore(self._key(target), [str(nid) for nid in ids])
        return {nid for nid, score in zip(ids, scores, strict=True) if score is not None}

    def leave(self, target: Target, ids: Iterable[int]) -> None:
        """Their tries are committed: they no longer wait for ``target``."""
        members = [str(nid) for nid in ids]
        if members:
            self._redis.zrem(self._key(target), *members)

    def started(self, target: Target) -> None:
        """A drain of ``target`` runs now: a page parked from here on queues the next one."""
        self._redis.delete(drain_key(self._prefix, *target))

    def next_drain(self, target: Target, at: float, now: float) -> float | None:
        """``at``, when the next drain of ``target`` is to be queued for; None when nobody
        waits for it (it is forgotten), or a drain is queued already."""
        if not self._redis.zcard(self._key(target)):
            self._forget(
                keys=[self._key(target), waiting_targets_key(self._prefix)],
                args=[_member(target)],
            )
            return None
        return self._drain_at(target, at, now)

    def overdue(self, now: float) -> list[Target]:
        """The targets whose earliest waiting try is more than `DRAIN_GRACE_S` overdue with no
        drain queued (lost with its worker); targets nobody waits for are forgotten."""
        lost = []
        for raw in self._redis.smembers(waiting_targets_key(self._prefix)):
            target = _target(raw)
            first = self._redis.zrange(self._key(target), 0, 0, withscores=True)
            if not first:
                self._forget(
                    keys=[self._key(target), waiting_targets_key(self._prefix)], args=[raw]
                )
            elif float(first[0][1]) < now - DRAIN_GRACE_S and not self._redis.exists(
                drain_key(self._prefix, *target)
            ):
                lost.append(target)
        return sorted(lost)

    def _drain_at(self, target: Target, at: float, now: float) -> float | None:
        at = max(at, now)
        expires_ms = max(1, round((at - now + DRAIN_GRACE_S) * 1000))
        claimed = self._claim(
            keys=[drain_key(self._prefix, *target)], args=[f"{at:.3f}", DRAIN_SLACK_S, expires_ms]
        )
        return at if claimed else None

    def _key(self, target: Target) -> str:
        return waiting_key(self._prefix, *target)


def _ids(members: Any) -> list[int]:
    return [int(m) for m in members]


def _member(target: Target) -> str:
    return f"{target.channel}:{target.position}"


def _target(raw: str | bytes) -> Target:
    text = raw.decode() if isinstance(raw, bytes) else raw
    channel, _, position = text.rpartition(":")
    return Target(channel, int(position))
