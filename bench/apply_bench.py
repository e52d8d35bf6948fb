"""Throughput of applying events to PostgreSQL: ``apply_events`` in-process and a real worker.

Run from the repository root (PostgreSQL and Redis must answer on 127.0.0.1)::

    .venv/bin/python bench/apply_bench.py               # ~1.5 minutes, ~50 s of it under load
    .venv/bin/python bench/apply_bench.py --help

Workload: N tickets x 10 canonical events, the life of a real ticket under the
``soporte-completo`` preset (deploy/policies): created, the agent's first response, a customer
reply, opened, pending (clocks pause), the customer answers, open again, the priority is raised,
the agent updates, resolved. The tickets' events are interleaved (event 1 of every ticket, then
event 2 of every ticket, ...), as a desk with many open tickets sends them. N is chosen from the
warm-up's rate so that (a) takes about ``--seconds`` (default 10 s), unless ``--tickets`` is given.

1. (a) in-process: a fresh migrated database ``escalera_bench_apply_<run>_a``; ``apply_events``
   called in a loop on batches of 500, one transaction each, as the worker's applier does,
   after a warm-up on 20 other tickets;
2. the raw ceiling, in the same database: the same number of rows with the same payloads inserted
   with psycopg into a table shaped like ``events`` (same columns, unique key and index), 10 rows
   (one ticket) per multi-row INSERT, one transaction each - the ceiling the ratio is given
   against - and, for context, 1 row per transaction and 1,000 rows per transaction; best of 3;
3. (b) one worker process: a fresh database ``..._b``; all the events are put on a Celery queue of
   our own with the ingest service's publisher (``CeleryPublisher``), then ``python -m worker.cli
   worker --concurrency 1`` is started and timed from its start until every event is in the
   ``events`` table (and, separately, from the first stored event: the steady rate);
4. profiles (``--profile-tickets``, default 40% of N, each on a fresh database): cProfile of the
   in-process loop (time per step of ``apply_events``, top functions by own time) and, if py-spy
   is installed, py-spy of a real worker's applier thread (where its wall time goes, by layer);
5. drops every database, deletes every Redis key under its prefix, stops every process.

Bar (the issue): at least 1,000 events/s applied by one worker process, (b) from its start. The
steady rate and (a) are shown against the same bar for information. Exit status 0 if (b) meets
the bar, 1 if not, 2 if the run itself failed (a process did not start, an event was not applied
or was dead-lettered, a phase overran ``--timeout``).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

from psycopg.types.json import Jsonb

# ``python bench/apply_bench.py`` puts bench/ (not the repository root) on sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import (
    MACHINE,
    POLICY,
    PRESETS,
    REDIS_URL,
    ROOT,
    CpuSample,
    Tree,
    classify,
    command_line,
    delete_prefix,
    escalera_env,
    fmt_rate,
    fresh_database,
    machine,
    median,
    percentile,
    pg_connect,
    pg_settings,
    postgres_tree,
    print_kv,
    py_spy,
    queue_key,
    redis_client,
    redis_version,
    run_id,
    start,
    stop,
    table,
    tail,
    ticket_life,
)
from shared.celery_app import make_celery
from shared.config import Settings
from shared.db.engine import make_engine, session_factory
from shared.events import Event
from worker.api.publisher import QueuePublisher
from worker.events.applier import BATCH
from worker.events.apply import Outcome, apply_events
from worker.policies.book import PolicyBook, load_edition, read_folder

BAR_EVENTS_PER_S = 1000.0
EVENTS_PER_TICKET = 10
WARMUP_TICKETS = 20
EXIT_FAIL, EXIT_BROKEN = 1, 2


class Broken(Exception):
    """The run itself failed: the numbers would mean nothing."""


# -- workload ------------------------------------------------------------------------------------
def workload(tag: str, tickets: int) -> list[Event]:
    """``tickets`` lives of 10 events, interleaved round by round."""
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    lives = [
        ticket_life(f"{tag}-{i:05d}", base + timedelta(seconds=7 * i), seed=i)
        for i in range(tickets)
    ]
    return [Event.model_validate(life[k]) for k in range(EVENTS_PER_TICKET) for life in lives]


def policies() -> PolicyBook:
    edition = load_edition(read_folder(PRESETS), str(PRESETS), datetime.now(UTC))
    return PolicyBook(edition, {}, POLICY)


def _groups(**groups: list[int] | Tree | None) -> dict[str, list[int] | Tree]:
    return {name: group for name, group in groups.items() if group is not None}


# -- (a) in-process ------------------------------------------------------------------------------
@dataclass
class InProcess:
    events: int
    seconds: float
    latencies_ms: list[float]
    by_position: dict[int, list[float]]  # 1..10: the event's place in its ticket's life
    cpu: dict[str, float]

    @property
    def per_s(self) -> float:
        return self.events / self.seconds


def apply_loop(
    url: str,
    events: list[Event],
    *,
    timeout: float,
    profiler: cProfile.Profile | None = None,
    batch: int = BATCH,
) -> tuple[float, list[float]]:
    """Apply ``events``, ``batch`` per transaction as the worker's applier does.

    (seconds, each event's latency in ms: from its batch's start to its commit).
    """
    engine = make_engine(url)
    sessions = session_factory(engine)
    book = policies()
    outcomes: Counter[str] = Counter()
    latencies = []
    deadline = time.monotonic() + timeout
    try:
        if profiler is not None:
            profiler.enable()
        started = time.perf_counter()
        for i in range(0, len(events), batch):
            chunk = events[i : i + batch]
            sent = time.perf_counter()
            with sessions.begin() as session:
                results = apply_events(session, book, chunk, datetime.now(UTC))
            latencies += [(time.perf_counter() - sent) * 1000] * len(chunk)
            outcomes.update(result.outcome.value for result in results)
            if time.monotonic() > deadline:
                raise Broken(f"the in-process loop took longer than {timeout:g} s")
        seconds = time.perf_counter() - started
    finally:
        if profiler is not None:
            profiler.disable()
        engine.dispose()
    if outcomes[Outcome.APPLIED.value] != len(events):
        raise Broken(f"not every event was applied: {dict(outcomes)}")
    return seconds, latencies


def run_in_process(url: str, database: str, events: list[Event], timeout: float) -> InProcess:
    groups = _groups(python=[os.getpid()], postgres=postgres_tree(database))
    first = CpuSample.take(groups)
    seconds, latencies = apply_loop(url, events, timeout=timeout)
    cpu = CpuSample.take(groups).percent_since(first)
    by_position: dict[int, list[float]] = {}
    for event, latency in zip(events, latencies, strict=True):
        by_position.setdefault(int(event.event_id.rsplit("-e", 1)[1]), []).append(latency)
    return InProcess(len(events), seconds, sorted(latencies), by_position, cpu)


# -- (b) a real worker process -------------------------------------------------------------------
@dataclass
class WorkerRun:
    events: int
    publish_seconds: float
    total_seconds: float  # worker start -> last event stored
    startup_seconds: float  # worker start -> first event stored
    steady_seconds: float  # first event stored -> last event stored
    first_count: int  # events already stored when the first count > 0 was seen
    cpu: dict[str, float]
    spy: str | None = None  # py-spy raw output, when profiled

    @property
    def per_s(self) -> float:
        return self.events / self.total_seconds

    @property
    def steady_per_s(self) -> float:
        return (self.events - self.first_count) / self.steady_seconds


@dataclass(frozen=True)
class WorkerSetup:
    url: str
    database: str
    tag: str
    tmp: Path
    timeout: float
    spy: bool = False


def run_worker(setup: WorkerSetup, events: list[Event]) -> WorkerRun:
    prefix = f"escalera-bench-{setup.tag}"
    queue = f"{prefix}-events"
    try:
        celery = make_celery(Settings(REDIS_URL=REDIS_URL, redis_prefix=prefix, events_queue=queue))
        publisher = QueuePublisher(celery, redis_client(), queue)
        started = time.perf_counter()
        for i in range(0, len(events), 500):  # the ingest service's own messages, pushed in bulk
            redis_client().lpush(queue_key(prefix, queue), *publisher.messages(events[i : i + 500]))
        publish_seconds = time.perf_counter() - started
        celery.close()
        queued = int(redis_client().llen(queue_key(prefix, queue)))
        if queued != len(events):
            raise Broken(f"published {len(events)} events but the queue holds {queued}")
        run = _time_worker(setup, prefix, queue, len(events))
        run.publish_seconds = publish_seconds
        return run
    finally:
        delete_prefix(prefix)


def _time_worker(setup: WorkerSetup, prefix: str, queue: str, total: int) -> WorkerRun:
    log = setup.tmp / f"worker-{setup.tag}.log"
    spy_out = setup.tmp / f"worker-{setup.tag}.pyspy.raw"
    command = [sys.executable, "-m", "worker.cli", "worker", "--concurrency", "1"]
    spy: subprocess.Popen[bytes] | None = None
    with pg_connect(setup.database) as conn:
        pg = postgres_tree(setup.database)
        t0 = time.monotonic()
        proc = start(command, escalera_env(setup.url, prefix, queue), log)
        groups = _groups(worker=Tree(proc.pid), postgres=pg)
        try:
            t_first = first_count = first_cpu = None
            count = 0
            while count < total:
                if proc.poll() is not None:
                    raise Broken(f"the worker exited (status {proc.returncode}):\n{tail(log)}")
                if time.monotonic() - t0 > setup.timeout:
                    raise Broken(f"{count} of {total} events stored after {setup.timeout:g} s")
                row = conn.execute("SELECT count(*) FROM events").fetchone()
                count = int(row[0]) if row else 0
                if count and t_first is None:
                    t_first, first_count = time.monotonic(), count
                    first_cpu = CpuSample.take(groups)
                    spy = _attach_spy(proc.pid, spy_out) if setup.spy else None
                time.sleep(0.05)
            t_done = time.monotonic()
            last_cpu = CpuSample.take(groups)
        finally:
            if spy is not None:
                spy.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
                try:
                    spy.wait(timeout=30)
                finally:
                    stop(spy, grace=1)
            stop(proc)
        assert t_first is not None and first_count is not None and first_cpu is not None
        dead = conn.execute("SELECT count(*) FROM dead_letters").fetchone()
        waiting = conn.execute("SELECT count(*) FROM tickets WHERE waiting").fetchone()
        if (dead and dead[0]) or (waiting and waiting[0]):
            raise Broken(f"{dead} dead letters, {waiting} tickets still waiting")
    return WorkerRun(
        events=total,
        publish_seconds=0.0,
        total_seconds=t_done - t0,
        startup_seconds=t_first - t0,
        steady_seconds=t_done - t_first,
        first_count=first_count,
        cpu=last_cpu.percent_since(first_cpu),
        spy=spy_out.read_text() if spy is not None and spy_out.exists() else None,
    )


def _attach_spy(pid: int, out: Path) -> subprocess.Popen[bytes] | None:
    spy = py_spy()
    if spy is None:
        return None
    command = [spy, "record", "-p", str(pid), "--subprocesses", "--idle", "--nonblocking"]
    command += ["--nolineno", "-r", "100", "-f", "raw", "-o", str(out)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# -- the raw ceiling: plain INSERTs with psycopg ---------------------------------------------------
CEILING_TABLE = """
CREATE TABLE ceiling_events (
    id BIGSERIAL PRIMARY KEY,
    source VARCHAR(64) NOT NULL,
    event_id VARCHAR(256) NOT NULL,
    ticket_pk BIGINT NOT NULL,
    type VARCHAR(32) NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    payload JSONB NOT NULL,
    CONSTRAINT uq_ceiling_source_event UNIQUE (source, event_id)
);
CREATE INDEX ix_ceiling_ticket ON ceiling_events (ticket_pk)
"""
COLUMNS = "(source, event_id, ticket_pk, type, occurred_at, received_at, payload)"


@dataclass
class Ceiling:
    label: str
    rows: int
    seconds: float

    @property
    def per_s(self) -> float:
        return self.rows / self.seconds


def run_ceiling(database: str, events: list[Event], per_statement: int) -> Ceiling:
    """INSERT the events' rows, ``per_statement`` rows per statement, one commit each; best of 3."""
    now = datetime.now(UTC)
    tickets = {ticket: i + 1 for i, ticket in enumerate(dict.fromkeys(e.ticket_id for e in events))}
    rows = [
        _row(e, tickets[e.ticket_id], now)
        for e in sorted(events, key=lambda e: (e.ticket_id, e.event_id))
    ]
    chunks = [rows[i : i + per_statement] for i in range(0, len(rows), per_statement)]
    values = "(%s, %s, %s, %s, %s, %s, %s)"
    statements = {
        n: f"INSERT INTO ceiling_events {COLUMNS} VALUES " + ", ".join([values] * n)
        for n in {len(c) for c in chunks}
    }
    best = float("inf")
    with pg_connect(database) as conn:
        for _ in range(3):
            conn.execute("DROP TABLE IF EXISTS ceiling_events")
            conn.execute(CEILING_TABLE)
            started = time.perf_counter()
            for chunk in chunks:  # autocommit: one transaction per statement
                conn.execute(statements[len(chunk)], [v for row in chunk for v in row])
            best = min(best, time.perf_counter() - started)
        conn.execute("DROP TABLE ceiling_events")
    plural = "s" if per_statement > 1 else ""
    return Ceiling(f"{per_statement} row{plural} per INSERT, 1 commit each", len(rows), best)


def _row(event: Event, ticket_pk: int, now: datetime) -> tuple[Any, ...]:
    payload = Jsonb(event.model_dump(mode="json"))
    return (
        event.source,
        event.event_id,
        ticket_pk,
        event.type.value,
        event.occurred_at,
        now,
        payload,
    )


# -- profiles ------------------------------------------------------------------------------------
# (label, file suffix, function name): cumulative time of the steps of apply_events.
STEPS: list[tuple[str, str, str]] = [
    ("apply_events, all of it", "worker/events/apply.py", "apply_events"),
    (
        "  _lock_tickets: INSERT..ON CONFLICT, SELECT..FOR UPDATE",
        "worker/events/apply.py",
        "_lock_tickets",
    ),
    ("  check_event", "scheduler/timeline.py", "check_event"),
    ("  _insert_events: model_dump, INSERT..RETURNING", "worker/events/apply.py", "_insert_events"),
    ("  settle", "worker/events/apply.py", "settle"),
    (
        "    _histories: SELECT payloads, Event.model_validate",
        "worker/events/apply.py",
        "_histories",
    ),
    ("    replan.load: SELECT checkpoints", "worker/events/replan.py", "load"),
    ("    evaluate: the pure SLA core", "scheduler/evaluate.py", "evaluate"),
    ("      Policy.choose_target (the target of a phase)", "shared/policy.py", "choose_target"),
    ("    _snapshot: sla.to_json", "worker/events/apply.py", "_snapshot"),
    ("    replan.write: INSERT, UPDATE, DELETE checkpoints", "worker/events/replan.py", "write"),
    ("transaction commits", "sqlalchemy/orm/session.py", "commit"),
    ("all SQLAlchemy Session.flush (unit of work)", "sqlalchemy/orm/session.py", "flush"),
    ("all psycopg Cursor.execute (round trips, server time)", "psycopg/cursor.py", "execute"),
    ("  of which waiting for the server (Connection.wait)", "psycopg/connection.py", "wait"),
    ("shared/names.py fold (name folding)", "shared/names.py", "fold"),
]


@dataclass
class ProfileReport:
    events: int
    total: float
    steps: list[tuple[str, int, float]]  # label, calls, cumulative seconds
    top: list[tuple[str, int, float, float]]  # function, calls, own seconds, cumulative


def run_profile(url: str, events: list[Event], timeout: float) -> ProfileReport:
    apply_loop(url, workload("profile-warm", 10), timeout=timeout)
    profiler = cProfile.Profile()
    apply_loop(url, events, timeout=timeout, profiler=profiler)
    entries: dict[tuple[str, int, str], Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = max(ct for (_cc, _nc, _tt, ct, _callers) in entries.values())

    def find(suffix: str, name: str) -> tuple[int, float]:
        calls, cumulative = 0, 0.0
        for (path, _line, function), (cc, _nc, _tt, ct, _callers) in entries.items():
            if function == name and path.endswith(suffix):
                calls, cumulative = calls + cc, cumulative + ct
        return calls, cumulative

    steps = [(label, *find(suffix, name)) for label, suffix, name in STEPS]
    by_own = sorted(entries.items(), key=lambda item: item[1][2], reverse=True)[:20]
    top = [
        (_where(path, line, function), nc, tt, ct)
        for (path, line, function), (_cc, nc, tt, ct, _callers) in by_own
    ]
    return ProfileReport(len(events), total, steps, top)


def _where(path: str, line: int, function: str) -> str:
    if path == "~":
        return function
    short = path.rsplit("site-packages/", maxsplit=1)[-1].removeprefix(str(ROOT) + "/")
    return f"{short}:{line}({function})"


# Where the worker's applier thread spends its wall time (py-spy --idle; deepest frame wins).
LAYERS = [
    ("Redis: taking batches (BLMOVE waits when the queue is empty), ack", r"\(redis/"),
    ("logging: structlog event_applied", r"\((logging|structlog)/"),
    (
        "worker/events/applier.py, queue.py, message.py: decoding, our own lines",
        r"\(worker/events/(applier|queue|message)",
    ),
    ("worker/events/apply.py, replan.py: our own lines", r"\(worker/events/(apply|replan)\.py\)"),
    ("SLA core: scheduler/, shared/policy.py, shared/names.py", r"\((scheduler/|shared/)"),
    ("pydantic: Event validation and dumps", r"\(pydantic"),
    ("SQLAlchemy: statements, compile", r"\(sqlalchemy/"),
    ("psycopg, Python side: adapt, send, parse rows", r"\(psycopg/"),
    ("waiting for PostgreSQL: round trips, server time", r"^Connection\.wait \(psycopg/"),
]


# The same samples by step (deepest matching frame wins: our step functions are the deepest).
STEP_FRAMES = [
    ("take: the queue (Redis)", r"^take \(worker/events/queue"),
    ("ack, heartbeat, reap (Redis)", r"^(ack|beat|reap|reap_one) \(worker/events/queue"),
    ("decode: the queue messages", r"^decode \(worker/events/message"),
    ("logging: event_applied", r"\((logging|structlog)/"),
    ("_index: arm the timer index (Redis)", r"^_index \(worker/events/applier"),
    ("commit", r"^(Session|SessionTransaction)\.(commit|__exit__) "),
    ("_lock_tickets: upsert, SELECT..FOR UPDATE", r"^_lock_tickets "),
    ("check_event", r"^check_event "),
    ("_insert_events: INSERT..ON CONFLICT..RETURNING", r"^_insert_events "),
    ("_histories: SELECT payloads, Event.model_validate", r"^_histories "),
    ("replan.load: SELECT checkpoints", r"^load \(worker/events/replan"),
    ("evaluate: the pure SLA core", r"^evaluate \(scheduler/"),
    ("_snapshot: sla.to_json", r"^_snapshot "),
    ("replan.write: INSERT, UPDATE, DELETE checkpoints", r"^write \(worker/events/replan"),
    ("settle: the tickets' UPDATE", r"^settle "),
]


def _applier_thread(frames: list[str]) -> bool:
    """Stacks of the worker's applier thread (its frames pass through worker/events/applier.py)."""
    return any("worker/events/applier.py" in frame for frame in frames)


# -- main ---------------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--tickets", type=int, default=0, help="tickets of 10 events (default: from --seconds)"
    )
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="target duration of (a), to choose N"
    )
    parser.add_argument(
        "--profile-tickets",
        type=int,
        default=-1,
        help="tickets profiled (default 40%% of N; 0: none)",
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per phase, at most")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    run = run_id()
    base = f"escalera_bench_apply_{run}"
    print("# Escalera apply benchmark\n")
    print(f"command: {command_line()}\n")
    print("setup:")
    print_kv(
        [
            *machine(),
            ("postgresql", pg_settings()),
            ("redis", f"{redis_version()} (the Celery queue of (b))"),
            (
                "stack",
                f"SQLAlchemy {version('sqlalchemy')}, psycopg {version('psycopg')}, "
                f"pydantic {version('pydantic')}, celery {version('celery')}",
            ),
            ("policy", f"{POLICY} (deploy/policies), source api"),
            ("databases", f"{base}_a, _b, _p, _s: fresh, migrated, dropped after"),
        ]
    )
    print("\nrunning:", flush=True)
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="escalera-bench-") as tmpdir:
            results = _run(args, run, base, Path(tmpdir))
    except Broken as exc:
        print(f"\nBROKEN RUN: {exc}")
        return EXIT_BROKEN
    tickets, a, b, ceilings, profile, spied = results
    print(
        f"\nworkload: {tickets} tickets x {EVENTS_PER_TICKET} events = "
        f"{tickets * EVENTS_PER_TICKET} events, interleaved round by round, all new"
    )
    _report(a, b, ceilings)
    if profile is not None:
        _report_profile(profile)
    if spied is not None:
        _report_spy(spied)
    passed = b.per_s >= BAR_EVENTS_PER_S
    print(f"\nbar: >= {BAR_EVENTS_PER_S:,.0f} events/s applied by one worker process\n")
    for label, value, counts in (
        ("(b) worker --concurrency 1, from its start", b.per_s, True),
        ("(b) worker, steady (first to last stored event)", b.steady_per_s, False),
        ("(a) in-process apply_events loop", a.per_s, False),
    ):
        verdict = "PASS" if value >= BAR_EVENTS_PER_S else "FAIL"
        note = "" if counts else " (information only)"
        print(f"  {verdict}  {label}: {fmt_rate(value)} events/s{note}")
    verdict = "PASS" if passed else "FAIL"
    print(f"\n{verdict}: one worker process applies {fmt_rate(b.per_s)} events/s")
    print(
        f"\ncleanup: databases {base}_a/_b/_p/_s dropped, Redis keys under "
        f"escalera-bench-b{run} / -s{run} deleted, worker stopped; "
        f"total time {time.monotonic() - started:.0f} s"
    )
    return 0 if passed else EXIT_FAIL


Results = tuple[int, InProcess, WorkerRun, list[Ceiling], ProfileReport | None, WorkerRun | None]


def _run(args: argparse.Namespace, run: str, base: str, tmp: Path) -> Results:
    with fresh_database(f"{base}_a") as url:
        warm = workload(f"W{run}", WARMUP_TICKETS)
        seconds, _ = apply_loop(url, warm, timeout=args.timeout)
        rate = len(warm) / seconds
        tickets = args.tickets or max(20, min(5000, round(rate * args.seconds / 10)))
        print(
            f"  warm-up: {len(warm)} events at {fmt_rate(rate)} events/s -> "
            f"N = {tickets} tickets = {tickets * EVENTS_PER_TICKET} events",
            flush=True,
        )
        a = run_in_process(url, f"{base}_a", workload(f"A{run}", tickets), args.timeout)
        print(f"  (a) in-process: {fmt_rate(a.per_s)} events/s", flush=True)
        rows = workload(f"C{run}", tickets)
        ceilings = [run_ceiling(f"{base}_a", rows, n) for n in (10, 1, 1000)]
        print(f"  ceiling: {fmt_rate(ceilings[0].per_s)} rows/s", flush=True)
    with fresh_database(f"{base}_b") as url:
        setup = WorkerSetup(url, f"{base}_b", f"b{run}", tmp, args.timeout)
        b = run_worker(setup, workload(f"B{run}", tickets))
        print(f"  (b) worker: {fmt_rate(b.per_s)} events/s", flush=True)
    profiled = round(tickets * 0.4) if args.profile_tickets < 0 else args.profile_tickets
    profile = spied = None
    if profiled:
        with fresh_database(f"{base}_p") as url:
            profile = run_profile(url, workload(f"P{run}", profiled), args.timeout)
        print(f"  cProfile: {profile.events} events", flush=True)
        if py_spy() is not None:
            with fresh_database(f"{base}_s") as url:
                setup = WorkerSetup(url, f"{base}_s", f"s{run}", tmp, args.timeout, spy=True)
                spied = run_worker(setup, workload(f"S{run}", profiled))
            print(f"  py-spy of a worker: {spied.events} events", flush=True)
    return tickets, a, b, ceilings, profile, spied


def _cpu(cpu: dict[str, float]) -> str:
    """Each group's share, then everything else on the machine (other people's work too)."""
    ours = {name: value for name, value in cpu.items() if name != MACHINE}
    others = max(0.0, cpu[MACHINE] - sum(ours.values()))
    return ", ".join(f"{name} {value:.0f}%" for name, value in [*ours.items(), ("others", others)])


def _report(a: InProcess, b: WorkerRun, ceilings: list[Ceiling]) -> None:
    print("\nresults:\n")
    rows = [
        [
            "(a) in-process apply_events loop",
            a.events,
            f"{a.seconds:.2f}",
            fmt_rate(a.per_s),
            f"{median(a.latencies_ms):.2f}",
            f"{percentile(a.latencies_ms, 99):.2f}",
            _cpu(a.cpu),
        ],
        [
            "(b) worker --concurrency 1, from start",
            b.events,
            f"{b.total_seconds:.2f}",
            fmt_rate(b.per_s),
            "-",
            "-",
            "",
        ],
        [
            "(b) worker, steady (first -> last stored)",
            b.events - b.first_count,
            f"{b.steady_seconds:.2f}",
            fmt_rate(b.steady_per_s),
            "-",
            "-",
            _cpu(b.cpu),
        ],
    ]
    headers = ["run", "events", "seconds", "events/s", "p50 ms", "p99 ms", "CPU, % of one core"]
    print(table(headers, rows))
    print(
        f"\n  (b): publishing the {b.events} events beforehand took {b.publish_seconds:.2f} s "
        f"({fmt_rate(b.events / b.publish_seconds)} events/s, not counted); the worker stored its"
        f"\n  first event {b.startup_seconds:.2f} s after it was started. CPU: the worker's "
        "processes (celery main with the applier, pool child),\n  all of PostgreSQL's and the "
        "rest of the machine's (others), over the steady part."
    )
    means = "  ".join(f"#{k} {sum(v) / len(v):.1f}" for k, v in sorted(a.by_position.items()))
    print(f"  (a) mean ms per event by its place in the ticket's life: {means}")

    print("\nraw ceiling (psycopg, same rows and payloads, a table shaped like events):\n")
    rows = [[c.label, c.rows, f"{c.seconds:.3f}", fmt_rate(c.per_s)] for c in ceilings]
    print(table(["ceiling", "rows", "seconds", "rows/s"], rows))
    print("\nratio to the ceiling:\n")
    rows = [
        [label, fmt_rate(value), *(f"{100 * value / c.per_s:.1f}%" for c in ceilings)]
        for label, value in (
            ("(a) in-process", a.per_s),
            ("(b) worker, from start", b.per_s),
            ("(b) worker, steady", b.steady_per_s),
        )
    ]
    print(table(["run", "events/s", *(f"of {c.label.split(',')[0]}" for c in ceilings)], rows))


def _report_profile(profile: ProfileReport) -> None:
    per = 1000 / profile.events
    print(
        f"\nprofile of (a) (cProfile, {profile.events} events, {profile.total:.2f} s under the "
        "profiler, which inflates call-heavy Python):\n"
    )
    rows = [
        [
            label,
            calls,
            f"{calls / profile.events:.1f}",
            f"{seconds * per:.2f}",
            f"{100 * seconds / profile.total:.0f}%",
        ]
        for label, calls, seconds in profile.steps
    ]
    print(table(["step (cumulative time)", "calls", "per event", "ms/event", "share"], rows))
    print("\n  top 20 functions by own time:\n")
    rows = [
        [where, calls, f"{own * per:.3f}", f"{cumulative * per:.3f}"]
        for where, calls, own, cumulative in profile.top
    ]
    print(table(["function", "calls", "own ms/event", "cum ms/event"], rows))


def _report_spy(run: WorkerRun) -> None:
    if run.spy is None:
        print("\n(py-spy wrote no profile of the worker: ptrace not permitted?)")
        return
    samples, shares, top = classify(run.spy, LAYERS, keep=_applier_thread)
    print(
        f"\nprofile of (b) (py-spy --idle on a worker's applier thread, {run.events} events at "
        f"{fmt_rate(run.steady_per_s)} events/s steady, {samples} samples of wall time):\n"
    )
    rows = [[name, f"{share:.1f}%"] for name, share in shares]
    print(table(["layer (deepest matching frame of each sample)", "share"], rows))
    _, steps, _ = classify(run.spy, STEP_FRAMES, keep=_applier_thread)
    print()
    print(
        table(
            ["step (deepest matching frame of each sample)", "share"],
            [[n, f"{v:.1f}%"] for n, v in steps],
        )
    )
    print("\n  top frames (leaf of each sample):\n")
    print(table(["frame", "share"], [[f, f"{s:.1f}%"] for f, s in top]))


if __name__ == "__main__":
    sys.exit(main())
