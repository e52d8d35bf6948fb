"""Redis restarted mid-run, and Redis emptied (FLUSHALL): timers come back, nothing is lost.

A restart is a clean shutdown of a Redis with an append-only file (as production runs it): the
queues and the timer index survive. FLUSHALL loses everything Redis held; it happens once every
accepted event is applied (an event still on the queue would be lost with it: Redis is the
queue), and the checkpoints armed then must fire anyway, re-armed from the database by beat's
reconcile (every minute).
"""

from __future__ import annotations

import time

from shared.redis_keys import TimerKeys
from tests.chaos.conftest import SIZE, Rig, report
from tests.chaos.replay import Replayer
from tests.chaos.trial import SEED, lives, run
from tests.chaos.verify import read_database


def test_redis_restarted_mid_run_loses_nothing(rig: Rig) -> None:
    system = rig.system()
    system.start()
    prefix = f"r{SEED}-"
    try:

        def restart_twice(_replayer: Replayer) -> None:
            for _ in range(2):
                time.sleep(SIZE.window_s / 2 + 4)
                rig.redis.restart(down_s=2)

        verdict, replayer = run(
            system,
            lives(SEED, SIZE.tickets_other, SIZE.window_s, prefix),
            database_url=rig.database_url,
            prefix=prefix,
            sinks=rig.sinks,
            settle_s=150,
            during=restart_twice,
        )
        report("redis_restart", {"seed": SEED, "exits": system.exits(), **verdict.summary()})
        assert not replayer.given_up
        assert verdict.ok, f"seed {SEED}: {verdict.explain()}"
    finally:
        system.stop()


def test_redis_flushed_mid_run_rearms_every_timer_from_the_database(rig: Rig) -> None:
    system = rig.system()
    system.start()
    prefix = f"f{SEED}-"
    try:
        # every ticket created within 2 s; nothing else happens before 27 s, nothing falls due
        # before 12 s: the flush finds the queue empty and every timer armed
        tickets = min(SIZE.tickets_other, 200)  # all applied before the first reply, at 27 s
        schedule = lives(SEED, tickets, 2, prefix, kinds=("late_reply", "p2_breach"))
        created = sum(1 for s in schedule if s.event["type"] == "created")
        replies = [s for s in schedule if s.event["type"] == "agent_replied"]
        flushed: dict[str, int] = {}

        def flush_when_applied(_replayer: Replayer) -> None:
            redis = rig.redis.client()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                stored = read_database(rig.database_url, prefix)
                armed = sum(1 for c in stored.checkpoints.values() if c["state"] == "armed")
                queued = redis.llen(system.events_queue_key)
                if len(stored.events) == created and queued == 0 and armed:
                    flushed.update(armed=armed, indexed=redis.zcard(TimerKeys.under("chaos").due))
                    break
                time.sleep(0.1)
            early = [s for s in replies if s.at.timestamp() < time.time() + 1]
            assert not early, "the flush came too late: replies were already being sent"
            redis.flushall()

        verdict, _ = run(
            system,
            schedule,
            database_url=rig.database_url,
            prefix=prefix,
            sinks=rig.sinks,
            settle_s=150,
            during=flush_when_applied,
        )
        report(
            "redis_flushall",
            {"seed": SEED, "at_flush": flushed, "exits": system.exits(), **verdict.summary()},
        )
        assert flushed, "the events were not applied in time to flush an idle queue"
        assert verdict.ok, f"seed {SEED}: {verdict.explain()}"
    finally:
        system.stop()
