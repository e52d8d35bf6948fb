"""Throughput and latency of the ingest service (``POST /v1/events``) against real Redis.

Run from the repository root (PostgreSQL and Redis must answer on 127.0.0.1)::

    .venv/bin/python bench/ingest_bench.py              # ~1.5 minutes, ~60 s of it under load
    .venv/bin/python bench/ingest_bench.py --help

What it does:

1. creates a database ``escalera_bench_ingest_<run>`` and migrates it (the service needs one
   only to answer /readyz), and picks a Redis key prefix and Celery queue
   ``escalera-bench-<run>...`` of its own;
2. for ``--workers 1`` and ``--workers 2`` starts ``python -m worker.cli ingest`` as a
   subprocess with a bearer token and waits for /readyz; then, for single-event POSTs (the portal
   webhook case), for batches of 10 events and for ``GET /healthz`` (the floor: the HTTP server,
   FastAPI and the thread pool, no body, no publish), runs a separate load-generator process with
   32 concurrent keep-alive connections (closed loop: each sends its next request when the answer
   to the previous one is in). Nothing consumes the queue: after each scenario the queue length
   is checked against the events acknowledged with 202, and the queue is deleted;
3. with ``--workers 1``, runs the single-event load once more with ``py-spy`` attached (if
   installed; not counted in the results) and prints where the service's CPU goes;
4. measures the raw ceiling with ``redis-benchmark``: LPUSH, 32 clients, no pipelining and
   ``-P 16``, with redis-benchmark's own 3-byte value and with a value the size of the Celery
   message the service really pushes; our rate is printed as a ratio of it. (The key is one of
   ours - ``<prefix>:ceiling`` - instead of ``-t lpush``'s shared ``mylist``: same command);
5. drops the database, deletes every Redis key under the prefix, stops every process.

``--durability local replica`` runs every scenario once per mode (``ESCALERA_DURABILITY``, see
docs/reliability.md "What a 202 means"), both against a PRIVATE primary ``redis-server`` with one
replica of it (free loopback ports, no persistence), so the two modes meet the same server:
``replica`` makes each request wait for ``WAIT 1 <--durability-timeout-ms>`` after its LPUSH.
The shared Redis is then used for nothing. The replica's CPU is reported beside the primary's.

The CPU use of each party (ingest processes, load generator, redis-server) over the measured
window is read from /proc, to show whether the load generator was the limit.

Bar (the issue): at least 2,000 events/s with p99 under 50 ms with 32 concurrent clients, for
single-event POSTs, with the better of the two ``--workers`` settings, in ``local`` durability
(the default; ``replica`` is reported for information, with its cost against ``local``). Batches
are reported against the same bar for information. Exit status: 0 if the bar is met, 1 if not,
2 if the run itself failed (a service did not start, requests were refused, events went missing).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import redis
import uvloop

# ``python bench/ingest_bench.py`` puts bench/ (not the repository root) on sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import (
    MACHINE,
    REDIS_URL,
    TOKEN,
    CpuSample,
    PrivateRedis,
    RawHttp,
    Tree,
    answers_within,
    classify,
    command_line,
    delete_prefix,
    escalera_env,
    fmt_ms,
    fmt_rate,
    free_port,
    fresh_database,
    machine,
    percentile,
    pg_settings,
    print_kv,
    py_spy,
    queue_key,
    run_id,
    start,
    stop,
    table,
    tail,
    ticket_life,
    tree,
    wait_for,
)

BAR_EVENTS_PER_S = 2000.0
BAR_P99_MS = 50.0
FLOOR = 0  # "batch" value of the GET /healthz scenario
PLACEHOLDER = b"@@TICKET@@"
EXIT_FAIL, EXIT_BROKEN = 1, 2


# -- the load generator (runs in its own process: ``ingest_bench.py _load ...``) ------------------
@dataclass
class LoadResult:
    completed: int = 0  # successful answers completed inside the measured window
    events: int = 0  # events in them
    accepted_total: int = 0  # events acknowledged with 202 over the whole run (warm-up too)
    errors: int = 0
    first_error: str | None = None
    latencies_ms: list[float] = field(default_factory=list)
    late: bool = False  # the generator was not connected by the agreed start instant


@dataclass(frozen=True)
class Load:
    """What one connection sends and when it counts."""

    batch: int
    bodies: list[bytes]
    m0: float  # measured window, perf_counter instants
    m1: float

    def request(self, name: str, n: int) -> tuple[bytes, bytes]:
        """(method and path, body) of the connection's n-th request."""
        if self.batch == FLOOR:
            return b"GET /healthz", b""
        ticket = f"{name}-{n // len(self.bodies) if self.batch == 1 else n}".encode()
        return b"POST /v1/events", self.bodies[n % len(self.bodies)].replace(PLACEHOLDER, ticket)

    def record(self, result: LoadResult, status: int, payload: bytes, sent: float) -> None:
        done = time.perf_counter()
        ok = status == (200 if self.batch == FLOOR else 202)
        if ok:
            result.accepted_total += self.batch
        if sent >= self.m0 and done <= self.m1:
            if ok:
                result.completed += 1
                result.events += self.batch
                result.latencies_ms.append(round((done - sent) * 1000, 3))
            else:
                result.errors += 1
        if not ok and result.first_error is None:
            result.first_error = f"HTTP {status}: {payload[:300].decode(errors='replace')}"


def _bodies(batch: int) -> list[bytes]:
    """Request bodies with a placeholder ticket id: 10 single events, or 6 lives of 10 events."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    lives = [ticket_life(PLACEHOLDER.decode(), start, seed) for seed in range(6)]
    if batch == 1:
        return [json.dumps(event).encode() for event in lives[0]]
    return [json.dumps(life[:batch]).encode() for life in lives]


async def _raw_connection(port: int, name: str, load: Load, result: LoadResult) -> None:
    """One keep-alive connection with the cheapest client we can write (`RawHttp`)."""
    http = RawHttp(port)
    n = 0
    try:
        while (sent := time.perf_counter()) < load.m1:
            status, payload = await http.request(*load.request(name, n))
            load.record(result, status, payload, sent)
            n += 1
    finally:
        http.close()


async def _httpx_connection(
    client: httpx.AsyncClient, name: str, load: Load, result: LoadResult
) -> None:
    headers = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
    n = 0
    while (sent := time.perf_counter()) < load.m1:
        line, body = load.request(name, n)
        method, path = line.decode().split()
        response = await client.request(method, path, content=body or None, headers=headers)
        load.record(result, response.status_code, response.content, sent)
        n += 1


async def _load(args: argparse.Namespace) -> LoadResult:
    result = LoadResult()
    go = args.go_at - (time.time() - time.perf_counter())  # the agreed instant, as perf_counter
    m0 = go + args.warmup
    load = Load(args.batch, _bodies(args.batch) if args.batch else [], m0, m0 + args.duration)
    names = [f"{args.tag}-c{i}" for i in range(args.concurrency)]
    if args.client == "httpx":
        limits = httpx.Limits(
            max_connections=args.concurrency, max_keepalive_connections=args.concurrency
        )
        base = f"http://127.0.0.1:{args.port}"
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
            result.late = time.perf_counter() > go
            await asyncio.sleep(max(0.0, go - time.perf_counter()))
            await asyncio.gather(*(_httpx_connection(client, n, load, result) for n in names))
        return result
    result.late = time.perf_counter() > go
    await asyncio.sleep(max(0.0, go - time.perf_counter()))
    await asyncio.gather(*(_raw_connection(args.port, n, load, result) for n in names))
    return result


def load_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    for name in ("port", "batch", "concurrency"):
        parser.add_argument(f"--{name}", type=int, required=True)
    for name in ("go-at", "warmup", "duration"):
        parser.add_argument(f"--{name}", type=float, required=True)
    parser.add_argument("--client", default="raw")
    parser.add_argument("--tag", required=True)
    result = uvloop.run(_load(parser.parse_args(argv)))
    json.dump(result.__dict__, sys.stdout)
    return 0


# -- the orchestrator ---------------------------------------------------------------------------
@dataclass
class Scenario:
    workers: int
    batch: int
    requests_per_s: float
    events_per_s: float
    p50: float
    p99: float
    max: float
    errors: int
    cpu: dict[str, float]
    durability: str = "local"

    @property
    def label(self) -> str:
        if self.batch == FLOOR:
            return "GET /healthz (floor)"
        return "single event" if self.batch == 1 else f"batch of {self.batch}"

    @property
    def name(self) -> str:
        return f"{self.durability} workers={self.workers} {self.label}"

    @property
    def passed(self) -> bool:
        return self.errors == 0 and self.events_per_s >= BAR_EVENTS_PER_S and self.p99 < BAR_P99_MS


class Broken(Exception):
    """The run itself failed: the numbers would mean nothing."""


# -- where the queue lives: the shared Redis, or a private primary with a replica ----------------
@dataclass(frozen=True)
class RedisTarget:
    """The Redis the service pushes to (and the ceiling is measured on); its replica's pid."""

    url: str
    port: int
    replica_pid: int | None = None

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5)

    def pid(self) -> int | None:
        pid = self.client().info("server").get("process_id")
        return int(pid) if pid and Path(f"/proc/{pid}/stat").exists() else None

    def version(self) -> str:
        info = self.client().info("server")
        where = "a private primary" if self.replica_pid else "the shared Redis"
        replicas = f", 1 replica (pid {self.replica_pid})" if self.replica_pid else ""
        return (
            f"Redis {info.get('redis_version')} at {self.url}, {where} "
            f"(pid {info.get('process_id')}){replicas}"
        )


SHARED_REDIS = RedisTarget(REDIS_URL, 6379)


@contextmanager
def private_pair(tmp: Path) -> Iterator[RedisTarget]:
    """A primary and one replica of it on free loopback ports, without persistence."""
    with ExitStack() as stack:  # the replica is stopped first, then the primary
        primary = PrivateRedis(folder=tmp, log=tmp / "p.log")
        stack.callback(primary.stop)
        replica = PrivateRedis(folder=tmp, log=tmp / "r.log", replica_of=primary.port)
        stack.callback(replica.stop)
        _wait_linked(replica, tmp / "r.log")
        yield RedisTarget(primary.url, primary.port, replica.proc.pid)


def _wait_linked(replica: PrivateRedis, log: Path) -> None:
    def linked() -> bool:
        try:
            return replica.client.info("replication").get("master_link_status") == "up"
        except redis.ConnectionError:
            return False

    if not wait_for(linked, time.time() + 20, 0.1, procs=[replica.proc]):
        raise Broken(f"the private replica did not link to its primary; its log:\n{tail(log)}")


def _sleep_until(instant: float) -> None:
    time.sleep(max(0.0, instant - time.time()))


def _run_scenario(
    args: argparse.Namespace,
    *,
    target: RedisTarget,
    port: int,
    server_pids: list[int],
    batch: int,
    tag: str,
    tmp: Path,
    at_window_start: Callable[[], Any] | None = None,
) -> tuple[Scenario, int]:
    """One load run; returns the scenario and the events acknowledged over the whole run."""
    go_at = time.time() + 2.0  # time for the generators to start Python and connect
    per_proc = [
        args.concurrency // args.client_procs + (i < args.concurrency % args.client_procs)
        for i in range(args.client_procs)
    ]
    generators = []
    for i, conns in enumerate(per_proc):
        out = (tmp / f"load-{tag}-{i}.json").open("wb")
        command = [sys.executable, str(Path(__file__).resolve()), "_load", f"--port={port}"]
        command += [f"--batch={batch}", f"--concurrency={conns}", f"--go-at={go_at}"]
        command += [f"--warmup={args.warmup}", f"--duration={args.duration}"]
        command += [f"--client={args.client}", f"--tag={tag}-p{i}"]
        generators.append((subprocess.Popen(command, stdout=out), out))
    groups: dict[str, list[int] | Tree] = {
        "ingest": server_pids,
        "loadgen": [p.pid for p, _ in generators],
    }
    groups |= {f"ingest:{pid}": [pid] for pid in server_pids}
    if (pid := target.pid()) is not None:
        groups["redis"] = [pid]
    if target.replica_pid is not None:
        groups["replica"] = [target.replica_pid]
    try:
        _sleep_until(go_at + args.warmup)
        first = CpuSample.take(groups)
        if at_window_start is not None:
            at_window_start()
        _sleep_until(go_at + args.warmup + args.duration)
        last = CpuSample.take(groups)
        for proc, _ in generators:
            proc.wait(timeout=args.warmup + args.duration + 60)
    finally:
        for proc, out in generators:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            out.close()
    results = []
    for i, (proc, _) in enumerate(generators):
        raw = (tmp / f"load-{tag}-{i}.json").read_text()
        if proc.returncode != 0 or not raw:
            raise Broken(f"load generator {i} failed (exit {proc.returncode})")
        results.append(LoadResult(**json.loads(raw)))
    if any(r.late for r in results):
        raise Broken("a load generator was not connected by the start instant")
    latencies = sorted(x for r in results for x in r.latencies_ms)
    errors = sum(r.errors for r in results)
    first_error = next((r.first_error for r in results if r.first_error), None)
    if first_error:
        raise Broken(f"the service refused requests ({errors} in the window): {first_error}")
    scenario = Scenario(
        workers=0,
        batch=batch,
        requests_per_s=len(latencies) / args.duration,
        events_per_s=sum(r.events for r in results) / args.duration,
        p50=percentile(latencies, 50),
        p99=percentile(latencies, 99),
        max=latencies[-1] if latencies else float("nan"),
        errors=errors,
        cpu=last.percent_since(first),
    )
    return scenario, sum(r.accepted_total for r in results)


def _check_queue(target: RedisTarget, prefix: str, queue: str, expected: int) -> int:
    """Every acknowledged event is on the queue; returns one message's size; empties the queue."""
    client = target.client()
    key = queue_key(prefix, queue)
    length = int(client.llen(key))
    sample = client.lindex(key, 0)
    client.unlink(key)
    if length != expected:
        raise Broken(f"{expected} events were acknowledged with 202 but {key} holds {length}")
    return len(sample) if sample else 0


@dataclass
class Profile:
    samples: int
    categories: list[tuple[str, float]]
    top_self: list[tuple[str, float]]
    throughput: float  # events/s while profiled (py-spy's own cost shows here)


@dataclass(frozen=True)
class Setup:
    """What every scenario of a run shares."""

    database_url: str
    prefix: str
    queue: str
    tmp: Path
    target: RedisTarget


def _serve_and_load(
    args: argparse.Namespace, setup: Setup
) -> tuple[list[Scenario], int, Profile | None]:
    scenarios, message_size, profile = [], 0, None
    for durability in args.durability:
        for workers in args.workers:
            found, size, spied = _serve_one(args, setup, durability, workers)
            scenarios += found
            message_size = max(message_size, size)
            profile = profile or spied
    return scenarios, message_size, profile


def _durability_env(args: argparse.Namespace, durability: str) -> dict[str, str]:
    return {
        "ESCALERA_DURABILITY": durability,
        "ESCALERA_DURABILITY_REPLICAS": "1",
        "ESCALERA_DURABILITY_TIMEOUT_MS": str(args.durability_timeout_ms),
    }


def _serve_one(
    args: argparse.Namespace, setup: Setup, durability: str, workers: int
) -> tuple[list[Scenario], int, Profile | None]:
    """One ingest service (a durability mode, a worker count) under each batch size."""
    scenarios, message_size, profile = [], 0, None
    prefix, queue, tmp, target = setup.prefix, setup.queue, setup.tmp, setup.target
    port = free_port()
    env = escalera_env(
        setup.database_url,
        prefix,
        queue,
        ESCALERA_API_TOKENS=json.dumps([TOKEN]),
        # nothing drains the queue here, and a batch scenario fills ~100,000 events (12,000
        # events/s for 8 s): the ingest's backpressure off, or the bench would measure 503s
        ESCALERA_INGEST_MAX_QUEUE="0",
        **_durability_env(args, durability),
    )
    env["REDIS_URL"] = target.url
    log = tmp / f"ingest-{durability}-w{workers}.log"
    command = [sys.executable, "-m", "worker.cli", "ingest", "--port", str(port)]
    proc = start([*command, "--workers", str(workers)], env, log)
    try:
        if not answers_within(f"http://127.0.0.1:{port}/readyz", proc):
            raise Broken(f"the ingest service did not become ready; its log:\n{tail(log)}")
        time.sleep(1.0)  # every uvicorn worker process is up and has imported the app
        for batch in args.batches:
            tag = f"{durability}w{workers}b{batch}"
            scenario, acknowledged = _run_scenario(
                args,
                target=target,
                port=port,
                server_pids=tree(proc.pid),
                batch=batch,
                tag=tag,
                tmp=tmp,
            )
            scenario.workers, scenario.durability = workers, durability
            if batch != FLOOR:
                size = _check_queue(target, prefix, queue, acknowledged)
                message_size = max(message_size, size)
            scenarios.append(scenario)
            print(
                f"  {scenario.name}: {fmt_rate(scenario.requests_per_s)}"
                f" req/s, {fmt_rate(scenario.events_per_s)} events/s, p99 "
                f"{fmt_ms(scenario.p99)} ms ({acknowledged} events acknowledged, "
                f"all found on the queue)",
                flush=True,
            )
        if workers == 1 and args.profile and durability == args.durability[0]:
            profile = _profile(args, setup, port=port, pid=proc.pid)
        if proc.poll() is not None:
            raise Broken(f"the ingest service exited during the run:\n{tail(log)}")
    finally:
        stop(proc)
    return scenarios, message_size, profile


# -- where the service's CPU goes (py-spy) --------------------------------------------------------
# (category, frame pattern): a sample belongs to the deepest frame of its stack that matches.
CATEGORIES = [
    ("uvicorn: HTTP parsing, event loop", r"uvicorn/|asyncio/|uvloop"),
    ("FastAPI/Starlette: routing, middleware, response", r"fastapi/|starlette/"),
    ("thread-pool hop (run_in_threadpool, anyio, threading)", r"anyio/|threading\.py|queue\.py"),
    ("our handler: auth, JSON, Event validation, policy check", r"worker/api/app\.py"),
    ("structlog: the events_accepted log line", r"structlog/"),
    (
        "our publisher (model_dump, producer pool)",
        r"worker/api/publisher\.py|worker/events/message\.py",
    ),
    ("Celery send_task / kombu publish: the rest", r"celery/|kombu/"),
    ("Celery: argsrepr (saferepr of the event)", r"saferepr"),
    (
        "kombu: a new redis.Redis client per publish",
        r"_create_client|PrefixedStrictRedis\.__init__",
    ),
    ("redis-py: the LPUSH round trip", r"lpush \(|ListCommands\.lpush"),
]


def _profile(args: argparse.Namespace, setup: Setup, *, port: int, pid: int) -> Profile | None:
    spy = py_spy()
    if spy is None:
        print("  (py-spy not installed: no profile; `.venv/bin/pip install py-spy`)")
        return None
    out = setup.tmp / "ingest.pyspy.raw"
    command = [spy, "record", "-p", str(pid), "-d", f"{args.duration:g}", "-r", "100"]
    command += ["--gil", "--nonblocking", "--nolineno", "-f", "raw", "-o", str(out)]
    spies: list[subprocess.Popen[bytes]] = []

    def attach() -> None:
        spies.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))

    try:
        scenario, acknowledged = _run_scenario(
            args,
            target=setup.target,
            port=port,
            server_pids=[pid],
            batch=1,
            tag="profile",
            tmp=setup.tmp,
            at_window_start=attach,
        )
        _check_queue(setup.target, setup.prefix, setup.queue, acknowledged)
        for spy_proc in spies:
            spy_proc.wait(timeout=args.duration + 30)
    finally:
        for spy_proc in spies:
            stop(spy_proc, grace=5)
    if not out.exists():
        print("  (py-spy wrote no profile: ptrace not permitted?)")
        return None
    samples, shares, top = classify(out.read_text(), CATEGORIES)
    return Profile(samples, shares, top, scenario.events_per_s)


# -- the raw ceiling: redis-benchmark ------------------------------------------------------------
@dataclass
class Ceiling:
    label: str
    command: str
    per_s: float
    p50: float | None


def _redis_benchmark(
    target: RedisTarget, prefix: str, value_size: int, requests: int, pipeline: int
) -> Ceiling:
    key = f"{prefix}:ceiling"
    command = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(target.port), "-q"]
    command += ["-n", str(requests), "-c", "32", "-P", str(pipeline)]
    command += ["LPUSH", key, "x" * value_size]
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    finally:
        target.client().unlink(key)
    text = out.stdout.replace("\r", "\n")
    rates = re.findall(r"([\d.]+) requests per second", text)
    if not rates:
        raise Broken(f"redis-benchmark printed no rate: {out.stdout!r} {out.stderr!r}")
    p50 = re.findall(r"p50=([\d.]+) msec", text)
    shown = " ".join(command[:-1] + ([f"<{value_size} bytes>"] if value_size > 3 else ["xxx"]))
    label = f"LPUSH {value_size} B, -c 32 -P {pipeline}"
    return Ceiling(label, shown, float(rates[-1]), float(p50[-1]) if p50 else None)


# -- main ---------------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="uvicorn workers")
    parser.add_argument(
        "--batches",
        type=int,
        nargs="+",
        default=[1, 10, FLOOR],
        help="events per request (0: GET /healthz, the floor)",
    )
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent connections")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds not measured")
    parser.add_argument("--duration", type=float, default=6.0, help="measured seconds")
    parser.add_argument(
        "--client",
        choices=("raw", "httpx"),
        default="raw",
        help="raw: a minimal asyncio HTTP/1.1 client (cheapest); httpx: httpx.AsyncClient",
    )
    parser.add_argument(
        "--client-procs", type=int, default=1, help="load-generator processes (share the conns)"
    )
    parser.add_argument("--ceiling-requests", type=int, default=200_000, help="redis-benchmark -n")
    parser.add_argument(
        "--no-profile", dest="profile", action="store_false", help="skip the py-spy profile"
    )
    parser.add_argument(
        "--durability",
        nargs="+",
        choices=("local", "replica"),
        default=["local"],
        help="ESCALERA_DURABILITY of the service, each in turn; with replica, every mode runs on "
        "a private primary with one replica",
    )
    parser.add_argument(
        "--durability-timeout-ms", type=int, default=1000, help="ESCALERA_DURABILITY_TIMEOUT_MS"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_load"]:
        return load_main(argv[1:])
    args = _parser().parse_args(argv)
    run = run_id()
    prefix = f"escalera-bench-{run}"
    queue = f"{prefix}-events"
    database = f"escalera_bench_ingest_{run}"
    print("# Escalera ingest benchmark\n")
    print(f"command: {command_line()}\n")
    print("setup:")
    print_kv(
        [
            *machine(),
            ("server", "python -m worker.cli ingest --port <free> --workers N (uvicorn)"),
            (
                "server stack",
                f"uvicorn {version('uvicorn')}, uvloop {version('uvloop')}, "
                f"httptools {version('httptools')}, fastapi {version('fastapi')}, "
                f"celery {version('celery')}, kombu {version('kombu')}, "
                f"redis-py {version('redis')}",
            ),
            ("postgresql", f"{pg_settings()}; database {database}, for /readyz only"),
            ("queue", f"{queue_key(prefix, queue)} (no consumer; emptied after each scenario)"),
            (
                "load",
                f"{args.concurrency} concurrent keep-alive connections, closed loop, "
                f"{args.client} client, {args.client_procs} process(es); "
                f"{args.warmup:g} s warm-up + {args.duration:g} s measured per scenario",
            ),
            (
                "requests",
                "POST /v1/events with a bearer token; bodies: canonical events of realistic "
                "ticket lives (created ... resolved), unique ticket ids",
            ),
            (
                "durability",
                ", ".join(args.durability)
                + (
                    f" (replica: WAIT 1 {args.durability_timeout_ms} after each LPUSH)"
                    if "replica" in args.durability
                    else ""
                ),
            ),
        ]
    )
    started = time.monotonic()
    try:
        with (
            tempfile.TemporaryDirectory(prefix="escalera-bench-") as tmpdir,
            fresh_database(database) as url,
            _redis_for(args, Path(tmpdir)) as target,
        ):
            print_kv([("redis", target.version())])
            print()
            setup = Setup(url, prefix, queue, Path(tmpdir), target)
            try:
                print("running:", flush=True)
                scenarios, size, profile = _serve_and_load(args, setup)
                print(f"  one queued Celery message (one event) is {size} bytes", flush=True)
                ceilings = [
                    _redis_benchmark(target, prefix, 3, args.ceiling_requests, 1),
                    _redis_benchmark(target, prefix, 3, args.ceiling_requests, 16),
                    _redis_benchmark(target, prefix, size, args.ceiling_requests, 1),
                ]
            finally:
                deleted = delete_prefix(prefix)
    except Broken as exc:
        print(f"\nBROKEN RUN: {exc}")
        return EXIT_BROKEN
    _report_results(scenarios, ceilings)
    if profile is not None:
        _report_profile(profile)
    passed = _report_verdict(args, scenarios)
    print(
        f"\ncleanup: database {database} dropped, {deleted} leftover Redis key(s) under "
        f"{prefix} deleted, processes stopped; total time {time.monotonic() - started:.0f} s"
    )
    return 0 if passed else EXIT_FAIL


@contextmanager
def _redis_for(args: argparse.Namespace, tmp: Path) -> Iterator[RedisTarget]:
    """The shared Redis, or (when ``replica`` is measured) a private primary with a replica."""
    if "replica" not in args.durability:
        yield SHARED_REDIS
        return
    folder = tmp / "redis"
    folder.mkdir()
    with private_pair(folder) as target:
        yield target


def _report_results(scenarios: list[Scenario], ceilings: list[Ceiling]) -> None:
    print("\nresults (latency: from writing the request to reading the whole answer):\n")
    headers = ["scenario", "req/s", "events/s", "p50 ms", "p99 ms", "max ms", "errors"]
    headers += ["CPU ingest", "(per process)", "CPU loadgen", "CPU redis", "CPU replica"]
    headers += ["CPU others", "ingest CPU ms/req"]
    rows = [
        [
            s.name,
            fmt_rate(s.requests_per_s),
            fmt_rate(s.events_per_s) if s.batch else "-",
            fmt_ms(s.p50),
            fmt_ms(s.p99),
            fmt_ms(s.max),
            s.errors,
            f"{s.cpu['ingest']:.0f}%",
            _per_process(s.cpu),
            f"{s.cpu['loadgen']:.0f}%",
            f"{s.cpu['redis']:.0f}%" if "redis" in s.cpu else "?",
            f"{s.cpu['replica']:.0f}%" if "replica" in s.cpu else "-",
            f"{_others(s.cpu):.0f}%",
            f"{10 * s.cpu['ingest'] / s.requests_per_s:.2f}" if s.requests_per_s else "-",
        ]
        for s in scenarios
    ]
    print(table(headers, rows))
    cores = os.cpu_count() or 1
    print(
        f"\n  CPU columns: average over the measured window, % of one core "
        f"({cores} cores = {100 * cores}%); (per process): each busy ingest process;"
        "\n  CPU others: the rest of the machine (other people's work, PostgreSQL, the kernel)."
    )
    busiest = max(s.cpu["loadgen"] for s in scenarios)
    verdict = (
        "it was not the bottleneck (its connections wait for the service's answers)"
        if busiest < 60
        else "it may have been a bottleneck: rerun with --client-procs 2"
    )
    print(f"  load generator: at most {busiest:.0f}% of one core - {verdict}.")

    print("\nraw ceiling (redis-benchmark on the same Redis in the same run):\n")
    rows = [
        [c.label, fmt_rate(c.per_s), f"{c.p50:.3f}" if c.p50 else "?", c.command] for c in ceilings
    ]
    print(table(["ceiling", "LPUSH/s", "p50 ms", "command"], rows))
    print(
        "\n  The service does one LPUSH per event (kombu's Redis transport), so the ceiling for"
        "\n  32 clients is redis-benchmark's LPUSH rate without pipelining."
    )
    plain, real = ceilings[0], ceilings[-1]
    print("\nratio of our events/s to the ceiling:\n")
    rows = [
        [
            s.name,
            fmt_rate(s.events_per_s),
            f"{100 * s.events_per_s / plain.per_s:.2f}%",
            f"{100 * s.events_per_s / real.per_s:.2f}%",
        ]
        for s in scenarios
        if s.batch != FLOOR
    ]
    print(table(["scenario", "events/s", f"of {plain.label}", f"of {real.label}"], rows))
    _report_durability_cost(scenarios)


def _report_durability_cost(scenarios: list[Scenario]) -> None:
    """``replica`` against ``local``, scenario by scenario (when both were measured)."""
    local = {(s.workers, s.batch): s for s in scenarios if s.durability == "local"}
    pairs = [
        (local[(s.workers, s.batch)], s)
        for s in scenarios
        if s.durability == "replica" and s.batch != FLOOR and (s.workers, s.batch) in local
    ]
    if not pairs:
        return
    print("\nthe cost of ESCALERA_DURABILITY=replica (WAIT for one replica after each LPUSH):\n")
    headers = ["scenario", "events/s local", "events/s replica", "replica/local"]
    headers += ["p99 ms local", "p99 ms replica"]
    rows = [
        [
            f"workers={r.workers} {r.label}",
            fmt_rate(loc.events_per_s),
            fmt_rate(r.events_per_s),
            f"{100 * r.events_per_s / loc.events_per_s:.0f}%" if loc.events_per_s else "-",
            fmt_ms(loc.p99),
            fmt_ms(r.p99),
        ]
        for loc, r in pairs
    ]
    print(table(headers, rows))


def _others(cpu: dict[str, float]) -> float:
    """The machine's CPU use by everything else (PostgreSQL, other people's work, the kernel)."""
    ours = sum(cpu.get(name, 0.0) for name in ("ingest", "loadgen", "redis", "replica"))
    return max(0.0, cpu[MACHINE] - ours)


def _per_process(cpu: dict[str, float]) -> str:
    """Each busy ingest process's share (uvicorn's idle supervisor, under 1%, is left out)."""
    shares = sorted((v for k, v in cpu.items() if k.startswith("ingest:") and v >= 1), reverse=True)
    return "+".join(f"{v:.0f}" for v in shares) or "0"


def _report_profile(profile: Profile) -> None:
    print(
        f"\nwhere the service's CPU goes: py-spy, workers=1, single-event POSTs, "
        f"{profile.samples} samples of the thread holding the GIL "
        f"({fmt_rate(profile.throughput)} events/s while sampled):\n"
    )
    rows = [[name, f"{share:.1f}%"] for name, share in profile.categories]
    print(table(["category (deepest matching frame of each sample)", "share"], rows))
    print("\n  top frames by own time:\n")
    print(table(["frame", "share"], [[f, f"{s:.1f}%"] for f, s in profile.top_self]))


def _report_verdict(args: argparse.Namespace, scenarios: list[Scenario]) -> bool:
    print(
        f"\nbar: >= {BAR_EVENTS_PER_S:,.0f} events/s and p99 < {BAR_P99_MS:.0f} ms "
        f"with {args.concurrency} concurrent clients, durability {args.durability[0]}\n"
    )
    for s in scenarios:
        if s.batch == FLOOR:
            continue
        counted = s.batch == 1 and s.durability == args.durability[0]
        note = "" if counted else " (information only)"
        print(
            f"  {'PASS' if s.passed else 'FAIL'}  {s.name}: "
            f"{fmt_rate(s.events_per_s)} events/s, p99 {fmt_ms(s.p99)} ms{note}"
        )
    singles = [s for s in scenarios if s.batch == 1 and s.durability == args.durability[0]]
    passing = [str(s.workers) for s in singles if s.passed]
    if passing:
        print(f"\nPASS: single-event POSTs meet the bar with workers={','.join(passing)}")
    else:
        print("\nFAIL: single-event POSTs do not meet the bar with any --workers setting tried")
    return bool(passing)


if __name__ == "__main__":
    sys.exit(main())
