"""Delivery of a burst: from the due instant until the last notification is handed to Apprise.

Everything is real: a PRIVATE ``redis-server`` on a free loopback port (broker and timer index,
``_support.PrivateRedis``, as ``timers_bench.py`` starts it), a PostgreSQL database
``escalera_bench_delivery_<run>`` it creates, migrates and drops, ``python -m worker.cli
worker`` processes (fire and deliver tasks, Apprise), and an HTTP sink on 127.0.0.1 that every
channel's ``json://`` URL points at.

- burst: ``--burst`` checkpoints (default 100,000) of ``--burst / 10`` tickets fall due in the
  same second, armed ahead in the database and the index; a beat-like loop in this process
  (``Dispatcher.tick`` then sleep ``sleep_s``, publishing to the fire queue as beat does) claims
  them when due. Measured from the due instant: the last fire-queue hand-off, every checkpoint
  fired in the database, the first and the last message received by the sink (the last is
  after Apprise's HTTP request: "handed to Apprise" plus one local round trip). With the
  default ``--priority P1 --kind breach`` each checkpoint pages ``oncall_phone`` (a route that
  repeats) and e-mails ``support_email`` (the ``soporte-completo`` preset): two notifications
  per checkpoint, both channels in a storm. Every dedupe key must reach the sink exactly once
  and every notification row must be ``sent``. Bar: < 10 s.
- lateness: ``--late`` single pages due uniformly within ``--window`` seconds (default 300 in
  60 s, one at a time: never a storm), same workers and loop; per page, sink receipt - due.
  Bar: p99 < 250 ms (the timer bar, now measured to Apprise instead of to the fire queue).

``--storm-threshold 0`` turns coalescing off (each notification its own message, still in
batches) to show what batching alone does.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

# ``python bench/delivery_bench.py`` puts bench/ (not the repository root) on sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import (
    PRESETS,
    CpuSample,
    PrivateRedis,
    Tree,
    command_line,
    escalera_env,
    fresh_database,
    machine,
    percentile,
    pg_connect,
    pg_settings,
    postgres_tree,
    print_kv,
    run_id,
    start_workers,
    stop_all,
    table,
    tail,
    wait_for,
    workers_ready,
)
from bench.timers_bench import Bars, celery_sender
from scheduler.dispatch import Dispatcher
from scheduler.timer_index import TimerIndex
from shared.config import Settings
from shared.db.engine import make_engine, session_factory
from worker.notify.deliver import Deliverer
from worker.notify.fire import fire_checkpoints
from worker.notify.transport import AppriseSender, warm_apprise
from worker.policies.book import PolicyBook

BAR_BURST_S = 10.0
BAR_P99_MS = 250.0
KEY = re.compile(r"(?:Notification|Notificación): (\S+)")
CHANNELS = ("oncall_phone", "support_email", "tier2_team", "tier3_team")


class KeySink:
    """The channels' webhook: each dedupe key received, and when (wall clock)."""

    def __init__(self) -> None:
        self.messages = 0
        self.digests = 0
        self.keys: Counter[str] = Counter()
        self.first_at: dict[str, float] = {}
        self.last_at = 0.0
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length", 0)))
                at = time.time()
                # answer first: the sender waits for the answer, not for this sink's bookkeeping
                self.send_response(200)
                self.send_header("Content-Length", "0")  # so it need not wait for the close
                self.end_headers()
                self.wfile.flush()
                keys = KEY.findall(json.loads(raw).get("message", ""))
                with sink._lock:
                    sink.messages += 1
                    sink.digests += len(keys) > 1
                    sink.last_at = at
                    for key in keys:
                        sink.keys[key] += 1
                        sink.first_at.setdefault(key, at)

            def log_message(self, *_args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.request_queue_size = 128
        self.port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def url(self, channel: str) -> str:
        return f"json://127.0.0.1:{self.port}/{channel}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def armed_rows(
    database: str, label: str, count: int, due: datetime, *, priority: str, kind: str
) -> list[int]:
    """``count`` armed checkpoints due at ``due``, ten per ticket ``<label>-<n>``; their ids."""
    with pg_connect(database) as conn:
        conn.execute(
            """
            INSERT INTO tickets (source, ticket_id, policy, plan, priority, status, created_at,
                                 waiting, version, updated_at)
            SELECT 'bench', %(label)s || '-' || g, 'soporte-completo', NULL, %(p)s, 'open',
                   %(due)s - interval '1 hour', false, 1, now()
            FROM generate_series(1, %(n)s) AS g
            """,
            {"label": label, "p": priority, "due": due, "n": -(-count // 10)},
        )
        rows = conn.execute(
            """
            INSERT INTO checkpoints (ticket_pk, key, metric, kind, percent, tier, due_at, state,
                                     updated_at)
            SELECT t.id, 'first_response:' || %(kind)s || ':' || g, 'first_response', %(kind)s,
                   CASE WHEN %(kind)s = 'warning' THEN 75 END, NULL, %(due)s, 'armed', now()
            FROM tickets t CROSS JOIN generate_series(1, 10) AS g
            WHERE t.ticket_id LIKE %(label)s || '-%%'
            RETURNING id
            """,
            {"kind": kind, "due": due, "label": label},
        ).fetchall()
        if count > 1000:
            conn.execute("ANALYZE")
    return sorted(int(r[0]) for r in rows)[:count]


def beat_until(index: TimerIndex, send: Any, expected: int, deadline: float) -> float:
    """Beat's loop until ``expected`` ids were handed out; when the last batch was (wall)."""
    handed, last = 0, 0.0

    def counting(ids: Sequence[int]) -> None:
        nonlocal handed, last
        send(ids)
        handed += len(ids)
        last = time.time()

    dispatcher = Dispatcher(index, counting)
    while handed < expected and time.time() < deadline:
        time.sleep(dispatcher.tick(datetime.now(UTC)).sleep_s)
    return last


def notification_rows(database: str) -> tuple[int, int]:
    with pg_connect(database) as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE status = 'sent'), count(*) FROM notifications"
        ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def all_sent(database: str) -> bool:
    sent, total = notification_rows(database)
    return total > 0 and sent == total


def fired_count(database: str, ids: Sequence[int]) -> int:
    with pg_connect(database) as conn:
        row = conn.execute(
            "SELECT count(*) FROM checkpoints WHERE state = 'fired' AND id BETWEEN %s AND %s",
            [ids[0], ids[-1]],
        ).fetchone()
    return int(row[0]) if row else 0


def run_burst(ctx: dict[str, Any], args: argparse.Namespace, bars: Bars) -> None:
    sink, database, index = ctx["sink"], ctx["database"], ctx["index"]
    n = args.burst
    print(f"\n== burst: {n:,} checkpoints ({args.priority} {args.kind}) due in the same second ==")
    due_s = float(int(time.time()) + args.lead)
    due = datetime.fromtimestamp(due_s, UTC)
    ids = armed_rows(database, "burst", n, due, priority=args.priority, kind=args.kind)
    index.arm((cid, due) for cid in ids)
    if time.time() > due_s - 0.5:
        raise RuntimeError(f"arming took longer than --lead {args.lead} s: raise it")
    before = ctx["keys_before"] = sum(sink.keys.values())
    time.sleep(max(0.0, due_s - time.time()))  # the CPU window starts at the due instant
    cpu0 = CpuSample.take(ctx["groups"])
    handed_at = beat_until(index, ctx["send"], len(ids), due_s + args.timeout)
    fired_at = float("nan")
    if wait_for(lambda: fired_count(database, ids) >= len(ids), due_s + args.timeout, 0.5):
        fired_at = time.time()
    # Every row is written by then (firing writes them in its transaction): wait on the sink
    # alone (polling counts of 200,000 rows would cost PostgreSQL seconds of CPU), then check.
    _sent, total = notification_rows(database)
    wait_for(lambda: sum(sink.keys.values()) - before >= total, due_s + args.timeout, 0.1)
    cpu1 = CpuSample.take(ctx["groups"])
    wait_for(lambda: all_sent(database), time.time() + 30, 0.5)  # the last commits
    sent, total = notification_rows(database)
    cpu = cpu1.percent_since(cpu0)
    cpu_s = {g: cpu1.seconds[g] - cpu0.seconds[g] for g in cpu1.seconds}
    cpu_s["workers"] = sum(v for g, v in cpu_s.items() if g.startswith("worker"))
    wanted = set(ids)
    cpu["workers"] = sum(v for g, v in cpu.items() if g.startswith("worker"))
    keys = [k for k in sink.keys if int(k.split(":", 1)[0]) in wanted]
    dupes = sum(sink.keys[k] - 1 for k in keys)
    first = min((sink.first_at[k] for k in keys), default=float("nan"))
    last = max((sink.first_at[k] for k in keys), default=float("nan"))
    ok = len(keys) == total == sent and dupes == 0
    print(
        table(
            ["measure", "value"],
            [
                ["checkpoints due", f"{len(ids):,}"],
                ["notification rows written / sent", f"{total:,} / {sent:,}"],
                ["distinct keys received by the sink / duplicates", f"{len(keys):,} / {dupes}"],
                ["messages received (digests)", f"{sink.messages:,} ({sink.digests:,})"],
                ["due -> last batch handed to the fire queue, s", f"{handed_at - due_s:.2f}"],
                [
                    "due -> every checkpoint fired in the DB (polled 0.5 s), s",
                    f"{fired_at - due_s:.2f}",
                ],
                ["due -> first key at the sink, s", f"{first - due_s:.2f}"],
                ["due -> last key at the sink, s", f"{last - due_s:.2f}"],
                [
                    "CPU seconds: workers / postgres / redis / this bench's sink and loop",
                    " / ".join(
                        f"{cpu_s.get(g, float('nan')):.1f}"
                        for g in ("workers", "postgres", "redis", "bench")
                    ),
                ],
                [
                    "CPU % of one core: workers / postgres / redis / machine",
                    " / ".join(
                        f"{cpu.get(g, float('nan')):.0f}"
                        for g in ("workers", "postgres", "redis", "machine")
                    ),
                ],
            ],
        )
    )
    bars.check(
        f"burst: {len(ids):,} due in one second, last handed to Apprise (sink)",
        f"{last - due_s:.2f} s",
        f"< {BAR_BURST_S:.0f} s, every key once",
        ok and last - due_s < BAR_BURST_S,
    )


def run_lateness(ctx: dict[str, Any], args: argparse.Namespace, bars: Bars) -> None:
    sink, database, index = ctx["sink"], ctx["database"], ctx["index"]
    print(f"\n== lateness: {args.late:,} single pages due within {args.window:.0f} s ==")
    start = float(int(time.time()) + args.lead + args.late * 0.05)  # after the rows are in
    step = args.window / args.late
    due: dict[int, float] = {}
    for i in range(args.late):  # one ticket per page: never a storm
        at = start + i * step
        when = datetime.fromtimestamp(at, UTC)
        (cid,) = armed_rows(database, f"late{i}", 1, when, priority="P1", kind="breach")
        due[cid] = at
    index.arm((cid, datetime.fromtimestamp(at, UTC)) for cid, at in due.items())
    beat_until(index, ctx["send"], len(due), start + args.window + args.timeout)
    page_keys = {f"{cid}:critico-phone:oncall_phone:0": at for cid, at in due.items()}
    wait_for(lambda: all(k in sink.first_at for k in page_keys), time.time() + 30, 0.2)
    late = sorted(
        1000 * (sink.first_at[k] - at) for k, at in page_keys.items() if k in sink.first_at
    )
    missing = len(page_keys) - len(late)
    p50, p99 = percentile(late, 50), percentile(late, 99)
    worst = late[-1] if late else float("nan")
    print(
        table(
            ["lateness due -> sink (ms)", "n", "p50", "p99", "max", "missing"],
            [
                [
                    "page to oncall_phone",
                    f"{len(late):,}",
                    f"{p50:.0f}",
                    f"{p99:.0f}",
                    f"{worst:.0f}",
                    f"{missing}",
                ]
            ],
        )
    )
    bars.check(
        "lateness: p99 due -> page at the sink",
        f"{p99:.0f} ms",
        f"< {BAR_P99_MS:.0f} ms",
        p99 < BAR_P99_MS and missing == 0,
    )


def run_inprocess(
    ctx: dict[str, Any], args: argparse.Namespace, url: str, environ: dict[str, str]
) -> None:
    """The same work without Celery: fire_checkpoints then deliver_written, batch by batch."""
    n, size = args.burst, args.batch
    print(f"\n== in process: {n:,} checkpoints, fired and delivered in batches of {size} ==")
    policies = PolicyBook.from_settings(Settings(policy_dir=PRESETS))
    engine = make_engine(url)
    sessions = session_factory(engine)
    due = datetime.now(UTC).replace(microsecond=0)
    ids = armed_rows(ctx["database"], "inproc", n, due, priority=args.priority, kind=args.kind)
    deliverer = Deliverer(policies, AppriseSender(), environ)
    warm_apprise()
    fired_cpu = delivered_cpu = 0.0
    for start in range(0, n, size):  # as the fire task does: fire, commit, deliver what it wrote
        began = time.process_time()
        with sessions.begin() as session:
            fired = fire_checkpoints(
                session, policies, ids[start : start + size], datetime.now(UTC)
            )
        middle = time.process_time()
        with sessions.begin() as session:
            deliverer.deliver_written(session, fired.notes, fired.about, datetime.now(UTC))
        fired_cpu += middle - began
        delivered_cpu += time.process_time() - middle
    engine.dispose()
    print(
        table(
            ["CPU of this process, ms a checkpoint", "value"],
            [
                ["fire_checkpoints", f"{1000 * fired_cpu / n:.3f}"],
                [
                    "Deliverer.deliver_written (rendering, Apprise, write-back)",
                    f"{1000 * delivered_cpu / n:.3f}",
                ],
            ],
        )
    )
    print("  (the sink runs in this process too: its share is in the delivery figure)")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "parts",
        nargs="*",
        choices=["burst", "lateness", "inprocess", []],
        help="default: burst lateness (inprocess only when named)",
    )
    parser.add_argument("--batch", type=int, default=100, help="inprocess: checkpoints a batch")
    parser.add_argument("--burst", type=int, default=100_000, help="checkpoints due at once")
    parser.add_argument("--priority", default="P1", help="burst tickets' priority")
    parser.add_argument("--kind", default="breach", choices=["breach", "warning"])
    parser.add_argument("--late", type=int, default=300, help="lateness: single pages")
    parser.add_argument("--window", type=float, default=60.0, help="lateness: over seconds")
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument("--concurrency", type=int, default=4, help="per worker process")
    parser.add_argument(
        "--storm-threshold",
        default=None,
        help="ESCALERA_STORM_THRESHOLD for the workers (0: no digests)",
    )
    parser.add_argument(
        "--lead",
        type=float,
        default=None,
        help="seconds between arming and the due instant (default: by size)",
    )
    parser.add_argument("--timeout", type=float, default=600, help="give up after, s")
    args = parser.parse_args()
    args.parts = args.parts or ["burst", "lateness"]
    args.lead = args.lead or 3.0 + args.burst / 20_000
    return args


def main() -> int:
    args = parse_args()
    parts = args.parts
    run = run_id()
    prefix = f"escalera-bench-{run}"
    queue = f"{prefix}-q"
    database = f"escalera_bench_delivery_{run}"
    print(f"command: {command_line()}")
    bars = Bars()
    with ExitStack() as stack:
        rds = PrivateRedis()
        stack.callback(rds.stop)
        sink = KeySink()
        stack.callback(sink.close)
        url = stack.enter_context(fresh_database(database))
        extra = {f"ESCALERA_CHANNEL_{c.upper()}": sink.url(c) for c in CHANNELS}
        if args.storm_threshold is not None:
            extra["ESCALERA_STORM_THRESHOLD"] = str(args.storm_threshold)
        env = escalera_env(  # the appliers' events queue apart from the fire queue
            url, prefix, f"{queue}-events", REDIS_URL=rds.url, ESCALERA_FIRE_QUEUE=queue, **extra
        )
        procs: list[subprocess.Popen[bytes]] = []
        stack.callback(stop_all, procs)
        logs = start_workers(
            procs, args.workers, concurrency=args.concurrency, queue=queue, env=env, prefix=prefix
        )
        for log in logs:
            stack.callback(log.unlink, missing_ok=True)
        print("setup:")
        print_kv(
            [
                *machine(),
                ("redis", f"private redis-server {rds.version} on 127.0.0.1:{rds.port}"),
                ("postgres", pg_settings()),
                ("database", database),
                ("workers", f"{args.workers} x worker.cli worker --concurrency {args.concurrency}"),
                ("storm threshold", args.storm_threshold or "default (10 per channel per batch)"),
                ("started", datetime.now(UTC).isoformat(timespec="seconds")),
            ]
        )
        if not workers_ready(logs, procs, 90):
            raise RuntimeError(f"worker did not start:\n{tail(logs[0])}")
        app, send = celery_sender(rds, prefix, queue)
        stack.callback(app.close)
        pg = postgres_tree(database)
        ctx: dict[str, Any] = {
            "sink": sink,
            "database": database,
            "index": TimerIndex(rds.client, prefix),
            "send": send,
            "groups": {
                **{f"worker{i}": Tree(proc.pid) for i, proc in enumerate(procs)},
                **({"postgres": pg} if pg else {}),
                "redis": [rds.proc.pid],
                "bench": [os.getpid()],  # its sink, and the beat-like loop
            },
        }
        if "burst" in parts:
            run_burst(ctx, args, bars)
        if "lateness" in parts:
            run_lateness(ctx, args, bars)
        if "inprocess" in parts:
            run_inprocess(ctx, args, url, dict(extra))
    print("\n== results ==")
    print(
        table(
            ["bar", "measured", "bar", "result"],
            [[n, v, b, "PASS" if ok else "FAIL"] for n, v, b, ok in bars.rows],
        )
    )
    print(
        f"finished: {datetime.now(UTC).isoformat(timespec='seconds')}; private redis-server "
        "stopped, workers stopped, database dropped."
    )
    return 0 if bars.passed else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(2)
    except Exception:  # the run itself broke (cleanup already ran): not a FAIL of a bar
        traceback.print_exc()
        sys.exit(2)
