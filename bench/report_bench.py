"""How long the reports take on the 1,000-ticket fixture, in a temporary SQLite database.

    .venv/bin/python bench/report_bench.py [--copies N]

``--copies N`` stores the fixture N times (N x 1,000 tickets, ids suffixed) to see how the
time grows. Every report re-evaluates each ticket from its stored events as of the report's
instant, so the time is per ticket evaluated. Removes its database when done.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared.db.engine import make_engine, session_factory  # noqa: E402
from shared.db.migrate import upgrade  # noqa: E402
from shared.db.models import StoredEvent, Ticket  # noqa: E402
from tests.integration.report_fixture import AT, BASE, fixture  # noqa: E402
from worker.policies.book import load_folder  # noqa: E402
from worker.report import service  # noqa: E402
from worker.report.tickets import Period  # noqa: E402

RUNS = 3


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--copies", type=int, default=1)
    args = parser.parse_args()
    print("$", " ".join(["python", *sys.argv]))
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/report.db"
        upgrade(url)
        sessions = session_factory(make_engine(url))
        loaded = load_folder(ROOT / "deploy" / "policies")["soporte-completo"]
        with sessions.begin() as session:
            count = _store(session, args.copies)
        period = Period(BASE, AT, AT)
        timings = {
            "compliance": lambda s: service.compliance_report(s, loaded, period),
            "at-risk": lambda s: service.at_risk_report(s, loaded, AT),
        }
        print(f"{count} tickets, SQLite, {RUNS} runs each")
        for name, run in timings.items():
            seconds = []
            for _ in range(RUNS):
                with sessions() as session:
                    start = time.perf_counter()
                    run(session)
                    seconds.append(time.perf_counter() - start)
            runs = ", ".join(f"{s:.2f}" for s in seconds)
            print(f"{name:<11} median {statistics.median(seconds):.2f} s  (runs: {runs})")
    return 0


def _store(session, copies: int) -> int:  # type: ignore[no-untyped-def]
    count = 0
    for copy in range(copies):
        for drawn in fixture():
            ticket = Ticket(
                source="api",
                ticket_id=f"{drawn.ticket_id}-{copy}",
                policy="soporte-completo",
                plan="completo",
                priority=drawn.priority,
                status="solved" if drawn.resolved else "open",
                created_at=drawn.created,
                waiting=False,
                version=1,
            )
            session.add(ticket)
            session.flush()
            for event in drawn.events:
                moved = replace_ids(event, copy)
                session.add(
                    StoredEvent(
                        source="api",
                        event_id=moved.event_id,
                        ticket_pk=ticket.id,
                        type=moved.type.value,
                        occurred_at=moved.occurred_at,
                        payload=moved.model_dump(mode="json"),
                    )
                )
            count += 1
    return count


def replace_ids(event, copy: int):  # type: ignore[no-untyped-def]
    return event.model_copy(
        update={"event_id": f"{event.event_id}-{copy}", "ticket_id": f"{event.ticket_id}-{copy}"}
    )


if __name__ == "__main__":
    sys.exit(main())
