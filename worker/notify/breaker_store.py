"""The channel targets' breakers (`worker.notify.breaker`), kept in Redis so every worker
process of every machine parks a target the moment one of them finds it not answering.

A healthy desk costs one ``MGET`` a batch: nothing is written until a target trips.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from redis import Redis

from shared.redis_keys import breaker_key, probe_key
from worker.notify.breaker import FORGET_S, PROBE_S, Target, Tripped, after_send, wait_s


@dataclass
class Checked:
    """What a batch found of its targets before sending."""

    # not sent to: for how long for sure (0: a reopened target another send is probing; the
    # probe may close it any moment, so a notification's next try is not skipped)
    parked: dict[Target, float] = field(default_factory=dict)
    known: dict[Target, Tripped] = field(default_factory=dict)  # tripped before (probed now)


class Breakers(Protocol):
    def check(self, targets: Collection[Target], now: float) -> Checked: ...

    def record(
        self, checked: Checked, sent: Mapping[Target, tuple[bool, float]], now: float
    ) -> dict[Target, float]: ...


class RedisBreakers:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    def check(self, targets: Collection[Target], now: float) -> Checked:
        """Which of ``targets`` to leave alone now, and for how long; a reopened one is probed
        by this batch if it takes the probe token first (another batch probing it: left alone
        this time, parked for no time that is sure)."""
        checked = Checked()
        if not targets:
            return checked
        ordered = sorted(targets)
        raws = self._redis.mget([breaker_key(self._prefix, *t) for t in ordered])
        for target, raw in zip(ordered, raws, strict=True):
            if raw is None:
                continue
            state = Tripped.decode(raw)
            wait = wait_s(state, now)
            if wait is not None:
                checked.parked[target] = wait
            elif self._redis.set(probe_key(self._prefix, *target), "1", nx=True, px=_ms(PROBE_S)):
                checked.known[target] = state  # reopened: this batch probes it
            else:
                checked.parked[target] = 0.0
        return checked

    def state(self, target: Target) -> tuple[Tripped | None, bool]:
        """``target``'s breaker as it stands (None: closed), and whether a send is probing it."""
        raw, probing = self._redis.mget(
            [breaker_key(self._prefix, *target), probe_key(self._prefix, *target)]
        )
        return (Tripped.decode(raw) if raw is not None else None), probing is not None

    def record(
        self, checked: Checked, sent: Mapping[Target, tuple[bool, float]], now: float
    ) -> dict[Target, float]:
        """Each sent target's result (failed?, seconds it took); the targets tripped by it,
        with how long they stay parked."""
        tripped = {}
        pipe = self._redis.pipeline(transaction=False)
        for target, (failed, elapsed_s) in sent.items():
            before = checked.known.get(target)
            after = after_send(before, failed=failed, elapsed_s=elapsed_s, now=now)
            key = breaker_key(self._prefix, *target)
            if after is None and before is not None:
                pipe.delete(key)
            elif after is not None and after != before:
                pipe.set(key, after.encode(), px=_ms(after.until - now + FORGET_S))
                tripped[target] = after.until - now
            if before is not None:  # this batch probed it: the next reopening's probe is free
                pipe.delete(probe_key(self._prefix, *target))
        if pipe.command_stack:
            pipe.execute()
        return tripped


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))
