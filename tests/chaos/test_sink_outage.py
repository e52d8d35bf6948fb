"""A notification sink down for a long stretch: everything is delivered once it is back.

Route `desk` (channel oncall) allows 15 attempts: its backoff outlasts the outage, so each of its
notifications arrives once after the sink returns. Route `escalate` (channel tier2, same sink)
allows 2: its notifications die during the outage, and only then, each telling the `backup`
channel (another sink, up) once. No notification is tried more often than its route allows.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from tests.chaos.conftest import SIZE, Rig, report
from tests.chaos.expected import must_fire
from tests.chaos.lives import chaos_policy
from tests.chaos.replay import Replayer
from tests.chaos.trial import SEED, lives, run
from tests.chaos.verify import notifications_in, now, read_database

LATER = datetime(2100, 1, 1, tzinfo=UTC)  # every life is over
ATTEMPTS = {"desk": 15, "escalate": 2, "chain": 15}  # chaos-policy.yaml


def test_sink_down_then_back_gets_everything_once(rig: Rig) -> None:
    system = rig.system()
    system.start()
    prefix = f"s{SEED}-"
    try:
        # created within 4 s: every checkpoint of these lives (an escalation at once, a late
        # first response) falls due within 31 s, while the sink is down
        kinds = ("late_reply", "requested")
        received_while_down: list[int] = []
        down: list[datetime] = []

        def outage(_replayer: Replayer) -> None:
            rig.sink.stop()
            down.append(now())
            time.sleep(SIZE.sink_outage_s)
            received_while_down.append(len(rig.sink.messages()))
            down.append(now())
            rig.sink.start()

        verdict, replayer = run(
            system,
            lives(SEED, SIZE.tickets_other, 4, prefix, kinds=kinds),
            database_url=rig.database_url,
            prefix=prefix,
            sinks=rig.sinks,
            settle_s=600,
            during=outage,
            owed_channels={"oncall"},  # tier2's are dead by design: checked below
        )
        dues = [at for _kind, at in must_fire(chaos_policy(), replayer.accepted, LATER).values()]
        assert down[0] < min(dues) and max(dues) < down[1], (
            "a checkpoint fell due outside the outage"
        )
        notifications = read_database(rig.database_url, prefix).notifications
        report(
            "sink_outage",
            {
                "seed": SEED,
                "outage_s": SIZE.sink_outage_s,
                "max_attempts": max(n["attempts"] for n in notifications),
                "exits": system.exits(),
                **verdict.summary(),
            },
        )
        assert verdict.ok, f"seed {SEED}: {verdict.explain()}"
        assert received_while_down == [0]
        by_channel: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for n in notifications:
            by_channel.setdefault((n["route"], n["channel"]), []).append(n)
        assert all(n["attempts"] <= ATTEMPTS[n["route"]] for n in notifications)
        oncall = by_channel[("desk", "oncall")]
        assert {n["status"] for n in oncall} == {"sent"}
        assert max(n["attempts"] for n in oncall) > 1, "nothing was retried: no outage seen"
        tier2 = by_channel[("escalate", "tier2")]
        assert tier2 and all(n["status"] == "dead" and n["attempts"] == 2 for n in tier2)
        backup = by_channel[("escalate", "backup")]
        assert len(backup) == len(tier2) and {n["status"] for n in backup} == {"sent"}
        keys = [key for m in rig.backup.messages() for _ticket, key in notifications_in(m)]
        assert sorted(keys) == sorted(n["dedupe_key"] for n in backup), "backup told once each"
    finally:
        system.stop()
