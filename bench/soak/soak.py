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

- the load accepted in the measured window (events/s, answers 503 "deferred" and sent again
  after ``Retry-After``, refusals), the events applied (events/s), what was stored by the end,
  and the events still deferred when the load gave up on them (not lost: a portal still holds
  them);
- lateness of firing (``fired_at - due_at``) and of delivery (``delivered_at - due_at``), the
  delivery also by channel and route, and the notifications' states by channel;
- queue depth (events and fire queues), events applied and memory (RSS, each process with its
  children) every ``--sample`` seconds, and memory at the window's start and end;
- claims per checkpoint: how many times beat handed each checkpoint to the fire queue (beat's
  ``escalera_checkpoint_claims_total`` over the checkpoints claimed: those fired, and those met
  or cancelled after their claim, the worker's ``escalera_checkpoints_skipped_total{reason=
  "gone"}``; read from both processes' /metrics once the queues drained; bar: 1.05), and where
  repeated claims came from (found fired already, moved later, leases reaped), and the passes
  a full fire queue held back;
- CPU over the measured window per process (the worker's main process, where the appliers
  run, apart from its pool, where firing and delivery run), as % of one core and as CPU ms per
  applied event, the figure that does not depend on the day's load; and PostgreSQL's work per
  applied event (transactions, rows written and read: ``pg_stat_database``).

``--hang-channel [CHANNEL]`` (alone: ``pager``, the desk policy's P1 pages, a few of every
16 tickets) sends that channel to a sink that accepts each request and never answers; Apprise
gives up at its read time-out (4 s, or ``--hang-rto``), retries, and after the route's attempts
tells the fallback channel. The lateness of the other channels and the apply rate then show
whether a hanging channel holds anything else up.

``--overload [RATE]`` (alone: twice ``--rate``) runs overload and recovery (issue 18): tickets
start at ``--rate`` for the warm-up and ``--minutes``, at RATE for ``--overload-minutes`` (2),
at ``--rate`` again for ``--recovery-minutes`` (5). It judges the run by the chaos judge's
rules (every event answered 202 stored once, each checkpoint fired once, each dedupe key at the
sink once), reports the phases, firing lateness by due time (``--bucket`` s) and how long after
the overload's end its p99 got back under 1 s for good (bar: 240 s), and with ``--plot FILE.png``
draws queues, lateness and events/s over time (`bench.soak.overload`, `overload_report`, `plot`).
It exits 1 when a bar is not met.

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
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench._support import (
    MACHINE,
    ROOT,
    TOKEN,
    Backends,
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
from bench.soak import overload_report
from bench.soak.keyed_sink import KeyedSink
from bench.soak.overload import Phase, Point, asked_by, overload_phases
from bench.soak.sinks import CountingSink, HangingSink
from worker.api.backlog import RETRY_AFTER_S

Sink = CountingSink | KeyedSink  # KeyedSink: each message's dedupe keys, for --overload

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


class Load:
    """Tickets started at ``rate / events-per-ticket`` a second; each event sent at its instant.

    Tickets are started for ``warmup + seconds``: after ``warmup`` (the longest life) every
    life is under way and the events arrive at ``rate``, which the measured window then holds.

    A 503 (the events queue is full) is honoured as a portal does: the same events (same ids:
    stored once however often sent) go back on the schedule ``Retry-After`` seconds later.
    They are deferred, not refused; those never accepted by ``patience`` seconds after the
    lives' last event are "still deferred" at the end.
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
        patience: float = 60.0,
        phases: list[Phase] | None = None,
    ) -> None:
        self.port, self.lives, self.rate, self.run = port, lives, rate, run
        self.warmup, self.seconds = window
        # the rate over time (`bench.soak.overload`); None: ``rate`` throughout
        self.phases = phases
        self.ids: set[str] | None = set() if phases else None  # ids answered 202, to judge by
        self.began_at = 0.0  # time.time() when the first ticket started
        self.batch = batch  # events a request carries at most (1: one webhook per event)
        self.patience = patience
        self.sent = self.accepted = self.refused = 0  # sent: each event once, resends not
        self.deferred = 0  # events answered 503, each answer again
        self.waiting: set[str] = set()  # ids answered 503 and not accepted since
        # (when due, order, the event, whether it is a resend)
        self._heap: list[tuple[float, int, dict[str, Any], bool]] = []
        self._seq = 0
        self.first_error: str | None = None  # of a request that failed without an answer

    @property
    def still_deferred(self) -> int:
        return len(self.waiting)

    def _push(self, at: float, event: dict[str, Any], *, again: bool = False) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, event, again))

    async def main(self, connections: int = 32) -> None:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=connections * 4)
        senders = [
            asyncio.create_task(self._sender(RawHttp(self.port), queue)) for _ in range(connections)
        ]
        await self._schedule(queue)
        for task in senders:
            task.cancel()

    async def _schedule(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        rng = random.Random(7)
        heap = self._heap
        per_ticket = events_per_ticket(self.lives)
        starting = self.warmup + self.seconds
        began, self.began_at = time.monotonic(), time.time()
        give_up: float | None = None  # the lives' last event, then ``patience`` for resends
        n = 0
        while True:
            elapsed = time.monotonic() - began
            while elapsed < starting and n < self.asked(elapsed) / per_ticket:
                priority, steps = self.lives[n % len(self.lives)]
                ticket, created = f"soak-{self.run}-{n}", time.time()
                self._push(created, _event(ticket, 0, created, "created", {"priority": priority}))
                for i, (offset, kind, fields) in enumerate(steps, start=1):
                    at = created + offset + rng.uniform(0, 0.5)
                    self._push(at, _event(ticket, i, at, kind, fields))
                n += 1
            while heap and heap[0][0] <= time.time():
                _, _, event, again = heapq.heappop(heap)
                await queue.put(event)
                self.sent += not again
            if elapsed >= starting:
                give_up = give_up or time.time() + self.warmup + self.patience
                if not heap:
                    await queue.join()  # every answer in: a 503 put its events back
                    if not heap:
                        return
                if time.time() > give_up:
                    return
            await asyncio.sleep(0.005)

    def asked(self, elapsed: float) -> float:
        """Events' worth of tickets to have started ``elapsed`` seconds in."""
        return asked_by(self.phases, elapsed) if self.phases else self.rate * elapsed

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
                    if self.ids is not None:
                        self.ids.update(e["event_id"] for e in events)
                    if self.waiting:
                        self.waiting.difference_update(e["event_id"] for e in events)
                elif status == 503:  # the queue is full: the same events again, when told
                    self.deferred += len(events)
                    self.waiting.update(e["event_id"] for e in events)
                    at = time.time() + http.retry_after(RETRY_AFTER_S)
                    for event in events:
                        self._push(at, event, again=True)
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


# delivery by channel and route: a fallback (a dead page told to the desk) apart from the desk's own
BY_CHANNEL = (
    "SELECT n.channel || ' via ' || n.route, EXTRACT(EPOCH FROM n.delivered_at - c.due_at)"
    " FROM notifications n JOIN checkpoints c ON c.id = n.checkpoint_id"
    " WHERE n.delivered_at IS NOT NULL"
)
OVERDUE = (
    "SELECT count(*), EXTRACT(EPOCH FROM now() - min(due_at)) FROM checkpoints"
    " WHERE state = 'armed' AND due_at <= now()"
)
STATES = (
    "SELECT channel || ' via ' || route, status, count(*) FROM notifications GROUP BY 1, 2"
    " ORDER BY 1, 2"
)


def _figures(name: str, values: list[float]) -> tuple[str, ...]:
    values.sort()
    figures = [percentile(values, p) for p in (50, 90, 99)] + [max(values, default=0.0)]
    return (name, str(len(values)), *(f"{v:.3f}" for v in figures))


def lateness(database: str) -> list[tuple[str, ...]]:
    """Firing and delivery lateness, then delivery by channel and route."""
    rows = []
    with pg_connect(database) as conn:
        for name, sql in LATENESS.items():
            rows.append(_figures(name, [float(v) for (v,) in conn.execute(sql)]))
        by_channel: dict[str, list[float]] = {}
        for channel, value in conn.execute(BY_CHANNEL):
            by_channel.setdefault(f"  delivery to {channel}", []).append(float(value))
    return rows + [_figures(name, values) for name, values in sorted(by_channel.items())]


def notification_states(database: str) -> list[tuple[str, str, int]]:
    with pg_connect(database) as conn:
        return [(str(c), str(s), int(n)) for c, s, n in conn.execute(STATES)]


def counts(database: str) -> dict[str, int]:
    with pg_connect(database) as conn:
        return {
            name: int(conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0])  # type: ignore[index]
            for name in ("tickets", "events", "checkpoints", "notifications")
        }


@dataclass
class Hang:
    """The channel sent to a `HangingSink`, and Apprise's read time-out for it (None: its
    default, 4 s)."""

    channel: str
    sink: HangingSink
    rto: float | None = None

    def url(self) -> str:
        rto = "" if self.rto is None else f"?rto={self.rto:g}"
        return f"json://127.0.0.1:{self.sink.port}/{self.channel}{rto}"


def start_system(
    url: str,
    prefix: str,
    folder: Path,
    port: int,
    sink: Sink,
    *,
    policy: Path,
    metrics: dict[str, int],
    hang: Hang | None = None,
    max_queue: int | None = None,
    concurrency: int = 2,
) -> dict[str, Any]:
    """Ingest, the worker (``concurrency`` pool processes) and beat; ``metrics``: the port the
    worker and beat serve /metrics on; ``hang``: a channel that goes to a sink that never
    answers instead."""
    document = yaml.safe_load(policy.read_text())
    channels = {
        f"ESCALERA_CHANNEL_{name.upper()}": (
            hang.url() if hang and hang.channel == name else f"json://127.0.0.1:{sink.port}/{name}"
        )
        for name in document["channels"]
    }
    if hang and hang.channel not in document["channels"]:
        raise SystemExit(f"--hang-channel {hang.channel}: not a channel of {policy.name}")
    if max_queue is not None:
        channels["ESCALERA_INGEST_MAX_QUEUE"] = str(max_queue)
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
            [
                *cli,
                "worker",
                "--concurrency",
                str(concurrency),
                "--metrics-port",
                str(metrics["worker"]),
            ],
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
    deferred: int  # answered 503, each answer again
    refused: int
    applied: int  # events the worker applied (its escalera_events_applied_total)
    events_queue: int
    fire_queue: int
    sink: int
    hanging: int  # requests the hanging sink took (0 without one)
    rss: dict[str, float]  # process -> MiB, with its children
    cpu: CpuSample  # CPU seconds so far of each group of processes (`cpu_groups`)
    pg: dict[str, int]  # the database's work so far (`PG_WORK`)


WORKER_MAIN = "worker main process (appliers)"  # the worker's own CPU; its pool children apart
POSTGRES_OURS = "postgres backends of the soak's database"  # of the whole server: ours alone
SERVICES = ("ingest", "worker", "beat", "postgres (the whole server)", "redis (the whole server)")

# the database's work, from pg_stat_database (pg_stat_statements needs a server restart here)
PG_WORK = {
    "transactions committed": "xact_commit",
    "transactions rolled back": "xact_rollback",
    "rows inserted": "tup_inserted",
    "rows updated": "tup_updated",
    "rows deleted": "tup_deleted",
    "rows fetched (by index or by id)": "tup_fetched",
    "rows returned (scans)": "tup_returned",
    "blocks read from the cache": "blks_hit",
}


def pg_work(database: str) -> dict[str, int]:
    columns = ", ".join(PG_WORK.values())
    with pg_connect(database) as conn:
        row = conn.execute(
            f"SELECT {columns} FROM pg_stat_database WHERE datname = %s", (database,)
        ).fetchone()
    return dict(zip(PG_WORK, (int(v) for v in row), strict=True)) if row else {}


# pg_stat_statements is not loaded here (it needs a restart of a server others use): instead,
# what the soak's backends are running is sampled every ACTIVITY_EVERY_S over the measured window,
# and each statement's share of the samples is its share of the time PostgreSQL spent on us.
ACTIVITY_EVERY_S = 0.25
ACTIVITY = (
    "SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 160) FROM pg_stat_activity"
    " WHERE datname = %s AND state = 'active' AND pid <> pg_backend_pid()"
)


class Activity:
    """Counts the statements the soak's backends are running, sampled between ``window``
    (seconds after ``began``, monotonic) by a thread of its own."""

    def __init__(self, database: str, began: float, window: tuple[float, float]) -> None:
        self.database, self.began, self.window = database, began, window
        self.samples = 0
        self.seen: Counter[str] = Counter()
        threading.Thread(target=self._run, name="pg-activity", daemon=True).start()

    def _run(self) -> None:
        start, end = (self.began + t for t in self.window)
        time.sleep(max(0.0, start - time.monotonic()))
        with pg_connect(self.database) as conn:
            while time.monotonic() < end:
                self.samples += 1
                self.seen.update(str(q) for (q,) in conn.execute(ACTIVITY, (self.database,)))
                time.sleep(ACTIVITY_EVERY_S)

    def top(self, n: int = 10) -> list[tuple[str, str, str]]:
        """The busiest statements: share of samples a backend ran it (100 %: one backend, all
        the time), and the statement."""
        return [
            (f"{100 * k / self.samples:.0f}%", str(k), q)
            for q, k in self.seen.most_common(n)
            if self.samples
        ]


def cpu_groups(procs: dict[str, Any], database: str) -> dict[str, list[int] | Tree | Backends]:
    """Where the machine's CPU goes: our three processes, the services, and this one."""
    groups: dict[str, list[int] | Tree | Backends] = {
        name: Tree(p.pid) for name, p in procs.items()
    }
    groups[WORKER_MAIN] = [procs["worker"].pid]
    if (postgres := postgres_tree(database)) is not None:
        groups["postgres (the whole server)"] = postgres
        groups[POSTGRES_OURS] = Backends(database)
    if (redis := redis_pid()) is not None:
        groups["redis (the whole server)"] = [redis]
    groups["load generator and sink"] = [os.getpid()]
    return groups


def soak(
    args: argparse.Namespace,
    load: Load,
    prefix: str,
    sinks: tuple[Sink, HangingSink | None],
    procs: dict[str, Any],
    *,
    groups: dict[str, list[int] | Tree | Backends],
    database: str,
    metrics: dict[str, int],
) -> tuple[list[Sample], Activity]:
    """Run the load, sampling queues and memory until it is over and the queues drained (or
    ``--drain`` passed)."""
    rds = redis_client()
    thread = threading.Thread(target=lambda: asyncio.run(load.main()), daemon=True)
    began = time.monotonic()
    thread.start()
    activity = Activity(database, began, (load.warmup, load.warmup + load.seconds))
    samples: list[Sample] = []
    drain_until: float | None = None
    analyzed = began
    while True:
        time.sleep(args.sample)
        if args.analyze and time.monotonic() - analyzed >= args.analyze:
            analyzed = time.monotonic()
            with pg_connect(database) as conn:
                conn.execute("ANALYZE")
        events, fire = (rds.llen(queue_key(prefix, f"{prefix}-{q}")) for q in ("events", "fire"))
        rss = {name: rss_mib(p.pid) for name, p in procs.items()}
        at = time.monotonic() - began
        sink, hanging = sinks
        try:
            applied = metric(scrape(metrics["worker"]), "escalera_events_applied_total")
        except httpx.HTTPError:  # the worker busy or restarting: the last figure stands
            applied = samples[-1].applied if samples else 0
        samples.append(
            Sample(
                at,
                load.sent,
                load.accepted,
                load.deferred,
                load.refused,
                applied,
                events,
                fire,
                sink.count,
                hanging.requests if hanging else 0,
                rss,
                CpuSample.take(groups),
                pg_work(database),
            )
        )
        if not thread.is_alive():
            drain_until = drain_until or time.monotonic() + args.drain
            if events + fire == 0 or time.monotonic() > drain_until:
                return samples, activity


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


def scrape(port: int) -> list[Any]:
    """The samples of a process's /metrics (the worker's: all its processes together)."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return [s for f in text_string_to_metric_families(text) for s in f.samples]


def metric(samples: list[Any], name: str, labels: dict[str, str] | None = None) -> int:
    """The sum of a counter's samples whose labels include ``labels``."""
    wanted = (labels or {}).items()
    return int(sum(s.value for s in samples if s.name == name and wanted <= s.labels.items()))


def claims(metrics: dict[str, int], database: str) -> Claims:
    """The claim counters of beat and the worker, and the checkpoints fired, read together."""
    samples = {process: scrape(port) for process, port in metrics.items()}
    figures = {
        key: metric(samples[process], name, labels)
        for key, (process, name, labels) in COUNTERS.items()
    }
    with pg_connect(database) as conn:
        row = conn.execute("SELECT count(*) FROM checkpoints WHERE state = 'fired'").fetchone()
    return Claims(fired=int(row[0]) if row else 0, **figures)


def at_or_after(samples: list[Sample], at: float) -> Sample:
    return next((s for s in samples if s.at >= at), samples[-1])


def at_or_before(samples: list[Sample], at: float) -> Sample:
    return next((s for s in reversed(samples) if s.at <= at), samples[0])


def cpu_per_event(first: Sample, last: Sample) -> list[tuple[str, str, str, str, str]]:
    """Each group's CPU over the window: % of one core, seconds, and ms per applied event;
    the worker split into its main process (appliers) and its pool (fire, deliver)."""
    wall = last.at - first.at
    applied = last.applied - first.applied
    accepted = last.accepted - first.accepted
    used = {name: last.cpu.seconds[name] - first.cpu.seconds[name] for name in last.cpu.seconds}
    if WORKER_MAIN in used and "worker" in used:
        used["worker pool children (fire, deliver)"] = used["worker"] - used[WORKER_MAIN]
    used["escalera and its services (ingest..redis)"] = sum(used.get(n, 0.0) for n in SERVICES)
    if POSTGRES_OURS in used:  # the same with only our database's backends of PostgreSQL
        ours = [n for n in SERVICES if not n.startswith("postgres")] + [POSTGRES_OURS]
        used["the same, PostgreSQL: the soak's backends only"] = sum(used[n] for n in ours)
    order = [
        "ingest",
        "worker",
        WORKER_MAIN,
        "worker pool children (fire, deliver)",
        "beat",
        "postgres (the whole server)",
        POSTGRES_OURS,
        "redis (the whole server)",
        "escalera and its services (ingest..redis)",
        "the same, PostgreSQL: the soak's backends only",
        "load generator and sink",
        MACHINE,
    ]
    rows = []
    for name in [n for n in order if n in used] + [n for n in used if n not in order]:
        per_event = f"{1000 * used[name] / applied:.2f}" if applied else "-"
        per_accepted = f"{1000 * used[name] / accepted:.2f}" if accepted else "-"
        label = f"  {name}" if name.startswith(("worker ", "postgres backends")) else name
        cpu = f"{100 * used[name] / wall:.0f}%"
        rows.append((label, cpu, f"{used[name]:.1f}", per_event, per_accepted))
    return rows


def report(
    load: Load,
    samples: list[Sample],
    database: str,
    sinks: tuple[Sink, Hang | None],
    firing: Claims,
) -> None:
    sink, hang = sinks
    first = at_or_after(samples, load.warmup)
    last = at_or_before(samples, load.warmup + load.seconds)
    if last.at <= first.at:
        print("\nno two samples in the measured window: choose --sample shorter than --minutes")
        return
    span = last.at - first.at
    accepted = last.accepted - first.accepted
    applied = last.applied - first.applied
    print(
        f"\nload in the measured window ({first.at:.0f}-{last.at:.0f} s,"
        f" after a {load.warmup:.0f} s warm-up): {accepted:,} events accepted,"
        f" {accepted / span:,.0f}/s (asked {load.rate:,.0f}/s);"
        f" {last.deferred - first.deferred:,} deferred (503, sent again after Retry-After);"
        f" {last.refused - first.refused} refused"
    )
    print(f"applied in the measured window: {applied:,} events, {applied / span:,.0f}/s")
    if load.first_error:
        print(f"first request that failed without an answer: {load.first_error}")
    print(
        f"whole run: {load.accepted:,} accepted, {load.deferred:,} deferred answers (503),"
        f" {load.still_deferred:,} still deferred at the end (never accepted: not lost, the"
        f" sender still holds them), {load.refused} refused;"
        f" stored at the end: {counts(database)}; messages at the sink: {sink.count:,}"
    )
    if hang is not None:
        rto = "Apprise's default, 4 s" if hang.rto is None else f"{hang.rto:g} s"
        print(
            f"hanging channel: {hang.channel} (read time-out {rto}):"
            f" {hang.sink.requests:,} requests taken, never answered"
        )
    names = list(samples[0].rss)
    print("\nqueue depth, applied events and memory over time (RSS in MiB, with children)")
    headers = ["t (s)", "sent", "accepted", "deferred", "refused", "applied", "applied/s"]
    headers += ["events queue", "fire queue", "sink", *(["hanging"] if hang else [])]
    rows = []
    for before, s in zip([None, *samples], samples, strict=False):
        rate = (s.applied - before.applied) / (s.at - before.at) if before else s.applied / s.at
        rows.append(
            (
                f"{s.at:.0f}",
                s.sent,
                s.accepted,
                s.deferred,
                s.refused,
                s.applied,
                f"{rate:.0f}",
                s.events_queue,
                s.fire_queue,
                s.sink,
                *([s.hanging] if hang else []),
                *(f"{s.rss[n]:.0f}" for n in names),
            )
        )
    print(table([*headers, *names], rows))
    print("\nlateness (seconds; delivery by channel and route below the total)")
    print(table(["", "n", "p50", "p90", "p99", "max"], lateness(database)))
    with pg_connect(database) as conn:
        row = conn.execute(OVERDUE).fetchone()
    print(
        f"checkpoints due and not fired at the end (not in the lateness above):"
        f" {row[0] if row else 0:,}, the oldest due {row[1] if row and row[1] else 0:.0f} s ago"
    )
    print("\nnotifications by channel, route and state (at the end)")
    print(table(["channel via route", "state", "count"], notification_states(database)))
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
    print(
        f"\nCPU over the measured window ({span:.0f} s, {applied:,} events applied; % of one"
        " core, the machine has 2; PostgreSQL and Redis: the whole servers, other sessions'"
        " work too)"
    )
    headers = ["", "CPU", "CPU s", "CPU ms per applied event", "per accepted event"]
    print(table(headers, cpu_per_event(first, last)))
    if applied and first.pg and last.pg:
        print(
            "\nPostgreSQL's work per applied event over the window (pg_stat_database of the"
            " soak's database; pg_stat_statements is not loaded on this server)"
        )
        work = [
            (
                name,
                f"{last.pg[name] - first.pg[name]:,}",
                f"{(last.pg[name] - first.pg[name]) / applied:.2f}",
            )
            for name in PG_WORK
        ]
        print(table(["", "window", "per event"], work))


def arguments() -> argparse.Namespace:
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
    parser.add_argument(
        "--hang-channel",
        nargs="?",
        const="pager",
        default=None,
        metavar="CHANNEL",
        help="send CHANNEL (alone: pager, the desk policy's P1 pages) to a sink that accepts"
        " each request and never answers",
    )
    parser.add_argument(
        "--hang-rto",
        type=float,
        default=None,
        metavar="SECONDS",
        help="Apprise's read time-out for the hanging channel (default: Apprise's own, 4 s)",
    )
    parser.add_argument(
        "--analyze",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="ANALYZE the soak's database every SECONDS (rounded up to --sample), as autovacuum"
        " would: the shared server here runs with autovacuum off (default 0: never)",
    )
    parser.add_argument(
        "--max-queue",
        type=int,
        default=None,
        help="ESCALERA_INGEST_MAX_QUEUE: events waiting before ingest answers 503 (default:"
        " the service's, 100,000)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=2,
        help="the worker's pool processes, which fire and deliver (default 2, as escalera worker)",
    )
    overload_arguments(parser)
    return parser.parse_args()


def main() -> int:
    args = arguments()
    run = run_id()
    prefix = f"escalera-bench-{run}"
    policy, lives = POLICIES[args.policy]
    warmup = max(offset for _, steps in lives for offset, _, _ in steps) + 1
    phases = schedule(args, warmup)
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
            ("hanging channel", args.hang_channel or "none"),
            ("ANALYZE every", f"{args.analyze:g} s" if args.analyze else "never"),
            ("worker pool processes", args.concurrency),
            *([("phases (s after the load began: events/s)", _phases(phases))] if phases else []),
        ]
    )
    folder = Path(tempfile.mkdtemp(prefix="escalera-soak-"))
    (folder / "policies").mkdir()
    shutil.copy(policy, folder / "policies" / f"{args.policy}.yaml")  # its name: the file's
    sink: Sink = KeyedSink() if phases else CountingSink()
    port = free_port()
    hang = Hang(args.hang_channel, HangingSink(), args.hang_rto) if args.hang_channel else None
    metrics = {"worker": free_port(), "beat": free_port()}
    with fresh_database(f"escalera_bench_{run}") as url:
        database = url.rsplit("/", 1)[1]
        procs = start_system(
            url,
            prefix,
            folder,
            port,
            sink,
            policy=policy,
            metrics=metrics,
            hang=hang,
            max_queue=args.max_queue,
            concurrency=args.concurrency,
        )
        try:
            if not answers_within(f"http://127.0.0.1:{port}/readyz", procs["ingest"], 60):
                raise SystemExit("ingest did not become ready:\n" + tail(folder / "ingest.log"))
            time.sleep(3)  # the worker and beat finish starting
            window = (warmup, (phases[-1].end if phases else warmup + args.minutes * 60) - warmup)
            load = Load(
                port,
                lives,
                args.rate,
                window,
                run,
                batch=args.batch,
                patience=args.drain,
                phases=phases,
            )
            groups = cpu_groups(procs, database)
            sinks = (sink, hang.sink if hang else None)
            samples, activity = soak(
                args,
                load,
                prefix,
                sinks,
                procs,
                groups=groups,
                database=database,
                metrics=metrics,
            )
            firing = claims(metrics, database)
        finally:
            stop_all(procs.values())
            delete_prefix(prefix)
        report(load, samples, database, (sink, hang), firing)
        print(
            f"\nPostgreSQL: statements the soak's backends were running, {activity.samples:,}"
            f" samples every {ACTIVITY_EVERY_S} s over the measured window (pg_stat_activity;"
            " pg_stat_statements is not loaded on this server)"
        )
        print(table(["share", "samples", "statement (first 160 characters)"], activity.top()))
        met = True
        if phases and isinstance(sink, KeyedSink):
            run_ = overload_report.Run(
                database,
                load.began_at,
                phases,
                [Point(s.at, s.accepted, s.applied, s.events_queue, s.fire_queue) for s in samples],
                load.ids or set(),
                sink.keys,
                folder / "worker.log",
                firing.per_checkpoint,
            )
            title = f"soak --overload, {args.policy} policy: {_phases(phases)}"
            met = overload_report.report(run_, args.bucket, args.plot, title)
    shutil.rmtree(folder, ignore_errors=True)
    return 0 if met else 1


def overload_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "overload and recovery (--overload): --rate for the warm-up and --minutes, the overload"
        " rate for --overload-minutes, --rate again for --recovery-minutes; then judged"
    )
    group.add_argument(
        "--overload",
        type=float,
        nargs="?",
        const=0.0,
        default=None,
        metavar="RATE",
        help="events/s in the overload (alone: twice --rate)",
    )
    group.add_argument("--overload-minutes", type=float, default=2.0)
    group.add_argument(
        "--recovery-minutes",
        type=float,
        default=5.0,
        help="at --rate after the overload (default 5: the bar is recovery within 4)",
    )
    group.add_argument(
        "--bucket", type=float, default=10.0, help="seconds of due time per lateness bucket"
    )
    group.add_argument(
        "--plot", type=Path, default=None, metavar="FILE.png", help="queues and lateness over time"
    )


def schedule(args: argparse.Namespace, warmup: float) -> list[Phase] | None:
    """The overload's phases (None: no --overload, --rate throughout)."""
    if args.overload is None:
        return None
    return overload_phases(
        args.rate,
        args.overload if args.overload > 0 else 2 * args.rate,
        warmup=warmup,
        before=60 * args.minutes,
        overload=60 * args.overload_minutes,
        after=60 * args.recovery_minutes,
    )


def _phases(phases: list[Phase]) -> str:
    return ", ".join(f"{p.name} {p.start:.0f}-{p.end:.0f}: {p.rate:,.0f}" for p in phases)


if __name__ == "__main__":
    raise SystemExit(main())
