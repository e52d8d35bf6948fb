"""Sustained load: N minutes of tickets opening, replying and resolving at a fixed event rate.

    python bench/soak/soak.py --minutes 10 --rate 1050

Starts ``escalera ingest`` (2 workers), ``escalera worker`` and ``escalera beat`` against a
fresh PostgreSQL database and a key prefix of their own on the shared Redis, with the chaos
suite's policy (targets in seconds: tests/chaos/chaos-policy.yaml) so checkpoints fall due and
fire all along, and a local HTTP sink for the notifications. It reports:

- the load actually sent (events/s, refusals) and what was applied by the end;
- lateness of firing (``fired_at - due_at``) and of delivery (``delivered_at - due_at``);
- queue depth (events and fire queues) every ``--sample`` seconds;
- resident memory (RSS, the process and its children) of every process at start and end.

The default rate is half the measured ingest capacity (~2,100 events/s, README "Measured").
Everything it creates is named escalera_bench_<run> / escalera-bench-<run> and removed.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import random
import shutil
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench._support import (
    ROOT,
    TOKEN,
    command_line,
    delete_prefix,
    escalera_env,
    free_port,
    fresh_database,
    machine,
    percentile,
    pg_connect,
    print_kv,
    queue_key,
    redis_client,
    run_id,
    start,
    stop,
    table,
    tail,
    tree,
)

POLICY = ROOT / "tests" / "chaos" / "chaos-policy.yaml"
# (offset s, type, fields) after creation; P1 targets are 24 s (warning at 12 s)
LIVES: list[tuple[str, list[tuple[float, str, dict[str, Any]]]]] = [
    ("P1", [(3, "agent_replied", {}), (8, "customer_replied", {}), (12, "resolved", {})]),
    ("P1", [(27, "agent_replied", {}), (30, "resolved", {})]),  # first response breached
    ("P2", [(4, "agent_replied", {}), (45, "agent_replied", {}), (50, "resolved", {})]),
    (
        "P2",
        [
            (3, "status_changed", {"status": "pending"}),
            (20, "status_changed", {"status": "open"}),
            (25, "agent_replied", {}),
            (30, "resolved", {}),
        ],
    ),
]
EVENTS_PER_TICKET = sum(1 + len(steps) for _, steps in LIVES) / len(LIVES)


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


def rss_mib(pid: int) -> float:
    """Resident memory of a process and its descendants, in MiB."""
    total = 0
    for member in tree(pid):
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


class Load:
    """Tickets started at ``rate / events-per-ticket`` a second; each event sent at its instant."""

    def __init__(self, base: str, rate: float, seconds: float, run: str, batch: int = 1) -> None:
        self.base, self.rate, self.seconds, self.run = base, rate, seconds, run
        self.batch = batch  # events a request carries at most (1: one webhook per event)
        self.sent = self.accepted = self.refused = 0
        self.stop = False

    async def main(self, connections: int = 32) -> None:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=connections * 4)
        headers = {"authorization": f"Bearer {TOKEN}"}
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        async with httpx.AsyncClient(
            base_url=self.base, headers=headers, timeout=10, limits=limits
        ) as client:
            senders = [asyncio.create_task(self._sender(client, queue)) for _ in range(connections)]
            await self._schedule(queue)
            await queue.join()
            for task in senders:
                task.cancel()

    async def _schedule(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        rng = random.Random(7)
        heap: list[tuple[float, int, dict[str, Any]]] = []
        ticket_rate = self.rate / EVENTS_PER_TICKET
        began = time.monotonic()
        n = seq = 0
        while True:
            elapsed = time.monotonic() - began
            while elapsed < self.seconds and n < ticket_rate * elapsed:
                priority, steps = LIVES[n % len(LIVES)]
                ticket, created = f"soak-{self.run}-{n}", time.time()
                heapq.heappush(
                    heap,
                    (
                        created,
                        seq := seq + 1,
                        _event(ticket, 0, created, "created", {"priority": priority}),
                    ),
                )
                for i, (offset, kind, fields) in enumerate(steps, start=1):
                    at = created + offset + rng.uniform(0, 0.5)
                    heapq.heappush(heap, (at, seq := seq + 1, _event(ticket, i, at, kind, fields)))
                n += 1
            while heap and heap[0][0] <= time.time():
                await queue.put(heapq.heappop(heap)[2])
                self.sent += 1
            if elapsed >= self.seconds and not heap:
                return
            await asyncio.sleep(0.005)

    async def _sender(
        self, client: httpx.AsyncClient, queue: asyncio.Queue[dict[str, Any]]
    ) -> None:
        while True:
            events = [await queue.get()]
            while len(events) < self.batch and not queue.empty():
                events.append(queue.get_nowait())  # those already due: a batch is never held
            try:
                body = events[0] if self.batch == 1 else events
                response = await client.post("/v1/events", json=body)
                if response.status_code == 202:
                    self.accepted += len(events)
                else:
                    self.refused += len(events)
            except httpx.TransportError:
                self.refused += len(events)
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


def wait_ready(base: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("ingest did not become ready:\n" + tail(log))


def start_system(
    url: str, prefix: str, folder: Path, port: int, sink: CountingSink
) -> dict[str, Any]:
    channels = {
        f"ESCALERA_CHANNEL_{c}": f"json://127.0.0.1:{sink.port}/{c.lower()}"
        for c in ("ONCALL", "TIER2", "BACKUP")
    }
    env = escalera_env(
        url,
        prefix,
        f"{prefix}-events",
        ESCALERA_FIRE_QUEUE=f"{prefix}-fire",
        ESCALERA_POLICY_DIR=str(folder / "policies"),
        ESCALERA_DEFAULT_POLICY="chaos",
        ESCALERA_API_TOKENS=f'["{TOKEN}"]',
        **channels,
    )
    cli = [sys.executable, "-m", "worker.cli"]
    return {
        "ingest": start(
            [*cli, "ingest", "--port", str(port), "--workers", "2"], env, folder / "ingest.log"
        ),
        "worker": start([*cli, "worker", "--concurrency", "2"], env, folder / "worker.log"),
        "beat": start([*cli, "beat"], env, folder / "beat.log"),
    }


def soak(
    args: argparse.Namespace, load: Load, prefix: str, sink: CountingSink
) -> list[tuple[Any, ...]]:
    """Run the load, sampling the queues until it is over and they drained (or --drain passed)."""
    rds = redis_client()
    thread = threading.Thread(target=lambda: asyncio.run(load.main()), daemon=True)
    began = time.monotonic()
    thread.start()
    samples: list[tuple[Any, ...]] = []
    drain_until: float | None = None
    while True:
        time.sleep(args.sample)
        depth = [rds.llen(queue_key(prefix, f"{prefix}-{q}")) for q in ("events", "fire")]
        elapsed = round(time.monotonic() - began)
        samples.append((elapsed, load.sent, load.accepted, load.refused, *depth, sink.count))
        if not thread.is_alive():
            drain_until = drain_until or time.monotonic() + args.drain
            if sum(depth) == 0 or time.monotonic() > drain_until:
                return samples


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument(
        "--rate", type=float, default=1050.0, help="events/s (default: half of ~2,100 measured)"
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
    print(f"soak: {command_line()}")
    print_kv([*machine(), ("run", run), ("events per request, at most", str(args.batch))])
    folder = Path(tempfile.mkdtemp(prefix="escalera-soak-"))
    (folder / "policies").mkdir()
    shutil.copy(POLICY, folder / "policies" / "chaos.yaml")
    sink, port = CountingSink(), free_port()
    with fresh_database(f"escalera_bench_{run}") as url:
        database = url.rsplit("/", 1)[1]
        procs = start_system(url, prefix, folder, port, sink)
        try:
            wait_ready(f"http://127.0.0.1:{port}", folder / "ingest.log")
            time.sleep(3)  # the worker and beat finish starting
            rss_start = {name: rss_mib(p.pid) for name, p in procs.items()}
            load = Load(f"http://127.0.0.1:{port}", args.rate, args.minutes * 60, run, args.batch)
            samples = soak(args, load, prefix, sink)
            rss_end = {name: rss_mib(p.pid) for name, p in procs.items()}
        finally:
            for proc in procs.values():
                stop(proc)
            delete_prefix(prefix)
        seconds = args.minutes * 60
        print(
            f"\nload: {load.accepted:,} events accepted in {seconds:.0f} s "
            f"({load.accepted / seconds:,.0f}/s, asked {args.rate:,.0f}/s), {load.refused} refused"
        )
        print(f"stored at the end: {counts(database)}; messages at the sink: {sink.count:,}")
        print("\nqueue depth over time")
        headers = ["t (s)", "sent", "accepted", "refused", "events queue", "fire queue", "sink"]
        print(table(headers, samples))
        print("\nlateness (seconds)")
        print(table(["", "n", "p50", "p90", "p99", "max"], lateness(database)))
        print("\nmemory (RSS, MiB, with children)")
        rss = [(n, f"{rss_start[n]:.0f}", f"{rss_end[n]:.0f}") for n in procs]
        print(table(["process", "start", "end"], rss))
    shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
