"""Sustained load: N minutes of tickets opening, replying and resolving at a fixed event rate.

    python bench/soak/soak.py --minutes 10 --rate 1050

Starts ``escalera ingest`` (2 workers), ``escalera worker`` and ``escalera beat`` against a
fresh PostgreSQL database and a key prefix of their own on the shared Redis, and a local HTTP
sink for the notifications. The policy (``--policy``):

- ``desk`` (default, bench/soak/desk-policy.yaml): a desk's targets compressed 60 times (first
  response 30 s to 4 min). Most tickets are answered in time; about one checkpoint fires per 8
  events: warnings, breaches, pages, a reminder and an escalation of the late ones.
- ``chaos`` (tests/chaos/chaos-policy.yaml): targets in seconds, nearly every ticket warns,
  breaches or escalates: about two firings per event, a stress of the fire path.

Tickets are started for a warm-up (the longest life, so the event rate has reached ``--rate``)
and then for the measured ``--minutes``. It reports:

- the load accepted in the measured window (events/s, refusals) and what was stored by the end;
- lateness of firing (``fired_at - due_at``) and of delivery (``delivered_at - due_at``);
- queue depth (events and fire queues) and memory (RSS, each process with its children) every
  ``--sample`` seconds, and memory at the window's start and end;
- claims per checkpoint: how many times beat handed each checkpoint to the fire queue (beat's
  ``escalera_checkpoint_claims_total`` over the checkpoints claimed: those fired, and those met
  or cancelled after their claim, the worker's ``escalera_checkpoints_skipped_total{reason=
  "gone"}``; read from both processes' /metrics once the queues drained; bar: 1.05), and where
  repeated claims came from (found fired already, moved later, leases reaped), and the passes
  a full fire queue held back.

The default rate is half the measured ingest capacity (~2,100 events/s, README "Measured").
Everything it creates is named escalera_bench_<run> / escalera-bench-<run> and removed.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench._support import (
    ROOT,
    TOKEN,
    CpuSample,
    RawHttp,
    Tree,
    answers_within,
    command_line,
    delete_prefix,
    escalera_env,
    free_port,
    fresh_database,
    machine,
    percentile,
    pg_connect,
    postgres_tree,
    print_kv,
    queue_key,
    redis_client,
    redis_pid,
    rss_mib,
    run_id,
    start,
    stop_all,
    table,
    tail,
)

# A ticket's life: its priority, then (seconds after creation, event type, fields) of each event.
Life = tuple[str, list[tuple[float, str, dict[str, Any]]]]

_REPLY, _CUSTOMER, _RESOLVED = "agent_replied", "customer_replied", "resolved"
_PENDING = ("status_changed", {"status": "pending"})
_OPEN = ("status_changed", {"status": "open"})


def _life(priority: str, *steps: tuple[float, str] | tuple[float, str, dict[str, Any]]) -> Life:
    return priority, [(s[0], s[1], s[2] if len(s) == 3 else {}) for s in steps]


# bench/soak/desk-policy.yaml: first response P1 30 s, P2 2 min, P3 4 min; updates P1 every
# 2 min; warnings at 75 and 90 %. Most tickets are answered and resolved in time. D answers a
# P2 after its first warning; G a P1 after its breach (two warnings, the breach, a page); I
# answers a P1 at once and then leaves the customer waiting: the update's two warnings, its
# breach (paged), a reminder and the tier-2 escalation (paged) at 255 s. 9 firings in 71 events.
_A = _life("P3", (60, _REPLY), (100, _CUSTOMER), (130, _REPLY), (165, _RESOLVED))
_B = _life("P3", (30, _REPLY), (45, *_PENDING), (120, *_OPEN), (150, _REPLY), (180, _RESOLVED))
_C = _life("P2", (45, _REPLY), (75, _CUSTOMER), (100, _REPLY), (130, _RESOLVED))
_D = _life("P2", (100, _REPLY), (150, _RESOLVED))
_E = _life("P1", (15, _REPLY), (30, _CUSTOMER), (50, _REPLY), (75, _RESOLVED))
_F = _life("P3", (100, _REPLY), (200, _RESOLVED))
_G = _life("P1", (35, _REPLY), (100, _RESOLVED))
_H = _life("P2", (15, *_PENDING), (50, *_OPEN), (75, _REPLY), (125, _RESOLVED))
_I = _life("P1", (15, _REPLY), (40, _CUSTOMER), (300, _RESOLVED))
DESK: list[Life] = [_A, _B, _C, _D, _E, _F, _G, _H, _A, _C, _E, _F, _B, _A, _I, _F]

# tests/chaos/chaos-policy.yaml: targets in seconds, P1 24 s (warning at 12 s). Nearly every
# ticket warns, breaches or escalates: about two firings per event, a stress of the fire path.
CHAOS: list[Life] = [
    _life("P1", (3, _REPLY), (8, _CUSTOMER), (12, _RESOLVED)),
    _life("P1", (27, _REPLY), (30, _RESOLVED)),  # first response breached
    _life("P2", (4, _REPLY), (45, _REPLY), (50, _RESOLVED)),
    _life("P2", (3, *_PENDING), (20, *_OPEN), (25, _REPLY), (30, _RESOLVED)),
]

HERE = Path(__file__).resolve().parent
POLICIES: dict[str, tuple[Path, list[Life]]] = {
    "desk": (HERE / "desk-policy.yaml", DESK),
    "chaos": (ROOT / "tests" / "chaos" / "chaos-policy.yaml", CHAOS),
}


def events_per_ticket(lives: list[Life]) -> float:
    return sum(1 + len(steps) for _, steps in lives) / len(lives)


class CountingSink:
    def __init__(self) -> None:
        self.count = 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                sink.count += 1
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class Load:
    """Tickets started at ``rate / events-per-ticket`` a second; each event sent at its instant.

    Tickets are started for ``warmup + seconds``: after ``warmup`` (the longest life) every
    life is under way and the events arrive at ``rate``, which the measured window then holds.
    """

    def __init__(
        self,
        port: int,
        lives: list[Life],
        rate: float,
        window: tuple[float, float],
        run: str,
        *,
        batch: int = 1,
    ) -> None:
        self.port, self.lives, self.rate, self.run = port, lives, rate, run
        self.warmup, self.seconds = window
        self.batch = batch  # events a request carries at most (1: one webhook per event)
        self.sent = self.accepted = self.refused = 0
        self.first_error: str | None = None  # of a request that failed without an answer

    async def main(self, connections: int = 32) -> None:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=connections * 4)
        senders = [
            asyncio.create_task(self._sender(RawHttp(self.port), queue)) for _ in range(connections)
        ]
        await self._schedule(queue)
        await queue.join()
        for task in senders:
            task.cancel()

    async def _schedule(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        rng = random.Random(7)
        heap: list[tuple[float, int, dict[str, Any]]] = []
        ticket_rate = self.rate / events_per_ticket(self.lives)
        starting = self.warmup + self.seconds
        began = time.monotonic()
        n = seq = 0
        while True:
            elapsed = time.monotonic() - began
            while elapsed < starting and n < ticket_rate * elapsed:
                priority, steps = self.lives[n % len(self.lives)]
                ticket, created = f"soak-{self.run}-{n}", time.time()
                first = _event(ticket, 0, created, "created", {"priority": priority})
                heapq.heappush(heap, (created, seq := seq + 1, first))
                for i, (offset, kind, fields) in enumerate(steps, start=1):
                    at = created + offset + rng.uniform(0, 0.5)
                    heapq.heappush(heap, (at, seq := seq + 1, _event(ticket, i, at, kind, fields)))
                n += 1
            while heap and heap[0][0] <= time.time():
                await queue.put(heapq.heappop(heap)[2])
                self.sent += 1
            if elapsed >= starting and not heap:
                return
            await asyncio.sleep(0.005)

    async def _sender(self, http: RawHttp, queue: asyncio.Queue[dict[str, Any]]) -> None:
        while True:
            events = [await queue.get()]
            while len(events) < self.batch and not queue.empty():
                events.append(queue.get_nowait())  # those already due: a batch is never held
            try:
                body = events[0] if self.batch == 1 else events
                status, _ = await http.request(b"POST /v1/events", json.dumps(body).encode())
                if status == 202:
                    self.accepted += len(events)
                else:
                    self.refused += len(events)
            except Exception as exc:  # counted and shown; the sender goes on
                http.close()
                self.refused += len(events)
                self.first_error = self.first_error or f"{type(exc).__name__}: {exc}"
            finally:
                for _ in events:
                    queue.task_done()


def _event(ticket: str, n: int, at: float, kind: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": f"{ticket}-e{n}",
        "ticket_id": ticket,
        "type": kind,
        "occurred_at": datetime.fromtimestamp(at, UTC).isoformat(),
        **fields,
    }


LATENESS = {
    "firing (fired_at - due_at)": (
        "SELECT EXTRACT(EPOCH FROM fired_at - due_at) FROM checkpoints WHERE state = 'fired'"
    ),
    "delivery (delivered_at - due_at)": (
        "SELECT EXTRACT(EPOCH FROM n.delivered_at - c.due_at) FROM notifications n"
        " JOIN checkpoints c ON c.id = n.checkpoint_id WHERE n.delivered_at IS NOT NULL"
    ),
}


def lateness(database: str) -> list[tuple[str, int, str, str, str, str]]:
    rows = []
    with pg_connect(database) as conn:
        for name, sql in LATENESS.items():
            values = sorted(float(v) for (v,) in conn.execute(sql))
            figures = [percentile(values, p) for p in (50, 90, 99)] + [max(values, default=0.0)]
            rows.append((name, len(values), *(f"{v:.3f}" for v in figures)))
    return rows  # type: ignore[return-value]


def counts(database: str) -> dict[str, int]:
    with pg_connect(database) as conn:
        return {
            name: int(conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0])  # type: ignore[index]
            for name in ("tickets", "events", "checkpoints", "notifications")
        }


def start_system(
    url: str,
    prefix: str,
    folder: Path,
    port: int,
    sink: CountingSink,
    *,
    policy: Path,
    metrics: dict[str, int],
) -> dict[str, Any]:
    """Ingest, the worker and beat; ``metrics``: the port the worker and beat serve /metrics on."""
    document = yaml.safe_load(policy.read_text())
    channels = {
        f"ESCALERA_CHANNEL_{name.upper()}": f"json://127.0.0.1:{sink.port}/{name}"
        for name in document["channels"]
    }
    env = escalera_env(
        url,
        prefix,
        f"{prefix}-events",
        ESCALERA_FIRE_QUEUE=f"{prefix}-fire",
        ESCALERA_POLICY_DIR=str(folder / "policies"),
        ESCALERA_DEFAULT_POLICY=document["name"],
        ESCALERA_API_TOKENS=f'["{TOKEN}"]',
        **channels,
    )
    cli = [sys.executable, "-m", "worker.cli"]
    return {
        "ingest": start(
            [*cli, "ingest", "--port", str(port), "--workers", "2"], env, folder / "ingest.log"
        ),
        "worker": start(
            [*cli, "worker", "--concurrency", "2", "--metrics-port", str(metrics["worker"])],
            env,
            folder / "worker.log",
        ),
        "beat": start(
            [*cli, "beat", "--metrics-port", str(metrics["beat"])], env, folder / "beat.log"
        ),
    }


@dataclass
class Sample:
    at: float  # seconds since the load began
    sent: int
    accepted: int
    refused: int
    events_queue: int
    fire_queue: int
    sink: int
    rss: dict[str, float]  # process -> MiB, with its children
    cpu: CpuSample  # CPU seconds so far of each group of processes (`cpu_groups`)


def cpu_groups(procs: dict[str, Any], database: str) -> dict[str, list[int] | Tree]:
    """Where the machine's CPU goes: our three processes, the services, and this one."""
    groups: dict[str, list[int] | Tree] = {name: Tree(p.pid) for name, p in procs.items()}
    if (postgres := postgres_tree(database)) is not None:
        groups["postgres (the whole server)"] = postgres
    if (redis := redis_pid()) is not None:
        groups["redis (the whole server)"] = [redis]
    groups["load generator and sink"] = [os.getpid()]
    return groups


def soak(
    args: argparse.Namespace,
    load: Load,
    prefix: str,
    sink: CountingSink,
    procs: dict[str, Any],
    *,
    groups: dict[str, list[int] | Tree],
) -> list[Sample]:
    """Run the load, sampling queues and memory until it is over and the queues drained (or
    ``--drain`` passed)."""
    rds = redis_client()
    thread = threading.Thread(target=lambda: asyncio.run(load.main()), daemon=True)
    began = time.monotonic()
    thread.start()
    samples: list[Sample] = []
    drain_until: float | None = None
    while True:
        time.sleep(args.sample)
        events, fire = (rds.llen(queue_key(prefix, f"{prefix}-{q}")) for q in ("events", "fire"))
        rss = {name: rss_mib(p.pid) for name, p in procs.items()}
        at = time.monotonic() - began
        samples.append(
            Sample(
                at,
                load.sent,
                load.accepted,
                load.refused,
                events,
                fire,
                sink.count,
                rss,
                CpuSample.take(groups),
            )
        )
        if not thread.is_alive():
            drain_until = drain_until or time.monotonic() + args.drain
            if events + fire == 0 or time.monotonic() > drain_until:
                return samples


# the counters behind the claims figure (shared/metrics.py), by the process that counts them
COUNTERS = {
    "claims": ("beat", "escalera_checkpoint_claims_total", {}),
    "reaped": ("beat", "escalera_timer_leases_reaped_total", {}),
    "held": ("beat", "escalera_beat_held_ticks_total", {}),
    "gone": ("worker", "escalera_checkpoints_skipped_total", {"reason": "gone"}),
    "again": ("worker", "escalera_checkpoints_skipped_total", {"reason": "fired"}),
    "later": ("worker", "escalera_checkpoints_skipped_total", {"reason": "later"}),
}


@dataclass
class Claims:
    claims: int  # checkpoints beat handed to the fire queue, each repeated claim again
    fired: int  # distinct checkpoints fired (the database)
    gone: int  # claimed, then met or cancelled before their task ran: claimed, never fired
    again: int  # found fired already by their task: repeated claims
    later: int  # found moved later by their task: claimed again when due
    reaped: int  # leases that expired and were handed out again (both lanes)
    held: int  # beat passes a full fire queue held back

    @property
    def per_checkpoint(self) -> float:
        claimed = self.fired + self.gone
        return self.claims / claimed if claimed else 0.0


def claims(metrics: dict[str, int], database: str) -> Claims:
    """The claim counters of beat and the worker, and the checkpoints fired, read together."""
    samples = {}
    for process, port in metrics.items():
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        samples[process] = [s for f in text_string_to_metric_families(text) for s in f.samples]
    figures = {
        key: int(
            sum(
                sample.value
                for sample in samples[process]
                if sample.name == name and labels.items() <= sample.labels.items()
            )
        )
        for key, (process, name, labels) in COUNTERS.items()
    }
    with pg_connect(database) as conn:
        row = conn.execute("SELECT count(*) FROM checkpoints WHERE state = 'fired'").fetchone()
    return Claims(fired=int(row[0]) if row else 0, **figures)


def at_or_after(samples: list[Sample], at: float) -> Sample:
    return next((s for s in samples if s.at >= at), samples[-1])


def at_or_before(samples: list[Sample], at: float) -> Sample:
    return next((s for s in reversed(samples) if s.at <= at), samples[0])


def report(
    load: Load, samples: list[Sample], database: str, sink: CountingSink, firing: Claims
) -> None:
    first = at_or_after(samples, load.warmup)
    last = at_or_before(samples, load.warmup + load.seconds)
    if last.at <= first.at:
        print("\nno two samples in the measured window: choose --sample shorter than --minutes")
        return
    span = last.at - first.at
    accepted = last.accepted - first.accepted
    print(
        f"\nload in the measured window ({first.at:.0f}-{last.at:.0f} s,"
        f" after a {load.warmup:.0f} s warm-up): {accepted:,} events accepted,"
        f" {accepted / span:,.0f}/s (asked {load.rate:,.0f}/s);"
        f" {last.refused - first.refused} refused"
    )
    if load.first_error:
        print(f"first request that failed without an answer: {load.first_error}")
    print(
        f"whole run: {load.accepted:,} accepted, {load.refused} refused;"
        f" stored at the end: {counts(database)}; messages at the sink: {sink.count:,}"
    )
    names = list(samples[0].rss)
    print("\nqueue depth and memory over time (RSS in MiB, with children)")
    headers = ["t (s)", "sent", "accepted", "refused", "events queue", "fire queue", "sink"]
    rows = [
        (
            f"{s.at:.0f}",
            s.sent,
            s.accepted,
            s.refused,
            s.events_queue,
            s.fire_queue,
            s.sink,
            *(f"{s.rss[n]:.0f}" for n in names),
        )
        for s in samples
    ]
    print(table([*headers, *names], rows))
    print("\nlateness (seconds)")
    print(table(["", "n", "p50", "p90", "p99", "max"], lateness(database)))
    print("\nclaims (whole run, read once the queues drained)")
    rows = [
        ("claims per checkpoint (bar: 1.05)", f"{firing.per_checkpoint:.3f}"),
        ("claims (each repeated claim again)", f"{firing.claims:,}"),
        ("checkpoints fired", f"{firing.fired:,}"),
        ("claimed, then met or cancelled (not fired)", f"{firing.gone:,}"),
        ("repeated: found fired already", f"{firing.again:,}"),
        ("repeated: found moved later", f"{firing.later:,}"),
        ("leases reaped (handed out again)", f"{firing.reaped:,}"),
        ("beat passes held (fire queue full)", f"{firing.held:,}"),
    ]
    print(table(["", "value"], rows))
    print(
        f"\nmemory over the measured window (RSS, MiB, with children; at {first.at:.0f} s and"
        f" {last.at:.0f} s, and the most seen in the whole run)"
    )
    rss = [
        (n, f"{first.rss[n]:.0f}", f"{last.rss[n]:.0f}", f"{max(s.rss[n] for s in samples):.0f}")
        for n in names
    ]
    print(table(["process", "start", "end", "most"], rss))
    cores = last.cpu.percent_since(first.cpu) if last is not first else {}
    print("\nCPU over the measured window (% of one core; the machine has 2)")
    print(table(["", "CPU"], [(name, f"{value:.0f}%") for name, value in cores.items()]))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="the measured window")
    parser.add_argument(
        "--rate", type=float, default=1050.0, help="events/s (default: half of ~2,100 measured)"
    )
    parser.add_argument(
        "--policy",
        choices=sorted(POLICIES),
        default="desk",
        help="desk (default): a desk's targets in minutes; chaos: seconds, a stress of firing",
    )
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between samples")
    parser.add_argument(
        "--drain", type=float, default=60.0, help="seconds to let the queues drain after the load"
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=1,
        help="events per request at most (default 1: one webhook per event, as portals send)",
    )
    args = parser.parse_args()
    run = run_id()
    prefix = f"escalera-bench-{run}"
    policy, lives = POLICIES[args.policy]
    warmup = max(offset for _, steps in lives for offset, _, _ in steps) + 1
    print(f"soak: {command_line()}")
    print_kv(
        [
            *machine(),
            ("run", run),
            (
                "policy",
                f"{policy.relative_to(ROOT)} ({events_per_ticket(lives):.2f} events a ticket)",
            ),
            ("events per request, at most", str(args.batch)),
        ]
    )
    folder = Path(tempfile.mkdtemp(prefix="escalera-soak-"))
    (folder / "policies").mkdir()
    shutil.copy(policy, folder / "policies" / f"{args.policy}.yaml")  # its name: the file's
    sink, port = CountingSink(), free_port()
    metrics = {"worker": free_port(), "beat": free_port()}
    with fresh_database(f"escalera_bench_{run}") as url:
        database = url.rsplit("/", 1)[1]
        procs = start_system(url, prefix, folder, port, sink, policy=policy, metrics=metrics)
        try:
            if not answers_within(f"http://127.0.0.1:{port}/readyz", procs["ingest"], 60):
                raise SystemExit("ingest did not become ready:\n" + tail(folder / "ingest.log"))
            time.sleep(3)  # the worker and beat finish starting
            window = (warmup, args.minutes * 60)
            load = Load(port, lives, args.rate, window, run, batch=args.batch)
            groups = cpu_groups(procs, database)
            samples = soak(args, load, prefix, sink, procs, groups=groups)
            firing = claims(metrics, database)
        finally:
            stop_all(procs.values())
            delete_prefix(prefix)
        report(load, samples, database, sink, firing)
    shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
