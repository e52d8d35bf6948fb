"""A notification sink down for a long stretch: everything is delivered once it is back.

Route `desk` (channel oncall) allows 15 attempts: its backoff outlasts the outage, so each of its
notifications arrives once after the sink returns. Route `escalate` (channel tier2, same sink)
allows 2: its notifications die during the outage, and only then, each telling the `backup`
channel (another sink, up) once. No notification is tried more often than its route allows.
"""

from __future__ import annotations

import time
from typing import Any

from tests.chaos.conftest import SIZE, Rig, report
from tests.chaos.replay import Replayer
from tests.chaos.trial import SEED, lives, run
from tests.chaos.verify import read_database

ATTEMPTS = {"desk": 15, "escalate": 2}  # chaos-policy.yaml


def test_sink_down_then_back_gets_everything_once(rig: Rig) -> None:
    system = rig.system()
    system.start()
    prefix = f"s{SEED}-"
    try:
        # created within 4 s: every checkpoint of these lives falls due while the sink is down
        kinds = ("late_reply", "p2_breach", "requested", "silent")
        received_while_down: list[int] = []

        def outage(_replayer: Replayer) -> None:
            time.sleep(2)
            rig.sink.stop()
            time.sleep(SIZE.sink_outage_s)
            received_while_down.append(len(rig.sink.messages()))
            rig.sink.start()

        verdict, _ = run(
            system,
            lives(SEED, SIZE.tickets_other, 4, prefix, kinds=kinds),
            database_url=rig.database_url,
            prefix=prefix,
            sinks=rig.sinks,
            settle_s=600,
            during=outage,
            owed_channels={"oncall"},  # tier2's are dead by design: checked below
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
        keys = [m["key"] for m in rig.backup.messages()]
        assert sorted(keys) == sorted(n["dedupe_key"] for n in backup), "backup told once each"
    finally:
        system.stop()
