"""Kill -9 the worker, the beat and the ingest process at random moments while tickets live.

Every trial: no event answered 202 is missing from the database, every checkpoint the pure core
says was due fired, and every notification reached the sink exactly once.

Strict: any event answered 202 and missing fails the trial. (It used to lose events taken by
kombu's BRPOP just before a kill; the worker's own event queue fixed it: docs/reliability.md.)
`lost_in_broker` is still reported, to name a loss's likely place if one ever shows up.
"""

from __future__ import annotations

from collections import Counter

from tests.chaos.conftest import SIZE, Rig, report
from tests.chaos.monkey import Monkey
from tests.chaos.replay import Replayer
from tests.chaos.services import PrivateRedis, where_on_redis
from tests.chaos.trial import SEED, lives, run


def lost_in_broker(
    redis: PrivateRedis, monkey: Monkey, missing: list[str], replayer: Replayer
) -> list[str]:
    """Missing events nowhere on Redis that a worker kill followed within 10 s of their 202."""
    where = where_on_redis(redis.client(), "chaos", missing)
    accepted_at = {
        e["event_id"]: at for e, at in zip(replayer.accepted, replayer.accepted_at, strict=True)
    }
    kills = [when for name, _, when in monkey.kills if name == "worker"]
    return [
        event_id
        for event_id in missing
        if where[event_id] == "nowhere on Redis"
        and any(0 <= (kill - accepted_at[event_id]).total_seconds() <= 10 for kill in kills)
    ]


def test_killed_processes_lose_and_duplicate_nothing(rig: Rig) -> None:
    # a task taken by a killed worker comes back after this, not after kombu's default hour
    system = rig.system(ESCALERA_BROKER_VISIBILITY_TIMEOUT_S="10")
    system.start()
    try:
        for trial in range(SIZE.trials):
            seed = SEED + trial
            prefix = f"k{seed}-"
            monkey = Monkey(system, seed)
            verdict, replayer = run(
                system,
                lives(seed, SIZE.tickets, SIZE.window_s, prefix),
                database_url=rig.database_url,
                prefix=prefix,
                sinks=rig.sinks,
                settle_s=SIZE.settle_s,
                during=lambda _r, m=monkey: m.start(),  # type: ignore[misc]
                after=monkey.stop,
                excuse=monkey.kills,  # read live: the kills so far
                forgive=None,
            )
            report(
                "kill9",
                {
                    "trial": trial + 1,
                    "seed": seed,
                    "kills": dict(Counter(n for n, _, _ in monkey.kills)),
                    "exits": system.exits(),
                    "post_retries": replayer.failed_attempts,
                    "lost_in_broker": lost_in_broker(
                        rig.redis, monkey, verdict.events_missing, replayer
                    ),
                    **verdict.summary(),
                },
            )
            assert not replayer.given_up, f"seed {seed}: events never accepted"
            where = where_on_redis(rig.redis.client(), system.prefix, verdict.events_missing)
            assert verdict.ok, f"seed {seed}: {verdict.explain()}\nmissing events on Redis: {where}"
    finally:
        system.stop()
