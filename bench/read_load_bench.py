"""Heavy ticket reads against a real ingest process: is ``/healthz`` still live, is memory flat?

Run from the repository root::

    .venv/bin/python bench/read_load_bench.py            # ~1.5 min on 2 cores
    .venv/bin/python bench/read_load_bench.py --help     # clients, events, distinct reads

It creates a PostgreSQL database ``escalera_bench_reads_<run>`` and stores, in-process, one
ticket of ``--events`` (5,000) events (a long conversation: replies both ways, pauses) and one
ticket of 10, both on the ``--policy`` preset (athento: Madrid hours and Spain's holidays, the
preset of the issue's probe). It starts ``python -m worker.cli ingest`` on a free 127.0.0.1 port
with a legacy ``ESCALERA_API_TOKENS`` token (which may read), then:

1. RSS of the ingest process after one warm-up read;
2. the issue's probe ``GET /v1/tickets/api/<small>?at=9999-12-30T00:00:00Z`` (31 s and +680 MB
   before the window; now a 422 naming ``at``), its answer time and the RSS after it;
3. ``--distinct`` reads of the small ticket at distinct ``at`` values spread over its whole
   window (first event to 366 days past now), the slowest of them, and the RSS after them;
4. ``--clients`` (50) concurrent reads of the 5,000-event ticket, each on its own keep-alive
   connection, while one more connection asks ``/healthz`` every ``--probe-every`` seconds until
   the last read has answered: ``/healthz`` p50/p99/max, the reads' answers and times, RSS after.

Bar: ``/healthz`` p99 under ``--bar-ms`` (100 ms) during step 4, the probe refused, and memory
flat: RSS after steps 2 and 3 within max(10 %, 15 MiB) of step 1's. Exit 0 on PASS, 1 on FAIL,
2 if the run broke. Everything it created is removed (database dropped, Redis keys under its
prefix deleted, the service stopped by its pid).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# ``python bench/read_load_bench.py`` puts bench/ (not the repository root) on sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import (
    POLICY,
    PRESETS,
    RawHttp,
    answers_within,
    command_line,
    delete_prefix,
    escalera_env,
    fmt_ms,
    free_port,
    fresh_database,
    machine,
    median,
    percentile,
    pg_settings,
    print_kv,
    rss_mib,
    run_id,
    start,
    stop,
    table,
    tail,
)
from shared.config import Settings
from shared.db.engine import make_engine, session_factory
from shared.events import Event
from worker.events.apply import apply_events
from worker.policies.book import PolicyBook

EXIT_FAIL, EXIT_BROKEN = 1, 2
READ_TOKEN = "bench-read-token-5f0c2a9e7d41b3c8"  # a legacy token: every scope, reads included
PROBE = "9999-12-30T00:00:00Z"
HORIZON = timedelta(days=366)  # ESCALERA_TICKET_READ_HORIZON_DAYS, its default


class Broken(Exception):
    """The run itself failed (a service did not start, a request could not be sent)."""


@dataclass
class Heavy:
    health_ms: list[float] = field(default_factory=list)
    read_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0


# -- the tickets ---------------------------------------------------------------------------------
def _long_ticket(ticket: str, events: int, now: datetime) -> list[Event]:
    """A conversation of ``events`` events over the last 60 days: replies both ways, a status
    change every other exchange, pending (clocks paused) one time in four."""
    start_at = now - timedelta(days=60)
    step = timedelta(days=59) / events
    kinds = ("customer_replied", "agent_replied", "status_changed", "agent_replied")
    out = [_event(ticket, 0, "created", start_at, priority="P2", customer="acme")]
    for n in range(1, events):
        kind = kinds[n % len(kinds)]
        fields = {"status": "pending" if n % 8 == 2 else "open"} if kind == "status_changed" else {}
        out.append(_event(ticket, n, kind, start_at + step * n, **fields))
    return out


def _short_ticket(ticket: str, now: datetime) -> list[Event]:
    start_at = now - timedelta(days=30)
    kinds = ("agent_replied", "customer_replied", "agent_replied")
    created = _event(ticket, 0, "created", start_at, priority="P3", customer="acme")
    return [
        created,
        *(_event(ticket, n, k, start_at + timedelta(hours=n)) for n, k in enumerate(kinds, 1)),
    ]


def _event(ticket: str, n: int, kind: str, at: datetime, **fields: Any) -> Event:
    return Event.model_validate(
        {
            "event_id": f"{ticket}-e{n}",
            "ticket_id": ticket,
            "type": kind,
            "occurred_at": at,
            **fields,
        }
    )


def _store(url: str, policy: str, events: list[Event]) -> None:
    config = Settings(
        database_url=url, policy_dir=PRESETS, default_policy=POLICY, source_policies={"api": policy}
    )
    sessions = session_factory(make_engine(url))
    with sessions.begin() as session:
        apply_events(session, PolicyBook.from_settings(config), events, datetime.now(UTC))


# -- the service ---------------------------------------------------------------------------------
def _rss_mib(pid: int) -> float:
    """Resident memory of the service: the process and any child it started, in MiB."""
    total = rss_mib(pid)
    if not total:
        raise Broken(f"no VmRSS for pid {pid}")
    return total


async def _get(client: RawHttp, path: str, timeout: float = 300.0) -> tuple[int, float]:
    started = time.perf_counter()
    status, _ = await client.request(f"GET {path}".encode(), timeout=timeout)
    return status, (time.perf_counter() - started) * 1000


async def _distinct_reads(port: int, path: str, ats: list[datetime]) -> list[tuple[int, float]]:
    """Each ``at`` read once, over 4 connections."""
    clients = [RawHttp(port, READ_TOKEN) for _ in range(4)]
    results: list[tuple[int, float]] = []

    async def worker(client: RawHttp, mine: list[datetime]) -> None:
        for at in mine:
            query = at.isoformat().replace("+00:00", "Z")
            results.append(await _get(client, f"{path}?at={query}"))

    await asyncio.gather(*(worker(c, ats[i :: len(clients)]) for i, c in enumerate(clients)))
    for client in clients:
        client.close()
    return results


async def _heavy(port: int, path: str, clients: int, every: float, cap: float) -> Heavy:
    """``clients`` concurrent reads of ``path``; /healthz every ``every`` s until all answered."""
    out = Heavy()
    readers = [RawHttp(port, READ_TOKEN) for _ in range(clients)]
    prober = RawHttp(port, READ_TOKEN)
    started = time.perf_counter()

    async def one(client: RawHttp) -> None:
        status, ms = await _get(client, path, timeout=cap)
        out.statuses[status] = out.statuses.get(status, 0) + 1
        out.read_ms.append(ms)

    reads = asyncio.gather(*(one(c) for c in readers))
    while not reads.done():
        status, ms = await _get(prober, "/healthz", timeout=cap)
        if status != 200:
            raise Broken(f"/healthz answered {status}")
        out.health_ms.append(ms)
        await asyncio.sleep(every)
    await reads
    out.seconds = time.perf_counter() - started
    for client in [*readers, prober]:
        client.close()
    return out


# -- the run -------------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--policy", default="athento", help="preset the tickets follow")
    parser.add_argument("--events", type=int, default=5000, help="events of the heavy ticket")
    parser.add_argument("--clients", type=int, default=50, help="concurrent heavy reads")
    parser.add_argument("--distinct", type=int, default=1000, help="reads at distinct `at`")
    parser.add_argument("--probe-every", type=float, default=0.02, help="seconds between probes")
    parser.add_argument("--reads-at-once", type=int, help="ESCALERA_TICKET_READS_AT_ONCE")
    parser.add_argument("--cap", type=float, default=300.0, help="seconds any request may take")
    parser.add_argument("--bar-ms", type=float, default=100.0, help="/healthz p99 bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    run = run_id()
    prefix, database = f"escalera-bench-{run}", f"escalera_bench_reads_{run}"
    print("# Escalera ticket-read benchmark\n")
    print(f"command: {command_line()}\n")
    print("setup:")
    at_once = args.reads_at_once or Settings().ticket_reads_at_once
    print_kv(
        [
            *machine(),
            ("server", "python -m worker.cli ingest --port <free> --workers 1 (one process)"),
            ("postgresql", f"{pg_settings()}; database {database}"),
            ("policy", f"{args.policy} (source api)"),
            ("tickets", f"BIG: {args.events} events over 60 days; SMALL: 4 events, 30 days ago"),
            ("read turns", f"{at_once} at once (ESCALERA_TICKET_READS_AT_ONCE)"),
        ]
    )
    started = time.monotonic()
    try:
        with (
            tempfile.TemporaryDirectory(prefix="escalera-bench-") as tmp,
            fresh_database(database) as url,
        ):
            try:
                figures = _run(args, url, prefix, Path(tmp), at_once)
            finally:
                deleted = delete_prefix(prefix)
    except Broken as exc:
        print(f"\nBROKEN RUN: {exc}")
        return EXIT_BROKEN
    passed = _report(args, figures)
    print(
        f"\ncleanup: database {database} dropped, {deleted} Redis key(s) under {prefix} "
        f"deleted, the service stopped; total time {time.monotonic() - started:.0f} s"
    )
    return 0 if passed else EXIT_FAIL


def _run(
    args: argparse.Namespace, url: str, prefix: str, tmp: Path, at_once: int
) -> dict[str, Any]:
    now = datetime.now(UTC)
    print("\nrunning:", flush=True)
    clock = time.perf_counter()
    _store(url, args.policy, _long_ticket("BIG", args.events, now) + _short_ticket("SMALL", now))
    print(f"  stored the tickets in {time.perf_counter() - clock:.1f} s", flush=True)
    port = free_port()
    env = escalera_env(
        url,
        prefix,
        f"{prefix}-events",
        ESCALERA_API_TOKENS=json.dumps([READ_TOKEN]),
        ESCALERA_SOURCE_POLICIES=json.dumps({"api": args.policy}),
        ESCALERA_TICKET_READS_AT_ONCE=str(at_once),
    )
    log = tmp / "ingest.log"
    command = [sys.executable, "-m", "worker.cli", "ingest", "--port", str(port), "--workers", "1"]
    proc = start(command, env, log)
    try:
        if not answers_within(f"http://127.0.0.1:{port}/healthz", proc):
            raise Broken(f"the ingest service did not start; its log:\n{tail(log)}")
        return asyncio.run(_steps(args, port, proc.pid, now))
    finally:
        if proc.poll() is not None:
            print(f"  the service exited early; its log:\n{tail(log)}")
        stop(proc)


async def _steps(args: argparse.Namespace, port: int, pid: int, now: datetime) -> dict[str, Any]:
    small, big = "/v1/tickets/api/SMALL", "/v1/tickets/api/BIG"
    client = RawHttp(port, READ_TOKEN)
    figures: dict[str, Any] = {}
    status, _ = await _get(client, small)
    if status != 200:
        raise Broken(f"the warm-up read answered {status}")
    figures["rss_start"] = _rss_mib(pid)
    figures["probe"] = await _get(client, f"{small}?at={PROBE}", timeout=args.cap)
    figures["rss_probe"] = _rss_mib(pid)
    print(f"  probe at={PROBE}: {figures['probe'][0]} in {figures['probe'][1]:.1f} ms", flush=True)
    first, last = now - timedelta(days=30), now + HORIZON - timedelta(hours=1)
    step = (last - first) / max(1, args.distinct - 1)
    ats = [first + step * i + timedelta(seconds=i % 60) for i in range(args.distinct)]
    distinct = await _distinct_reads(port, small, ats)
    figures["distinct"] = distinct
    figures["rss_distinct"] = _rss_mib(pid)
    bad = [s for s, _ in distinct if s != 200]
    print(f"  {len(distinct)} distinct-`at` reads ({len(bad)} not 200)", flush=True)
    client.close()
    heavy = await _heavy(port, big, args.clients, args.probe_every, args.cap)
    figures["heavy"] = heavy
    figures["rss_heavy"] = _rss_mib(pid)
    print(f"  {args.clients} heavy reads answered in {heavy.seconds:.1f} s", flush=True)
    return figures


def _report(args: argparse.Namespace, figures: dict[str, Any]) -> bool:
    heavy: Heavy = figures["heavy"]
    health = sorted(heavy.health_ms)
    reads = sorted(heavy.read_ms)
    distinct = sorted(ms for _, ms in figures["distinct"])
    print("\nresults:")
    print(
        table(
            ["what", "p50 ms", "p99 ms", "max ms", "count"],
            [
                [
                    f"/healthz during {args.clients} heavy reads",
                    fmt_ms(median(health)),
                    fmt_ms(percentile(health, 99)),
                    fmt_ms(health[-1]),
                    len(health),
                ],
                [
                    f"heavy reads ({args.events} events)",
                    fmt_ms(median(reads)),
                    fmt_ms(percentile(reads, 99)),
                    fmt_ms(reads[-1]),
                    len(reads),
                ],
                [
                    "distinct-`at` reads (4 events)",
                    fmt_ms(median(distinct)),
                    fmt_ms(percentile(distinct, 99)),
                    fmt_ms(distinct[-1]),
                    len(distinct),
                ],
            ],
        )
    )
    statuses = ", ".join(f"{s}: {n}" for s, n in sorted(heavy.statuses.items()))
    print(f"\nheavy reads answered: {statuses}")
    start_mib = figures["rss_start"]
    print(
        table(
            ["ingest RSS", "MiB"],
            [
                ["after one warm-up read", f"{start_mib:.1f}"],
                [f"after the at={PROBE} probe", f"{figures['rss_probe']:.1f}"],
                [f"after {len(distinct)} reads at distinct `at`", f"{figures['rss_distinct']:.1f}"],
                [f"after {args.clients} heavy reads", f"{figures['rss_heavy']:.1f}"],
            ],
        )
    )
    allowed = start_mib + max(0.10 * start_mib, 15.0)
    checks = [
        (f"/healthz p99 < {args.bar_ms:g} ms", percentile(health, 99) < args.bar_ms),
        ("the far probe refused (422)", figures["probe"][0] == 422),
        (
            f"RSS flat (<= {allowed:.1f} MiB)",
            max(figures["rss_probe"], figures["rss_distinct"]) <= allowed,
        ),
        ("every distinct-`at` read answered 200", all(s == 200 for s, _ in figures["distinct"])),
    ]
    print()
    for name, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    return all(ok for _, ok in checks)


if __name__ == "__main__":
    sys.exit(main())
