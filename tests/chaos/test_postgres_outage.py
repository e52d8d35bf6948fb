"""PostgreSQL unreachable mid-run: ingest keeps answering 202, the worker retries, all is applied.

The shared PostgreSQL keeps running (other sessions use it): the processes reach it through a
relay that the outage closes, refusing new connections and dropping open ones.
"""

from __future__ import annotations

import time

from sqlalchemy.engine import make_url

from tests.chaos.conftest import SIZE, Rig, report
from tests.chaos.replay import Replayer
from tests.chaos.services import PgProxy
from tests.chaos.trial import SEED, lives, run


def test_database_outage_delays_but_loses_nothing(rig: Rig) -> None:
    real = make_url(rig.database_url)
    proxy = PgProxy(real.host or "127.0.0.1", real.port or 5432)
    relayed = real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    system = rig.system(database_url=relayed)
    system.start()
    prefix = f"p{SEED}-"
    outage: dict[str, float] = {}
    try:

        def cut_database(replayer: Replayer) -> None:
            time.sleep(4)
            before, failures = len(replayer.accepted), replayer.failed_attempts
            proxy.cut()
            started = time.monotonic()
            time.sleep(SIZE.pg_outage_s)
            outage.update(
                seconds=round(time.monotonic() - started, 1),
                accepted_during=len(replayer.accepted) - before,
                refused_during=replayer.failed_attempts - failures,
            )
            proxy.restore()

        verdict, _ = run(
            system,
            lives(SEED, SIZE.tickets_other, SIZE.window_s, prefix),
            database_url=rig.database_url,
            prefix=prefix,
            sinks=rig.sinks,
            settle_s=SIZE.pg_outage_s + 150,
            during=cut_database,
        )
        report(
            "postgres_outage",
            {"seed": SEED, "outage": outage, "exits": system.exits(), **verdict.summary()},
        )
        assert outage["accepted_during"] > 0, "no event arrived during the outage: nothing tested"
        assert outage["refused_during"] == 0, "ingest refused events while the database was down"
        assert verdict.ok, f"seed {SEED}: {verdict.explain()}"
    finally:
        system.stop()
        proxy.close()
