"""One run of lives through a running system, with a fault injected meanwhile, then judged."""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from datetime import datetime, timedelta

from tests.chaos.acker import Acker
from tests.chaos.expected import must_fire
from tests.chaos.lives import Scheduled, chaos_policy, generate
from tests.chaos.replay import Replayer
from tests.chaos.services import Sink
from tests.chaos.system import System
from tests.chaos.verify import (
    Verdict,
    excuse_resends,
    excuse_stalls,
    judge,
    now,
    read_database,
    settle,
)

# A run is reproducible from its seed: ESCALERA_CHAOS_SEED=<seed printed by a failed run>.
SEED = int(os.environ.get("ESCALERA_CHAOS_SEED") or random.randrange(1_000_000))


def lives(seed: int, tickets: int, window_s: float, prefix: str, **kw: object) -> list[Scheduled]:
    return generate(seed, tickets, now() + timedelta(seconds=2), window_s, prefix=prefix, **kw)  # type: ignore[arg-type]


def run(
    system: System,
    schedule: list[Scheduled],
    *,
    database_url: str,
    prefix: str,
    sinks: list[Sink],
    settle_s: float,
    during: Callable[[Replayer], None] | None = None,
    after: Callable[[], None] | None = None,
    owed_channels: set[str] | None = None,
    excuse: list[tuple[str, float, datetime]] | None = None,
    forgive: Callable[[list[str], Replayer], list[str]] | None = None,
) -> tuple[Verdict, Replayer]:
    """Replay ``schedule``; run ``during`` meanwhile and ``after`` once it is all sent (ending
    the fault); then wait until everything owed is done. Meanwhile a person (`Acker`)
    acknowledges the `chain_acked` lives' pages."""
    policy = chaos_policy()
    acker = Acker(sinks).start()
    replayer = Replayer(system.base, schedule).start()
    if during is not None:
        during(replayer)
    replayer.join(timeout=max(s.at for s in schedule).timestamp() - now().timestamp() + 300)
    if after is not None:
        after()
    system.ensure_running()
    lives_over = max(s.at for s in schedule) + timedelta(hours=1)

    due = must_fire(policy, replayer.accepted, lives_over)

    def check() -> Verdict:
        stored = read_database(database_url, prefix, system.logs)
        verdict = judge(
            policy,
            replayer.accepted,
            lives_over,
            stored,
            sinks,
            owed_channels=owed_channels,
            due=due,
        )
        excuse_resends(verdict, [when for name, _, when in excuse or [] if name == "worker"])
        excuse_stalls(verdict, [when for name, _, when in excuse or [] if name != "ingest"])
        if forgive is not None:  # missing events the caller reports apart
            verdict.forgiven = forgive(verdict.events_missing, replayer)
            verdict.events_missing = sorted(set(verdict.events_missing) - set(verdict.forgiven))
        return verdict

    try:
        return settle(check, seconds=settle_s), replayer
    finally:
        acker.stop()
