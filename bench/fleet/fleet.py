"""The soak's desk load shared by a fleet: two hosts of ingest and workers, a third of data.

    flock /tmp/escalera-bench.lock .venv/bin/python bench/fleet/fleet.py --minutes 3 --rate 300

As root, three network namespaces on a bridge (`bench/fleet/netns.py`, ``10.77.0.0/24``) stand
for three machines:

- ``data`` (10.77.0.10): a private ``redis-server`` and a private PostgreSQL 15 cluster (initdb
  into a temporary folder; the shared server's settings where they matter: fsync on,
  shared_buffers 128MB, autovacuum off as on this VM, so ANALYZE runs every ``--analyze`` s);
- ``host1`` (10.77.0.11): ``escalera ingest``, ``escalera worker`` and ``escalera beat``;
- ``host2`` (10.77.0.12): ``escalera ingest`` and ``escalera worker``.

The load generator (the soak's `Load`, its desk lives and their instants) runs in the root
namespace and spreads its webhooks over both ingest replicas (connections alternate); the
notification sink listens on the bridge (10.77.0.1) and records which host each message came
from. Everything is torn down at the end, on Ctrl-C and on failure: processes, namespaces,
bridge, temporary folders.

It reports whether the fleet lost or doubled anything (events sent, accepted, stored; checkpoints
fired against the workers' firing counters; notifications sent against messages at the sink and
their distinct bodies), how the work was shared (events accepted per ingest, applied, checkpoints
fired and messages sent per worker host), claims per checkpoint, lateness, CPU per process, and
the per-event costs a larger fleet multiplies: Redis commands (INFO commandstats) and the keys
they touch (a few seconds of MONITOR), PostgreSQL transactions, rows and WAL bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import psycopg
import redis
import yaml
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench._support import (
    MACHINE,
    ROOT,
    TOKEN,
    CpuSample,
    PrivateRedis,
    RawHttp,
    Tree,
    command_line,
    escalera_env,
    machine,
    percentile,
    pg_connect,
    print_kv,
    queue_key,
    run_id,
    start,
    stop,
    table,
    tail,
    wait_for,
)
from bench.fleet.netns import Network
from bench.soak.soak import (
    COUNTERS,
    LATENESS,
    PG_WORK,
    POLICIES,
    Claims,
    Load,
    events_per_ticket,
    metric,
)
from shared.db.migrate import upgrade

QUEUES = ("events", "fire")
OVERDUE = "checkpoints armed and overdue"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
DATA, HOSTS = "data", ("host1", "host2")
INGEST_PORT, WORKER_METRICS, BEAT_METRICS = 8080, 9100, 9101

# The shared server's settings that matter to the figures (/etc/postgresql/15/main and its
# conf.d): the private cluster runs with the same. max_connections is higher: the fleet has
# twice the processes, each with its pool (docs/scaling.md, "Connections").
PG_SETTINGS = {
    "fsync": "on",
    "synchronous_commit": "on",
    "shared_buffers": "128MB",
    "max_wal_size": "1GB",
    "min_wal_size": "80MB",
    "autovacuum": "off",
    "max_connections": "300",
}


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {done.stderr.strip() or done.stdout.strip()}")


class PrivatePostgres:
    """A PostgreSQL 15 cluster of our own in namespace ``name`` of ``net``, listening on its
    address, trusting the bridge's subnet; `stop` removes it."""

    def __init__(self, net: Network, name: str, folder: Path) -> None:
        self.net, self.name, self.host, self.port = net, name, net.address[name], 5432
        folder.chmod(0o711)  # mkdtemp's 0700 would keep the postgres user out
        self.folder = folder / "postgres"
        self.folder.mkdir()
        shutil.chown(self.folder, "postgres", "postgres")
        self.data = self.folder / "data"
        as_postgres = ["runuser", "-u", "postgres", "--"]
        initdb = [str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust"]
        _run([*as_postgres, *initdb, "-E", "UTF8", "--locale=C.UTF-8", "--no-instructions"])
        settings = {
            **PG_SETTINGS,
            "listen_addresses": f"'{self.host}'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.folder}'",
        }
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{k} = {v}\n" for k, v in settings.items())
        with (self.data / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {net.subnet}.0/24 trust\n")
        self._ctl = [*net.wrap(name), *as_postgres, str(PG_BIN / "pg_ctl"), "-D", str(self.data)]
        log = self.folder / "server.log"
        _run([*self._ctl, "-l", str(log), "-w", "-t", "60", "start"])
        self.pid = int((self.data / "postmaster.pid").read_text().split()[0])

    def url(self, database: str) -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{database}"

    def connect(self, database: str) -> psycopg.Connection[Any]:
        return pg_connect(database, host=self.host, port=self.port)

    def version(self) -> str:
        with self.connect("postgres") as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return f"PostgreSQL {row[0] if row else '?'} at {self.host}:{self.port}"

    def stop(self) -> None:
        subprocess.run([*self._ctl, "-m", "fast", "-w", "stop"], check=False, capture_output=True)


class Sink:
    """An HTTP sink on the bridge: counts each message by the host that sent it (its source
    address) and by a digest of its path and body (a message delivered twice shows twice)."""

    def __init__(self, host: str, hosts: dict[str, str]) -> None:
        self.by_host: Counter[str] = Counter()
        self.bodies: Counter[str] = Counter()
        self.lock = threading.Lock()
        names = {address: name for name, address in hosts.items()}
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                digest = hashlib.sha1(self.path.encode() + b"\0" + body).hexdigest()
                with sink.lock:
                    sink.by_host[names.get(self.client_address[0], self.client_address[0])] += 1
                    sink.bodies[digest] += 1
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def count(self) -> int:
        return sum(self.by_host.values())


class FleetLoad(Load):
    """The soak's load, its connections spread over several ingest replicas in turn."""

    def __init__(self, targets: list[tuple[str, int]], *args: Any, **kwargs: Any) -> None:
        super().__init__(targets[0][1], *args, **kwargs)
        self.targets = targets

    async def main(self, connections: int = 32) -> None:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=connections * 4)
        senders = [
            asyncio.create_task(self._sender(RawHttp(port, host=host), queue))
            for i in range(connections)
            for host, port in [self.targets[i % len(self.targets)]]
        ]
        await self._schedule(queue)
        for task in senders:
            task.cancel()


def scrape(host: str, port: int) -> list[Any]:
    """The samples of a process's /metrics (a worker's: all its processes together)."""
    headers = {"authorization": f"Bearer {TOKEN}"}
    text = httpx.get(f"http://{host}:{port}/metrics", headers=headers, timeout=10).text
    return [s for f in text_string_to_metric_families(text) for s in f.samples]


@dataclass
class Sample:
    at: float  # seconds since the load began
    sent: int
    accepted: int
    deferred: int
    applied: dict[str, int]  # worker host -> events applied
    events_queue: int
    fire_queue: int
    sink: int
    cpu: CpuSample
    pg: dict[str, int]  # PG_WORK, and "WAL bytes"
    redis_calls: dict[str, int]  # command -> calls so far (INFO commandstats)

    @property
    def applied_total(self) -> int:
        return sum(self.applied.values())


def pg_work(pg: PrivatePostgres, database: str) -> dict[str, int]:
    columns = ", ".join(PG_WORK.values())
    with pg.connect(database) as conn:
        row = conn.execute(
            f"SELECT {columns}, pg_current_wal_lsn() - '0/0'::pg_lsn"
            " FROM pg_stat_database WHERE datname = %s",
            (database,),
        ).fetchone()
    return dict(zip([*PG_WORK, "WAL bytes"], (int(v) for v in row), strict=True)) if row else {}


def redis_calls(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


_ID = re.compile(r"[0-9a-f]{8,}(-[0-9a-f]{4,})*|\d+")


def key_shape(prefix: str, key: str) -> str:
    """A key with the run's prefix and every id in it generalized (``<prefix>`` and ``<id>``),
    so one applier's keys and another's count as one shape."""
    key = key.replace(prefix, "<prefix>")
    return _ID.sub("<id>", key)


@dataclass
class Monitor:
    """Redis commands by key, from ``seconds`` of MONITOR (it costs Redis CPU while it runs)."""

    prefix: str
    calls: Counter[tuple[str, str]] = field(default_factory=Counter)  # (command, key) -> calls
    seconds: float = 0.0

    def run(self, url: str, seconds: float) -> None:
        client = redis.Redis.from_url(url, socket_timeout=5)
        began = time.monotonic()
        with client.monitor() as monitor:  # type: ignore[no-untyped-call]
            for entry in monitor.listen():
                words = str(entry.get("command", "")).split()
                if words:
                    self.calls[(words[0].upper(), self._key(words))] += 1
                if time.monotonic() - began > seconds:
                    break
        self.seconds = time.monotonic() - began

    def _key(self, words: list[str]) -> str:
        command = words[0].upper()
        if command in {"EVALSHA", "EVAL"} and len(words) > 3 and words[2].isdigit():
            keys = words[3 : 3 + int(words[2])]
            return " ".join(key_shape(self.prefix, k) for k in keys) or "-"
        return key_shape(self.prefix, words[1]) if len(words) > 1 else "-"


def start_fleet(
    net: Network,
    env: dict[str, str],
    folder: Path,
    args: argparse.Namespace,
) -> dict[str, subprocess.Popen[bytes]]:
    cli = [sys.executable, "-m", "worker.cli"]
    procs: dict[str, subprocess.Popen[bytes]] = {}
    workers = ["--workers", str(args.ingest_workers)]
    metrics = ["--metrics-port", str(WORKER_METRICS), "--metrics-host"]
    beat_host = ["--metrics-host", net.address["host1"]]
    for host in HOSTS:
        address, wrap = net.address[host], net.wrap(host)
        procs[f"{host} ingest"] = start(
            [*wrap, *cli, "ingest", "--host", address, "--port", str(INGEST_PORT), *workers],
            env,
            folder / f"{host}-ingest.log",
        )
        procs[f"{host} worker"] = start(
            [*wrap, *cli, "worker", "--concurrency", str(args.concurrency), *metrics, address],
            env,
            folder / f"{host}-worker.log",
        )
    procs["host1 beat"] = start(
        [*net.wrap("host1"), *cli, "beat", "--metrics-port", str(BEAT_METRICS), *beat_host],
        env,
        folder / "host1-beat.log",
    )
    return procs


def ready(net: Network, procs: dict[str, subprocess.Popen[bytes]], folder: Path) -> None:
    """Wait for both ingest replicas' /readyz and every worker's and beat's /metrics."""
    urls = {f"{h} ingest": f"http://{net.address[h]}:{INGEST_PORT}/readyz" for h in HOSTS}
    urls |= {f"{h} worker": f"http://{net.address[h]}:{WORKER_METRICS}/metrics" for h in HOSTS}
    urls["host1 beat"] = f"http://{net.address['host1']}:{BEAT_METRICS}/metrics"
    for name, url in urls.items():

        def answers(url: str = url) -> bool:
            try:
                return httpx.get(url, timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        if not wait_for(answers, time.time() + 60, 0.2, procs=[procs[name]]):
            log = folder / f"{name.replace(' ', '-')}.log"
            raise SystemExit(f"{name} did not become ready ({url}):\n{tail(log)}")


def cpu_groups(
    procs: dict[str, subprocess.Popen[bytes]], pg: PrivatePostgres, rds: PrivateRedis
) -> dict[str, list[int] | Tree]:
    groups: dict[str, list[int] | Tree] = {name: Tree(p.pid) for name, p in procs.items()}
    for host in HOSTS:
        groups[f"{host} worker main process (appliers)"] = [procs[f"{host} worker"].pid]
    groups["postgres (private, whole server)"] = Tree(pg.pid)
    groups["redis (private)"] = [rds.proc.pid]
    groups["load generator and sink"] = [os.getpid()]
    return groups


def run_load(
    args: argparse.Namespace,
    load: FleetLoad,
    *,
    net: Network,
    rds: PrivateRedis,
    pg: PrivatePostgres,
    database: str,
    prefix: str,
    sink: Sink,
    groups: dict[str, list[int] | Tree],
    monitor: Monitor,
) -> list[Sample]:
    """Run the load, sampling every ``--sample`` s until it is over and the queues drained."""
    thread = threading.Thread(target=lambda: asyncio.run(load.main()), daemon=True)
    began = time.monotonic()
    thread.start()
    samples: list[Sample] = []
    analyzed, drain_until, monitored = began, None, False
    applied = dict.fromkeys(HOSTS, 0)
    while True:
        time.sleep(args.sample)
        at = time.monotonic() - began
        if args.analyze and time.monotonic() - analyzed >= args.analyze:
            analyzed = time.monotonic()
            with pg.connect(database) as conn:
                conn.execute("ANALYZE")
        for host in HOSTS:
            try:
                worker = scrape(net.address[host], WORKER_METRICS)
                applied[host] = metric(worker, "escalera_events_applied_total")
            except httpx.HTTPError:  # busy: the last figure stands
                pass
        events, fire = (rds.client.llen(queue_key(prefix, f"{prefix}-{q}")) for q in QUEUES)
        samples.append(
            Sample(
                at,
                load.sent,
                load.accepted,
                load.deferred,
                dict(applied),
                int(events),
                int(fire),
                sink.count,
                CpuSample.take(groups),
                pg_work(pg, database),
                redis_calls(rds.client),
            )
        )
        print(  # progress, on stderr: the report's table has it all
            f"  {at:6.0f} s  sent {load.sent:,}  accepted {load.accepted:,}  applied"
            f" {samples[-1].applied_total:,}  events queue {events:,}  fire queue {fire:,}"
            f"  sink {sink.count:,}",
            file=sys.stderr,
            flush=True,
        )
        if not monitored and at >= load.warmup + load.seconds and args.monitor:
            monitored = True  # after the window's last sample: its CPU is not in the figures
            monitor.run(rds.url, args.monitor)
        if not thread.is_alive():
            drain_until = drain_until or time.monotonic() + args.drain
            if events + fire == 0 or time.monotonic() > drain_until:
                return samples


def lateness(pg: PrivatePostgres, database: str) -> list[tuple[str, ...]]:
    rows = []
    with pg.connect(database) as conn:
        for name, sql in LATENESS.items():
            values = sorted(float(v) for (v,) in conn.execute(sql))
            figures = [percentile(values, p) for p in (50, 90, 99)] + [max(values, default=0.0)]
            rows.append((name, f"{len(values):,}", *(f"{v:.3f}" for v in figures)))
    return rows


def stored(pg: PrivatePostgres, database: str) -> dict[str, int]:
    queries = {
        "tickets": "SELECT count(*) FROM tickets",
        "events": "SELECT count(*) FROM events",
        "distinct (source, event_id)": "SELECT count(DISTINCT (source, event_id)) FROM events",
        "dead letters": "SELECT count(*) FROM dead_letters",
        "checkpoints fired": "SELECT count(*) FROM checkpoints WHERE state = 'fired'",
        OVERDUE: ("SELECT count(*) FROM checkpoints WHERE state = 'armed' AND due_at <= now()"),
        "notifications": "SELECT count(*) FROM notifications",
        "distinct dedupe keys": "SELECT count(DISTINCT dedupe_key) FROM notifications",
        "notifications sent": "SELECT count(*) FROM notifications WHERE status = 'sent'",
    }
    with pg.connect(database) as conn:
        return {k: int(conn.execute(q).fetchone()[0]) for k, q in queries.items()}  # type: ignore[index]


@dataclass
class Shares:
    """Each host's part of the work, from its processes' /metrics once the queues drained."""

    ingested: dict[str, int]
    applied: dict[str, int]
    fired: dict[str, int]
    sent: dict[str, int]
    firing: Claims


def shares(net: Network, database: str, pg: PrivatePostgres) -> Shares:
    ingest = {h: scrape(net.address[h], INGEST_PORT) for h in HOSTS}
    workers = {h: scrape(net.address[h], WORKER_METRICS) for h in HOSTS}
    beat = scrape(net.address["host1"], BEAT_METRICS)
    figures = {}
    for key, (process, name, labels) in COUNTERS.items():
        if process == "beat":
            figures[key] = metric(beat, name, labels)
        else:
            figures[key] = sum(metric(w, name, labels) for w in workers.values())
    with pg.connect(database) as conn:
        row = conn.execute("SELECT count(*) FROM checkpoints WHERE state = 'fired'").fetchone()
    return Shares(
        ingested={h: metric(s, "escalera_events_ingested_total") for h, s in ingest.items()},
        applied={h: metric(s, "escalera_events_applied_total") for h, s in workers.items()},
        fired={h: metric(s, "escalera_checkpoints_fired_total") for h, s in workers.items()},
        sent={
            h: metric(s, "escalera_notifications_total", {"outcome": "sent"})
            for h, s in workers.items()
        },
        firing=Claims(fired=int(row[0]) if row else 0, **figures),
    )


def _share(part: dict[str, int]) -> list[str]:
    total = sum(part.values())
    return [f"{part[h]:,} ({100 * part[h] / total:.0f}%)" if total else "0" for h in HOSTS]


def report(  # noqa: PLR0915 - one report, printed in the order it is read
    load: FleetLoad,
    *,
    samples: list[Sample],
    counted: dict[str, int],
    work: Shares,
    sink: Sink,
    late: list[tuple[str, ...]],
    monitor: Monitor,
) -> None:
    first = next((s for s in samples if s.at >= load.warmup), samples[-1])
    last = next((s for s in reversed(samples) if s.at <= load.warmup + load.seconds), samples[0])
    span = last.at - first.at
    applied = last.applied_total - first.applied_total
    accepted = last.accepted - first.accepted

    print("\nqueue depth and applied events over time")
    headers = ["t (s)", "sent", "accepted", "deferred", *(f"applied {h}" for h in HOSTS)]
    rows = [
        (
            f"{s.at:.0f}",
            f"{s.sent:,}",
            f"{s.accepted:,}",
            f"{s.deferred:,}",
            *(f"{s.applied[h]:,}" for h in HOSTS),
            f"{s.events_queue:,}",
            f"{s.fire_queue:,}",
            f"{s.sink:,}",
        )
        for s in samples
    ]
    print(table([*headers, "events queue", "fire queue", "sink"], rows))

    print("\nnothing lost, nothing doubled (whole run)")
    events = counted["distinct (source, event_id)"]
    fired = counted["checkpoints fired"]
    fired_tasks = sum(work.fired.values())
    sent_metric = sum(work.sent.values())
    sent = counted["notifications sent"]
    doubled_bodies = sum(n - 1 for n in sink.bodies.values() if n > 1)
    rows = [
        ("events sent (each once; resends after a 503 not counted)", f"{load.sent:,}"),
        ("events accepted (202)", f"{load.accepted:,}"),
        ("answers 503 (deferred) / refused", f"{load.deferred:,} / {load.refused:,}"),
        ("still deferred at the end (never accepted)", f"{load.still_deferred:,}"),
        ("events stored (rows / distinct ids)", f"{counted['events']:,} / {events:,}"),
        ("dead letters", f"{counted['dead letters']:,}"),
        ("lost: sent - still deferred - stored", f"{load.sent - load.still_deferred - events:,}"),
        ("checkpoints fired (database)", f"{fired:,}"),
        ("firings counted by the workers", f"{fired_tasks:,}"),
        ("doubled firings: counted - fired", f"{fired_tasks - fired:,}"),
        (
            "checkpoints armed and overdue at the end",
            f"{counted[OVERDUE]:,}",
        ),
        (
            "notifications (rows / distinct dedupe keys)",
            f"{counted['notifications']:,} / {counted['distinct dedupe keys']:,}",
        ),
        (
            "notifications sent (database / workers' counters)",
            f"{sent:,} / {sent_metric:,}",
        ),
        ("messages at the sink (a storm's digest: several)", f"{sink.count:,}"),
        ("distinct messages at the sink", f"{len(sink.bodies):,}"),
        ("doubled deliveries: the same message twice", f"{doubled_bodies:,}"),
    ]
    print(table(["", "value"], rows))

    print("\nhow the hosts shared the work (whole run)")
    rows = [
        ("events accepted by its ingest", *_share(work.ingested)),
        ("events applied by its worker", *_share(work.applied)),
        ("checkpoints fired by its worker", *_share(work.fired)),
        ("messages sent by its worker (counter)", *_share(work.sent)),
        ("messages at the sink from it", *_share({h: sink.by_host[h] for h in HOSTS})),
    ]
    print(table(["", *HOSTS], rows))

    firing = work.firing
    print(
        f"\nclaims per checkpoint: {firing.per_checkpoint:.3f} (bar 1.05): {firing.claims:,}"
        f" claims, {firing.fired:,} fired, {firing.gone:,} met or cancelled after the claim;"
        f" repeated {firing.again:,} (found fired), later {firing.later:,}, reaped"
        f" {firing.reaped:,}, beat passes held {firing.held:,}"
    )
    print("\nlateness (seconds)")
    print(table(["", "n", "p50", "p90", "p99", "max"], late))

    if span <= 0 or not applied:
        print("\nno two samples in the measured window: no per-event figures")
        return
    print(
        f"\nmeasured window {first.at:.0f}-{last.at:.0f} s: {accepted:,} accepted"
        f" ({accepted / span:,.0f}/s, asked {load.rate:,.0f}/s), {applied:,} applied"
        f" ({applied / span:,.0f}/s)"
    )
    print("\nCPU over the measured window (% of one core; the machine has 2)")
    used = {n: last.cpu.seconds[n] - first.cpu.seconds[n] for n in last.cpu.seconds}
    for host in HOSTS:
        used[f"{host} worker pool children (fire, deliver)"] = (
            used[f"{host} worker"] - used[f"{host} worker main process (appliers)"]
        )
    services = [n for n in used if n not in {MACHINE, "load generator and sink"}]
    services = [n for n in services if "main process" not in n and "pool children" not in n]
    used["fleet and its services (sum of the above)"] = sum(used[n] for n in services)
    rows = [
        (n, f"{100 * v / span:.0f}%", f"{v:.1f}", f"{1000 * v / applied:.2f}")
        for n, v in sorted(used.items(), key=lambda kv: (kv[0] == MACHINE, "sum" in kv[0], kv[0]))
    ]
    print(table(["", "CPU", "CPU s", "ms per applied event"], rows))

    print("\nRedis commands per applied event over the window (INFO commandstats)")
    calls = {c: last.redis_calls.get(c, 0) - first.redis_calls.get(c, 0) for c in last.redis_calls}
    total = sum(calls.values())
    top = sorted(((c, n) for c, n in calls.items() if n), key=lambda x: -x[1])[:14]
    rows = [(c, f"{n:,}", f"{n / applied:.2f}") for c, n in top]
    rows.append(("all commands", f"{total:,}", f"{total / applied:.2f}"))
    print(table(["command", "window", "per event"], rows))

    if monitor.calls:
        seen = sum(monitor.calls.values())
        print(
            f"\nkeys the commands touched: {seen:,} commands in {monitor.seconds:.1f} s of MONITOR"
            " just after the window (ids generalized)"
        )
        rows = [
            (f"{cmd} {key}"[:110], f"{n:,}", f"{100 * n / seen:.1f}%")
            for (cmd, key), n in monitor.calls.most_common(16)
        ]
        print(table(["command key", "calls", "share"], rows))

    print("\nPostgreSQL's work per applied event over the window (pg_stat_database, WAL position)")
    rows = [
        (
            name,
            f"{last.pg[name] - first.pg[name]:,}",
            f"{(last.pg[name] - first.pg[name]) / applied:.2f}",
        )
        for name in last.pg
    ]
    print(table(["", "window", "per event"], rows))


def describe(
    args: argparse.Namespace,
    run: str,
    net: Network,
    data: tuple[PrivateRedis, PrivatePostgres],
    policy: tuple[Path, list[Any]],
) -> None:
    rds, pg = data
    path, lives = policy
    print_kv(
        [
            *machine(),
            ("run", run),
            ("policy", f"{path.relative_to(ROOT)} ({events_per_ticket(lives):.2f} events/ticket)"),
            ("namespaces", ", ".join(f"{n} {a}" for n, a in net.address.items())),
            ("data", f"Redis {rds.version} at {rds.url}; {pg.version()}"),
            ("PostgreSQL settings", ", ".join(f"{k}={v}" for k, v in PG_SETTINGS.items())),
            ("ANALYZE every", f"{args.analyze:g} s"),
            (
                "each host",
                f"ingest --workers {args.ingest_workers}, worker --concurrency"
                f" {args.concurrency}; beat on host1",
            ),
        ]
    )


def fleet_env(  # noqa: PLR0917 - where each setting comes from
    net: Network,
    data: tuple[PrivatePostgres, str, PrivateRedis],
    prefix: str,
    folder: Path,
    policy: Path,
    sink: Sink,
) -> dict[str, str]:
    """The processes' environment: the data namespace's services, the policy, the sink."""
    pg, database, rds = data
    document = yaml.safe_load(policy.read_text())
    (folder / "policies").mkdir()
    shutil.copy(policy, folder / "policies" / f"{document['name']}.yaml")  # named as it says
    channels = {
        f"ESCALERA_CHANNEL_{name.upper()}": f"json://{net.gateway}:{sink.port}/{name}"
        for name in document["channels"]
    }
    return escalera_env(
        pg.url(database),
        prefix,
        f"{prefix}-events",
        REDIS_URL=rds.url,
        ESCALERA_FIRE_QUEUE=f"{prefix}-fire",
        ESCALERA_POLICY_DIR=str(folder / "policies"),
        ESCALERA_DEFAULT_POLICY=document["name"],
        ESCALERA_API_TOKENS=f'["{TOKEN}"]',
        **channels,
    )


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=3.0, help="the measured window")
    parser.add_argument("--rate", type=float, default=300.0, help="events/s over both ingests")
    parser.add_argument("--policy", choices=sorted(POLICIES), default="desk")
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--drain", type=float, default=60.0, help="seconds to let queues drain")
    parser.add_argument(
        "--analyze", type=float, default=60.0, help="ANALYZE every SECONDS (autovacuum is off)"
    )
    parser.add_argument("--concurrency", type=int, default=2, help="each worker's pool processes")
    parser.add_argument("--ingest-workers", type=int, default=1, help="each ingest's processes")
    parser.add_argument(
        "--monitor", type=float, default=5.0, help="seconds of Redis MONITOR after the window"
    )
    parser.add_argument("--subnet", default="10.77.0", help="the bridge's /24 (first 3 octets)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _interrupt)
    run = run_id()
    prefix = f"escalera-bench-{run}"
    policy, lives = POLICIES[args.policy]
    warmup = max(offset for _, steps in lives for offset, _, _ in steps) + 1
    print(f"fleet: {command_line()}")
    folder = Path(tempfile.mkdtemp(prefix="escalera-fleet-"))
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        with Network(run, [DATA, *HOSTS], args.subnet) as net:
            rds = PrivateRedis(host=net.address[DATA], port=6379, wrap=net.wrap(DATA))
            pg = PrivatePostgres(net, DATA, folder)
            try:
                describe(args, run, net, (rds, pg), (policy, lives))
                database = f"escalera_bench_{run}"
                with pg.connect("postgres") as conn:
                    conn.execute(f'CREATE DATABASE "{database}"')
                upgrade(pg.url(database))
                sink = Sink(net.gateway, net.address)
                env = fleet_env(net, (pg, database, rds), prefix, folder, policy, sink)
                procs.update(start_fleet(net, env, folder, args))
                ready(net, procs, folder)
                targets = [(net.address[h], INGEST_PORT) for h in HOSTS]
                load = FleetLoad(
                    targets, lives, args.rate, (warmup, args.minutes * 60), run, patience=args.drain
                )
                monitor = Monitor(prefix)
                samples = run_load(
                    args,
                    load,
                    net=net,
                    rds=rds,
                    pg=pg,
                    database=database,
                    prefix=prefix,
                    sink=sink,
                    groups=cpu_groups(procs, pg, rds),
                    monitor=monitor,
                )
                work = shares(net, database, pg)
                counted = stored(pg, database)
                late = lateness(pg, database)
                report(
                    load,
                    samples=samples,
                    counted=counted,
                    work=work,
                    sink=sink,
                    late=late,
                    monitor=monitor,
                )
            finally:
                for proc in procs.values():
                    stop(proc)
                pg.stop()
                rds.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
