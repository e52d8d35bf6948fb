"""Timer index at scale: Redis memory and reconcile for 1M timers, a 100k burst, lateness.

Three measurements against the real code (``scheduler.timer_index.TimerIndex``,
``scheduler.dispatch.Dispatcher``, ``worker.events.reconcile.reconcile_timers``), all on a PRIVATE
``redis-server`` this script starts on a free loopback port (so memory numbers are ours alone)
and a PostgreSQL database ``escalera_bench_timers_<run>`` it creates, migrates and drops:

- scale: 1,000,000 armed checkpoints in PostgreSQL (server-side ``INSERT ... SELECT
  generate_series``, under 2,000 ticket rows), then ``reconcile_timers(session, TimerIndex)``
  into an empty index. Reports the reconcile time (bar < 30 s), the Redis memory per timer from
  ``INFO memory`` ``used_memory`` before/after and from ``MEMORY USAGE <due key> SAMPLES 0`` /
  count (bar <= 128 bytes each), a second (nothing missing) reconcile, and the time just to
  stream the rows from the database (where reconcile's time goes).
- burst: 100,000 checkpoints due in the same second (on top of the 1M future timers unless
  ``--background 0``), one ``Dispatcher.tick(now)`` whose ``send`` publishes to Celery as beat
  does (``app.send_task("escalera.fire_checkpoints", args=[ids])``) on the private Redis; time
  until the last batch is handed to the fire queue (bar < 10 s). The same with a no-op ``send``
  (claim only). This is "handed to the fire queue", not "handed to Apprise": firing in the
  database and delivering are not measured here.
- lateness: 10,000 checkpoints due uniformly within one minute, armed ahead, a loop that calls
  ``Dispatcher.tick(datetime.now(UTC))`` and sleeps the returned ``sleep_s`` (as beat does); for
  each checkpoint ``claimed_at - due`` (wall clock when ``send`` receives its batch) and
  ``handed_at - due`` (after ``send_task`` returned); ``send`` then releases the leases, as the
  fire task would (without it, leases expire after 60 s and the reaper hands the first ones out
  again before the minute is over). Bars: p99 < 250 ms, max < 1 s.
- e2e (only when named; informational, no bar): ``--e2e`` checkpoints due in one second in the
  database and the index, one tick publishing to the fire queue, real ``python -m worker.cli
  worker`` processes firing them and delivering each notification through Apprise to a local
  ``json://`` sink; time until all are fired in the database and until the sink has them all.

Worker RSS flatness at 1M timers is measured by ``worker_rss_bench.py``, not here.
"""

from __future__ import annotations

import argparse
import math
import random
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from contextlib import ExitStack, suppress
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import select

# ``python bench/timers_bench.py`` puts bench/ (not the repository root) on sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import (
    PrivateRedis,
    command_line,
    escalera_env,
    fresh_database,
    machine,
    percentile,
    pg_connect,
    pg_settings,
    print_kv,
    queue_key,
    run_id,
    start_workers,
    stop_all,
    table,
    tail,
    workers_ready,
)
from scheduler.dispatch import Dispatcher
from scheduler.timer_index import TimerIndex
from shared.celery_app import FIRE_CHECKPOINTS, make_celery
from shared.config import Settings
from shared.db.engine import make_engine, session_factory
from shared.db.models import Checkpoint, CheckpointState
from shared.redis_keys import CLAIM_BATCH
from worker.events.reconcile import reconcile_timers

BAR_BYTES_PER_TIMER = 128
BAR_RECONCILE_S = 30.0
BAR_BURST_S = 10.0
BAR_P99_MS = 250.0
BAR_MAX_MS = 1000.0


class Bars:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, bool]] = []

    def check(self, name: str, value: str, bar: str, ok: bool) -> None:
        self.rows.append((name, value, bar, ok))

    @property
    def passed(self) -> bool:
        return all(ok for *_, ok in self.rows)


# -- database ------------------------------------------------------------------------------------
def fill_database(database: str, timers: int, tickets: int, start: datetime) -> float:
    """``timers`` armed checkpoints under ``tickets`` tickets, due over the next 30 days."""
    per_ticket = -(-timers // tickets)
    began = time.perf_counter()
    with pg_connect(database) as conn:
        conn.execute(
            """
            INSERT INTO tickets (source, ticket_id, policy, plan, priority, status, created_at,
                                 waiting, version, updated_at)
            SELECT 'bench', 'T-' || g, 'soporte-completo', 'pro', 'high', 'open', %(t)s,
                   false, 1, %(t)s
            FROM generate_series(1, %(n)s) AS g
            """,
            {"t": start, "n": tickets},
        )
        first = conn.execute("SELECT min(id) FROM tickets").fetchone()
        assert first is not None
        conn.execute(
            """
            INSERT INTO checkpoints (ticket_pk, key, metric, kind, percent, tier, due_at, state,
                                     updated_at)
            SELECT %(first)s + (g - 1) / %(per)s, 'resolution:warn:' || g, 'resolution', 'warn',
                   75, NULL, %(t)s + make_interval(secs => 60 + random() * 30 * 86400),
                   'armed', %(t)s
            FROM generate_series(1, %(n)s) AS g
            """,
            {"first": first[0], "per": per_ticket, "t": start, "n": timers},
        )
        conn.execute("ANALYZE tickets")
        conn.execute("ANALYZE checkpoints")
    return time.perf_counter() - began


def stream_only(url: str) -> tuple[list[tuple[int, datetime]], float]:
    """The reconcile query alone (same SQLAlchemy select, yield_per 5000): rows, seconds."""
    engine = make_engine(url)
    try:
        with session_factory(engine)() as session:
            query = (
                select(Checkpoint.id, Checkpoint.due_at)
                .where(Checkpoint.state == CheckpointState.ARMED.value)
                .execution_options(yield_per=5000)
            )
            began = time.perf_counter()
            rows = [(cid, due) for cid, due in session.execute(query)]
            return rows, time.perf_counter() - began
    finally:
        engine.dispose()


# -- scale ---------------------------------------------------------------------------------------
def run_scale(
    args: argparse.Namespace, rds: PrivateRedis, url: str, database: str, bars: Bars
) -> None:
    prefix = f"{args.prefix}-scale"
    print(f"\n== scale: {args.timers:,} armed checkpoints ==")
    fill_s = fill_database(database, args.timers, args.tickets, datetime.now(UTC))
    with pg_connect(database) as conn:
        row = conn.execute("SELECT count(*) FROM checkpoints WHERE state = 'armed'").fetchone()
        armed_rows = int(row[0]) if row else 0
    print(f"  filled PostgreSQL: {armed_rows:,} armed rows in {fill_s:.1f} s")

    index = TimerIndex(rds.client, prefix)
    # Load the Lua scripts first, so the script cache is not counted as timer memory.
    index.reconcile([])
    index.claim(datetime(2000, 1, 1, tzinfo=UTC), limit=1)
    index.reap(datetime(2000, 1, 1, tzinfo=UTC))
    before = rds.used_memory()

    engine = make_engine(url)
    try:
        with session_factory(engine)() as session:
            cpu0, redis0 = time.process_time(), rds.cpu_seconds()
            began = time.perf_counter()
            missing = reconcile_timers(session, index)
            first_s = time.perf_counter() - began
            own_cpu, redis_cpu = time.process_time() - cpu0, rds.cpu_seconds() - redis0
        after = rds.used_memory()
        with session_factory(engine)() as session:
            began = time.perf_counter()
            missing_again = reconcile_timers(session, index)
            second_s = time.perf_counter() - began
    finally:
        engine.dispose()
    due, leased = index.count()
    key_bytes = int(rds.client.memory_usage(index.keys.due, samples=0) or 0)
    encoding = rds.client.object("encoding", index.keys.due)
    fetched, stream_s = stream_only(url)
    rows = len(fetched)
    delta = after - before
    # The Redis half alone: the same rows, already in memory, into an empty index.
    rds.client.unlink(index.keys.due, index.keys.inflight)
    began = time.perf_counter()
    index_missing = index.reconcile(fetched)
    index_s = time.perf_counter() - began
    del fetched
    rds.client.unlink(index.keys.due, index.keys.inflight)

    print(
        table(
            ["measure", "value"],
            [
                ["armed rows in PostgreSQL", f"{armed_rows:,}"],
                ["reconcile #1 (empty index): seconds", f"{first_s:.2f}"],
                ["reconcile #1: missing returned", f"{missing:,}"],
                ["reconcile #1: timers/s", f"{missing / first_s:,.0f}"],
                ["reconcile #2 (all present): seconds", f"{second_s:.2f}"],
                ["reconcile #2: missing returned", f"{missing_again:,}"],
                [
                    "reconcile #1: CPU s of this process / of redis",
                    f"{own_cpu:.1f} / {redis_cpu:.1f}",
                ],
                ["DB stream only (same select, yield_per 5000): s", f"{stream_s:.2f}"],
                ["DB stream only: rows", f"{rows:,}"],
                ["TimerIndex.reconcile only (rows in memory): s", f"{index_s:.2f}"],
                ["TimerIndex.reconcile only: missing returned", f"{index_missing:,}"],
                ["index size (due, leased)", f"{due:,}, {leased:,}"],
                ["due key encoding", str(encoding)],
                ["used_memory before / after (bytes)", f"{before:,} / {after:,}"],
                ["used_memory delta / timer (bytes)", f"{delta / max(due, 1):.1f}"],
                ["MEMORY USAGE due SAMPLES 0 (bytes)", f"{key_bytes:,}"],
                ["MEMORY USAGE / timer (bytes)", f"{key_bytes / max(due, 1):.1f}"],
            ],
        )
    )
    per_timer = max(delta, key_bytes) / max(due, 1)
    bars.check(
        "scale: Redis bytes/timer (max of used_memory delta, MEMORY USAGE)",
        f"{per_timer:.1f}",
        f"<= {BAR_BYTES_PER_TIMER}",
        per_timer <= BAR_BYTES_PER_TIMER and due == args.timers,
    )
    bars.check(
        f"scale: reconcile {args.timers:,} from PostgreSQL",
        f"{first_s:.2f} s",
        f"< {BAR_RECONCILE_S:.0f} s",
        first_s < BAR_RECONCILE_S and missing == args.timers,
    )


# -- burst and lateness --------------------------------------------------------------------------
def background(rds: PrivateRedis, index: TimerIndex, count: int, first_id: int) -> float:
    """``count`` timers due in 1 to 30 days in ``index`` (not due during the run); seconds."""
    if not count:
        return 0.0
    now = time.time()
    began = time.perf_counter()
    rng = random.Random(7)
    pipe = rds.client.pipeline(transaction=False)
    for start in range(0, count, 10_000):
        ids = range(first_id + start, first_id + min(start + 10_000, count))
        pipe.zadd(index.keys.due, {str(i): now + 86400 * (1 + 29 * rng.random()) for i in ids})
        if len(pipe) >= 10:
            pipe.execute()
    pipe.execute()
    return time.perf_counter() - began


def celery_sender(rds: PrivateRedis, prefix: str, queue: str) -> tuple[Any, Callable[..., None]]:
    app = make_celery(
        Settings(
            redis_url=rds.url, redis_prefix=prefix, fire_queue=queue, events_queue=f"{queue}-events"
        )
    )

    def send(ids: Sequence[int]) -> None:
        app.send_task(FIRE_CHECKPOINTS, args=[list(ids)])

    return app, send


def run_burst(args: argparse.Namespace, rds: PrivateRedis, bars: Bars) -> None:
    print(f"\n== burst: {args.burst:,} checkpoints due in the same second ==")
    rows = []
    results: dict[str, float] = {}
    for mode in ("claim only (no-op send)", "claim + send_task to the fire queue"):
        publish = "send_task" in mode
        prefix = f"{args.prefix}-burst-{'send' if publish else 'claim'}"
        queue = f"{prefix}-fire"
        index = TimerIndex(rds.client, prefix)
        bg_s = background(rds, index, args.background, 10_000_000)
        app = None
        sent: list[int] = []
        if publish:
            app, publish_send = celery_sender(rds, prefix, queue)
            publish_send([0])  # connect to the broker and declare the queue before the clock
            rds.client.delete(queue_key(prefix, queue))

            def send(
                ids: Sequence[int], publish_send: Any = publish_send, sent: list[int] = sent
            ) -> None:
                publish_send(ids)
                sent.append(len(ids))
        else:

            def send(ids: Sequence[int], sent: list[int] = sent) -> None:
                sent.append(len(ids))

        second = float(int(time.time()))
        due = datetime.fromtimestamp(second, UTC)
        began = time.perf_counter()
        index.arm((i, due) for i in range(1, args.burst + 1))
        arm_s = time.perf_counter() - began
        dispatcher = Dispatcher(index, send)
        now = datetime.now(UTC)
        began = time.perf_counter()
        result = dispatcher.tick(now)
        tick_s = time.perf_counter() - began
        due_left, leased = index.count()
        queued = int(rds.client.llen(queue_key(prefix, queue))) if publish else len(sent)
        ok = result.claimed == args.burst and sum(sent) == args.burst and leased == args.burst
        ok = ok and queued == -(-args.burst // CLAIM_BATCH)
        results[mode] = tick_s
        rows.append(
            [
                mode,
                f"{args.background:,}",
                f"{arm_s:.2f}",
                f"{tick_s:.2f}",
                f"{result.claimed / tick_s:,.0f}",
                f"{len(sent):,}",
                f"{queued:,}",
                f"{due_left:,} / {leased:,}",
                "yes" if ok else "NO",
                f"{bg_s:.1f}",
            ]
        )
        if app is not None:
            app.close()
        if not ok:
            results[mode] = float("inf")
        rds.client.delete(index.keys.due, index.keys.inflight, queue_key(prefix, queue))
        for key in rds.client.scan_iter(match=f"{prefix}*"):
            rds.client.unlink(key)
    print(
        table(
            [
                "tick",
                "other timers",
                "arm s",
                "tick s",
                "ids/s",
                "batches",
                "queue msgs",
                "due/leased after",
                "all ok",
                "bg fill s",
            ],
            rows,
        )
    )
    print(
        f"  tick s = one Dispatcher.tick(now): reap, claim {CLAIM_BATCH:,} at a time, send each "
        "batch, next_due; ends when the last batch has been published to the fire queue."
    )
    sending = results["claim + send_task to the fire queue"]
    bars.check(
        f"burst: {args.burst:,} due in one second handed to the fire queue",
        f"{sending:.2f} s",
        f"< {BAR_BURST_S:.0f} s",
        sending < BAR_BURST_S,
    )


def run_lateness(args: argparse.Namespace, rds: PrivateRedis, bars: Bars) -> None:
    print(
        f"\n== lateness: {args.late:,} checkpoints due uniformly within {args.window:.0f} s, "
        "beat-like loop =="
    )
    prefix = f"{args.prefix}-late"
    queue = f"{prefix}-fire"
    index = TimerIndex(rds.client, prefix)
    bg_s = background(rds, index, args.background, 10_000_000)
    app, publish = celery_sender(rds, prefix, queue)
    publish([0])
    rds.client.delete(queue_key(prefix, queue))

    start = time.time() + 3.0
    rng = random.Random(11)
    due = {i: start + rng.random() * args.window for i in range(1, args.late + 1)}
    index.arm((i, datetime.fromtimestamp(t, UTC)) for i, t in due.items())
    claimed_late: dict[int, float] = {}
    handed_late: dict[int, float] = {}
    duplicates = 0

    def send(ids: Sequence[int]) -> None:
        nonlocal duplicates
        claimed_at = time.time()
        publish(ids)
        handed_at = time.time()
        for cid in ids:
            if cid in claimed_late:
                duplicates += 1
                continue
            claimed_late[cid] = claimed_at - due[cid]
            handed_late[cid] = handed_at - due[cid]
        index.release(ids)  # what the fire task does once it has fired them

    dispatcher = Dispatcher(index, send)
    ticks, sleeps = 0, []
    deadline = start + args.window + 15
    while len(claimed_late) < args.late and time.time() < deadline:
        result = dispatcher.tick(datetime.now(UTC))
        ticks += 1
        sleeps.append(result.sleep_s)
        time.sleep(result.sleep_s)
    app.close()
    missing = args.late - len(claimed_late)
    queued = int(rds.client.llen(queue_key(prefix, queue)))
    for key in rds.client.scan_iter(match=f"{prefix}*"):
        rds.client.unlink(key)

    rows = []
    stats: dict[str, tuple[float, float, float]] = {}
    for name, values in (
        ("claimed_at - due (send called)", claimed_late),
        ("handed_at - due (send_task returned)", handed_late),
    ):
        ms = sorted(v * 1000 for v in values.values())
        p50, p99, p999 = (percentile(ms, p) for p in (50, 99, 99.9))
        stats[name] = (p50, p99, ms[-1] if ms else float("nan"))
        early = sum(1 for v in ms if v < 0)
        rows.append(
            [
                name,
                f"{len(ms):,}",
                f"{ms[0]:.1f}" if ms else "-",
                f"{p50:.1f}",
                f"{p99:.1f}",
                f"{p999:.1f}",
                f"{ms[-1]:.1f}" if ms else "-",
                f"{early:,}",
            ]
        )
    print(table(["lateness (ms)", "n", "min", "p50", "p99", "p99.9", "max", "early"], rows))
    print(
        f"  ticks {ticks:,}, fire-queue messages {queued:,}, duplicates {duplicates}, "
        f"never claimed {missing}, other timers {args.background:,} (filled in {bg_s:.1f} s), "
        f"median sleep_s {sorted(sleeps)[len(sleeps) // 2]:.3f}"
    )
    _p50, p99, worst = stats["claimed_at - due (send called)"]
    bars.check(
        "lateness: p99 claimed_at - due",
        f"{p99:.1f} ms",
        f"< {BAR_P99_MS:.0f} ms",
        p99 < BAR_P99_MS,
    )
    bars.check(
        "lateness: max claimed_at - due",
        f"{worst:.1f} ms",
        f"< {BAR_MAX_MS:.0f} ms",
        worst < BAR_MAX_MS and missing == 0 and duplicates == 0,
    )


# -- end to end (optional): fire workers and an HTTP sink ------------------------------------------
class Sink:
    """An HTTP endpoint Apprise's ``json://`` posts to, counting what it received and when."""

    def __init__(self) -> None:
        self.count = 0
        self.last_at = 0.0
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                with sink._lock:
                    sink.count += 1
                    sink.last_at = time.time()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def run_e2e(
    args: argparse.Namespace, rds: PrivateRedis, url: str, database: str, bars: Bars
) -> None:
    n = args.e2e
    print(
        f"\n== end to end: {n:,} checkpoints due in one second, claimed in-process, fired and "
        f"delivered by {args.e2e_workers} real worker(s) (concurrency {args.e2e_concurrency}) "
        "to a local json:// sink =="
    )
    prefix = f"{args.prefix}-e2e"
    queue = f"{prefix}-q"
    sink = Sink()
    now = datetime.now(UTC)
    with pg_connect(database) as conn:
        conn.execute(
            """
            INSERT INTO tickets (source, ticket_id, policy, plan, priority, status, created_at,
                                 waiting, version, updated_at)
            SELECT 'e2e', 'E-' || g, 'soporte-completo', NULL, 'high', 'open', %(t)s,
                   false, 1, %(t)s
            FROM generate_series(1, %(n)s) AS g
            """,
            {"t": now, "n": max(1, n // 10)},
        )
        ids = [
            int(r[0])
            for r in conn.execute(
                """
                INSERT INTO checkpoints (ticket_pk, key, metric, kind, percent, tier, due_at,
                                         state, updated_at)
                SELECT t.id, 'resolution:warning:' || g, 'resolution', 'warning', 75, NULL,
                       %(due)s, 'armed', %(t)s
                FROM tickets t CROSS JOIN generate_series(1, 10) AS g
                WHERE t.source = 'e2e'
                RETURNING id
                """,
                {"due": now.replace(microsecond=0), "t": now},
            ).fetchall()
        ][:n]
    index = TimerIndex(rds.client, prefix)
    env = escalera_env(
        url,
        prefix,
        f"{queue}-events",  # the appliers' queue, apart from the fire queue
        REDIS_URL=rds.url,
        ESCALERA_FIRE_QUEUE=queue,
        ESCALERA_CHANNEL_SUPPORT_EMAIL=f"json://127.0.0.1:{sink.port}/hook",
        # one message per notification, as this part counts them (bench/delivery_bench.py
        # measures storms and their digests)
        ESCALERA_STORM_THRESHOLD="0",
    )
    procs: list[subprocess.Popen[bytes]] = []
    try:
        logs = start_workers(
            procs,
            args.e2e_workers,
            concurrency=args.e2e_concurrency,
            queue=queue,
            env=env,
            prefix=prefix,
        )
        if not workers_ready(logs, procs, 60):
            raise RuntimeError(f"worker did not start:\n{tail(logs[0])}")
        app, send = celery_sender(rds, prefix, queue)
        index.arm((cid, now.replace(microsecond=0)) for cid in ids)
        began = time.perf_counter()
        began_wall = time.time()
        tick = Dispatcher(index, send).tick(datetime.now(UTC))
        handed_s = time.perf_counter() - began
        wait_until = time.monotonic() + args.e2e_timeout
        fired_s = float("nan")
        with pg_connect(database) as watch:
            while sink.count < len(ids) and time.monotonic() < wait_until:
                time.sleep(0.2)
                if math.isnan(fired_s):  # not yet all fired
                    row = watch.execute(
                        "SELECT count(*) FROM checkpoints WHERE state = 'fired'"
                    ).fetchone()
                    if row and int(row[0]) >= len(ids):
                        fired_s = time.perf_counter() - began
        received, last_s = sink.count, sink.last_at - began_wall
        app.close()
        with pg_connect(database) as conn:
            row = conn.execute(
                "SELECT count(*) FILTER (WHERE status = 'sent'), count(*) FROM notifications"
            ).fetchone()
            sent, total = (int(row[0]), int(row[1])) if row else (0, 0)
    finally:
        stop_all(procs)
        sink.close()
        for key in rds.client.scan_iter(match=f"{prefix}*"):
            rds.client.unlink(key)
        for log in logs:
            log.unlink(missing_ok=True)
    print(
        table(
            ["measure", "value"],
            [
                ["checkpoints armed and due", f"{len(ids):,}"],
                ["claimed by one tick", f"{tick.claimed:,}"],
                ["tick: handed to the fire queue, s", f"{handed_s:.2f}"],
                ["tick start -> all fired in the DB (polled 0.2 s), s", f"{fired_s:.2f}"],
                ["sink received", f"{received:,}"],
                ["notifications sent / written in DB", f"{sent:,} / {total:,}"],
                ["tick start -> last received by the sink, s", f"{last_s:.2f}"],
                ["delivered per second", f"{received / max(last_s, 1e-9):,.0f}"],
                [
                    f"extrapolated to {args.burst:,} at that rate, s",
                    f"{args.burst / max(received / max(last_s, 1e-9), 1e-9):,.0f}",
                ],
            ],
        )
    )
    print(
        "  (informational: the 10 s bar is checked on the fire-queue hand-off; this shows the "
        "rest of the path at a smaller N)"
    )


# -- main ----------------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "parts",
        nargs="*",
        choices=["scale", "burst", "lateness", "e2e", []],
        help="which measurements (default: scale burst lateness; e2e only when named)",
    )
    parser.add_argument("--timers", type=int, default=1_000_000, help="scale: armed rows")
    parser.add_argument("--tickets", type=int, default=2_000, help="scale: parent tickets")
    parser.add_argument("--burst", type=int, default=100_000, help="burst: due in one second")
    parser.add_argument("--late", type=int, default=10_000, help="lateness: checkpoints")
    parser.add_argument("--window", type=float, default=60.0, help="lateness: spread, seconds")
    parser.add_argument(
        "--background",
        type=int,
        default=1_000_000,
        help="burst/lateness: future timers also in the due set (0: none)",
    )
    parser.add_argument("--e2e", type=int, default=2_000, help="e2e: checkpoints to deliver")
    parser.add_argument("--e2e-workers", type=int, default=1, help="e2e: worker processes")
    parser.add_argument("--e2e-concurrency", type=int, default=4, help="e2e: per worker")
    parser.add_argument("--e2e-timeout", type=float, default=240, help="e2e: wait at most, s")
    args = parser.parse_args()
    parts = args.parts or ["scale", "burst", "lateness"]
    run = run_id()
    args.prefix = f"escalera-bench-{run}"
    database = f"escalera_bench_timers_{run}"
    needs_db = "scale" in parts or "e2e" in parts
    url = ""

    print(f"command: {command_line()}")
    bars = Bars()
    with ExitStack() as stack:
        rds = PrivateRedis()
        stack.callback(rds.stop)
        print("setup:")
        print_kv(
            [
                *machine(),
                (
                    "redis",
                    f"private redis-server {rds.version} on 127.0.0.1:{rds.port} "
                    f"(pid {rds.proc.pid}, no persistence)",
                ),
                ("postgres", pg_settings() if needs_db else "(not used)"),
                ("database", database if needs_db else "(not used)"),
                ("key prefix", args.prefix),
                ("parts", ", ".join(parts)),
            ]
        )
        if needs_db:
            url = stack.enter_context(fresh_database(database))
        if "scale" in parts:
            run_scale(args, rds, url, database, bars)
        if "burst" in parts:
            run_burst(args, rds, bars)
        if "lateness" in parts:
            run_lateness(args, rds, bars)
        if "e2e" in parts:
            run_e2e(args, rds, url, database, bars)
        with suppress(redis.RedisError):
            left = rds.client.dbsize()
            print(f"\n  keys left on the private redis before shutdown: {left}")

    print("\n== results ==")
    print(
        table(
            ["bar", "measured", "bar", "result"],
            [[n, v, b, "PASS" if ok else "FAIL"] for n, v, b, ok in bars.rows],
        )
    )
    print("not measured: worker RSS flatness at 1M timers (bench/worker_rss_bench.py).")
    if "e2e" not in parts:
        print("not measured: delivery to Apprise (the burst bar stops at the fire queue; run")
        print("`e2e` for fire + delivery by real workers to a local sink).")
    print("cleanup: private redis-server stopped, database dropped (if created).")
    return 0 if bars.passed else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(2)
    except Exception:  # the run itself broke (cleanup already ran): not a FAIL of a bar
        traceback.print_exc()
        sys.exit(2)
