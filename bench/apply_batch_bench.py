"""What a transaction costs: ``apply_events`` in-process at several batch sizes, CPU per event.

    .venv/bin/python bench/apply_batch_bench.py [--sizes 4 8 16 40 100] [--tickets 600]

For each size, a fresh migrated database ``escalera_bench_batch_<run>``: 300 tickets' lives
(``apply_bench.workload``, the ``soporte-completo`` preset) applied as a warm-up, ANALYZE (as
autovacuum would), then ``--tickets`` more lives applied ``size`` events per transaction, one
after the other as the worker's applier does. It prints events/s and the CPU milliseconds per
event of this process (the applier's Python: SQLAlchemy, psycopg, the pure core) and of the
PostgreSQL server. The worker's applier batches whatever the queue holds, so under a steady
trickle its batch size is the rate times how long it gathers (`ESCALERA_APPLY_LINGER_MS`).
About 2 minutes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path

# ``python bench/apply_batch_bench.py`` puts bench/ (not the repository root) on sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import CpuSample, Tree, fresh_database, pg_connect, postgres_tree
from bench.apply_bench import apply_loop, workload

WARMUP_TICKETS = 300


def one_size(size: int, tickets: int) -> str:
    name = f"escalera_bench_batch_{uuid.uuid4().hex[:8]}"
    with fresh_database(name) as url:
        apply_loop(url, workload(f"w{size}", WARMUP_TICKETS), timeout=600, batch=size)
        with pg_connect(name) as conn:
            conn.execute("ANALYZE")
        events = workload(f"t{size}", tickets)
        server = postgres_tree(name)
        groups: dict[str, list[int] | Tree] = {"python": [os.getpid()]}
        if server is not None:
            groups["postgres"] = server
        first, started = CpuSample.take(groups), time.perf_counter()
        seconds, _ = apply_loop(url, events, timeout=600, batch=size)
        last = CpuSample.take(groups)
    per_event = {
        group: 1000 * (last.seconds[group] - first.seconds[group]) / len(events) for group in groups
    }
    wall = time.perf_counter() - started
    return (
        f"{size:>5}  {len(events) / seconds:>8,.0f}  {per_event['python']:>14.3f}  "
        f"{per_event.get('postgres', float('nan')):>16.3f}  {wall:>6.1f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 8, 16, 40, 100])
    parser.add_argument("--tickets", type=int, default=600, help="lives of 10 events measured")
    args = parser.parse_args()
    print("batch  events/s  applier CPU ms/ev  PostgreSQL CPU ms/ev  wall s")
    for size in args.sizes:
        print(one_size(size, args.tickets), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
