"""Worker RSS with N armed checkpoints: is it flat between 1,000 and 1,000,000 timers?

For each N of ``--sizes`` (default 1,000 and 1,000,000), on a PostgreSQL database
``escalera_bench_rss_<run>_<n>`` this script creates, migrates and drops, and a PRIVATE
``redis-server`` on a free loopback port (stopped after each size):

1. N armed checkpoints are written straight into PostgreSQL (``fill_database`` of
   ``timers_bench.py``: server-side ``INSERT ... SELECT generate_series``, due over 30 days).
2. The real ``python -m worker.cli worker`` starts with its default options (prefork pool,
   concurrency 2, applier threads), with the environment ``_support.escalera_env`` builds. Once
   it logs "ready", its RSS is sampled: this is the worker before any reconcile.
3. The real ``python -m worker.cli beat`` starts. Beat sends ``escalera.reconcile_timers`` at
   start (``scheduler/beat.py`` ``setup_schedule``) and every minute (``beat_schedule``), so a
   pool child streams all N armed rows from PostgreSQL into the Redis timer index.
4. When the index holds N timers and the reconcile tasks the worker logged as succeeded have
   re-armed N in all (the minute's reconcile may overlap a long first one), the RSS of the
   worker's whole process tree and of beat is sampled ``--samples`` times over
   ``--sample-seconds``; the table shows the medians.

RSS is ``VmRSS`` of ``/proc/<pid>/status`` (main process, and the sum over its pool children);
"peak" sums ``VmHWM`` (each process's high-water mark, so the reconcile itself is included);
``PSS`` (``/proc/<pid>/smaps_rollup``) divides pages shared after fork between the processes
that share them, so it does not count them once per child as the RSS sum does.

Verdict (the largest N against the smallest): "flat" if the worker's total RSS after the
reconcile grows by at most ``max(10 % of the smallest N's, 15 MB)``. Exit 1 if not flat, 2 if
the run itself broke (a process died, the index never filled, a timeout).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from subprocess import Popen

# ``python bench/worker_rss_bench.py`` puts bench/ (not the repository root) on sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import (
    PrivateRedis,
    command_line,
    escalera_env,
    fresh_database,
    machine,
    pg_settings,
    print_kv,
    run_id,
    stop,
    table,
    tail,
    tree,
    wait_for,
)
from bench._support import (
    start as start_process,
)
from bench.timers_bench import fill_database
from shared.celery_app import RECONCILE_TIMERS
from shared.redis_keys import TimerKeys

FLAT_SHARE = 0.10
FLAT_MB = 15.0
_MB = 1024 * 1024
# Celery's own line for a finished task: "Task <name>[<id>] succeeded in 1.23s: 1000".
_SUCCEEDED = re.compile(
    rf"Task {re.escape(RECONCILE_TIMERS)}\[[^\]]+\] succeeded in ([0-9.]+)s: (\d+)"
)
# ``--gc-freeze`` (an experiment, not what ``escalera worker`` does): the same command line, but
# the main process moves every object it holds to the GC's permanent generation before the pool
# forks, so a full collection in a child does not write to (and copy) the pages it shares.
_GC_FREEZE = (
    "import gc, sys; from celery.signals import worker_init; "
    "worker_init.connect(lambda **_: gc.freeze(), weak=False); "
    "from worker.cli import main; sys.exit(main())"
)
_FAILED = re.compile(rf"Task {re.escape(RECONCILE_TIMERS)}\[[^\]]+\] raised")


# -- memory of a process tree from /proc ---------------------------------------------------------
def _kb(path: Path, field: str) -> int:
    """A ``<field>: <n> kB`` line of a /proc file, in bytes (0 if the process is gone)."""
    try:
        for line in path.read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@dataclass(frozen=True)
class Memory:
    """Memory of one process tree at one instant, in bytes."""

    main: int
    children: int
    pss: int
    peak: int
    processes: int

    @property
    def total(self) -> int:
        return self.main + self.children

    @classmethod
    def of(cls, pid: int) -> Memory:
        pids = tree(pid)
        rss = {p: _kb(Path(f"/proc/{p}/status"), "VmRSS") for p in pids}
        return cls(
            main=rss.get(pid, 0),
            children=sum(v for p, v in rss.items() if p != pid),
            pss=sum(_kb(Path(f"/proc/{p}/smaps_rollup"), "Pss") for p in pids),
            peak=sum(_kb(Path(f"/proc/{p}/status"), "VmHWM") for p in pids),
            processes=len(pids),
        )

    @staticmethod
    def median(samples: Sequence[Memory]) -> Memory:
        def mid(values: list[int]) -> int:
            return int(statistics.median(values))

        return Memory(
            main=mid([s.main for s in samples]),
            children=mid([s.children for s in samples]),
            pss=mid([s.pss for s in samples]),
            peak=max(s.peak for s in samples),
            processes=max(s.processes for s in samples),
        )


def sample(pids: Sequence[int], count: int, seconds: float) -> list[list[Memory]]:
    """``count`` samples of each tree, spread evenly over ``seconds``; one list per pid."""
    found: list[list[Memory]] = [[] for _ in pids]
    for i in range(count):
        for samples, pid in zip(found, pids, strict=True):
            samples.append(Memory.of(pid))
        if i < count - 1:
            time.sleep(seconds / max(count - 1, 1))
    return found


def mb(value: float) -> str:
    return f"{value / _MB:,.1f}"


# -- one size ------------------------------------------------------------------------------------
@dataclass
class Result:
    size: int
    timers: int
    fill_s: float
    until_full_s: float
    reconciles: list[tuple[float, int]]  # (seconds, timers re-armed) of each finished task
    start: Memory
    after: Memory
    beat: Memory


class Broken(RuntimeError):
    """The run itself broke (not a verdict on flatness)."""


def _wait_for(
    what: str, ready: Callable[[], bool], procs: dict[str, Popen[bytes]], timeout: float
) -> None:
    """Poll ``ready()`` every 0.5 s; fail if a process exits or ``timeout`` passes."""
    if wait_for(ready, time.time() + timeout, 0.5, procs=procs.values()):
        return
    for name, proc in procs.items():
        code = proc.poll()
        if code is not None:
            raise Broken(f"{name} exited with {code} while waiting for {what}")
    raise Broken(f"no {what} after {timeout:.0f} s")


def run_size(args: argparse.Namespace, run: str, size: int) -> Result:
    """Fresh database and redis-server, N armed rows, then `measure` the real processes."""
    prefix = f"escalera-bench-{run}-{size}"
    database = f"escalera_bench_rss_{run}_{size}"
    logs = {
        name: Path(tempfile.gettempdir()) / f"{prefix}-{name}.log" for name in ("worker", "beat")
    }
    print(f"\n== {size:,} armed checkpoints ==")
    with ExitStack() as stack:
        rds = PrivateRedis()
        stack.callback(rds.stop)
        url = stack.enter_context(fresh_database(database))
        tickets = max(1, -(-size // args.per_ticket))
        # due from an hour on: none falls due (and leaves the index) before it is full
        fill_s = fill_database(database, size, tickets, datetime.now(UTC) + timedelta(hours=1))
        print(
            f"  filled {database}: {size:,} armed rows under {tickets:,} tickets in {fill_s:.1f} s"
        )
        print(f"  private redis-server {rds.version} on 127.0.0.1:{rds.port} (pid {rds.proc.pid})")
        env = escalera_env(
            url, prefix, f"{prefix}-events", REDIS_URL=rds.url, ESCALERA_FIRE_QUEUE=f"{prefix}-fire"
        )
        try:
            due_key = TimerKeys.under(prefix).due
            result = measure(args, size, stack=stack, rds=rds, due_key=due_key, env=env, logs=logs)
        except Exception:
            for name, log in logs.items():
                print(f"  --- last lines of the {name} log ({log})")
                print(tail(log))
            raise
    for log in logs.values():
        log.unlink(missing_ok=True)
    result.fill_s = fill_s
    return result


def measure(
    args: argparse.Namespace,
    size: int,
    *,
    stack: ExitStack,
    rds: PrivateRedis,
    due_key: str,
    env: dict[str, str],
    logs: dict[str, Path],
) -> Result:
    """Worker alone (start samples), then beat; once every timer is re-armed, sample both."""
    command = [sys.executable, "-m", "worker.cli"]
    worker_command = [sys.executable, "-c", _GC_FREEZE] if args.gc_freeze else command
    worker = start_process([*worker_command, "worker"], env, logs["worker"])
    stack.callback(stop, worker)
    procs = {"worker": worker}

    def worker_log() -> str:
        return logs["worker"].read_text(errors="replace")

    _wait_for("worker ready", lambda: "ready" in worker_log(), procs, args.start_timeout)
    time.sleep(args.settle)
    (start_samples,) = sample([worker.pid], 3, 2.0)
    print(f"  worker pid {worker.pid} ready; sampled before any reconcile")

    beat = start_process([*command, "beat"], env, logs["beat"])
    stack.callback(stop, beat)
    procs["beat"] = beat
    began = time.monotonic()
    _wait_for(
        f"{size:,} timers in Redis",
        lambda: int(rds.client.zcard(due_key)) >= size,
        procs,
        args.timeout,
    )
    until_full_s = time.monotonic() - began

    def reconciled() -> bool:
        """Every reconcile that re-armed timers has finished (two may overlap)."""
        text = worker_log()
        if _FAILED.search(text):
            raise Broken("the reconcile task raised (see the worker log)")
        return sum(int(n) for _, n in _SUCCEEDED.findall(text)) >= size

    _wait_for("reconcile of every timer succeeded", reconciled, procs, args.timeout)
    print(
        f"  beat pid {beat.pid}: index full {until_full_s:.1f} s after beat started; "
        f"sampling {args.samples} times over {args.sample_seconds:.0f} s"
    )
    worker_samples, beat_samples = sample([worker.pid, beat.pid], args.samples, args.sample_seconds)
    for name, proc in procs.items():
        if proc.poll() is not None:
            raise Broken(f"{name} exited while being sampled")
    timers = int(rds.client.zcard(due_key))
    if timers != size:
        raise Broken(f"{timers:,} timers in Redis after the reconcile, not {size:,}")
    return Result(
        size=size,
        timers=timers,
        fill_s=0.0,
        until_full_s=until_full_s,
        reconciles=[(float(sec), int(n)) for sec, n in _SUCCEEDED.findall(worker_log())],
        start=Memory.median(start_samples),
        after=Memory.median(worker_samples),
        beat=Memory.median(beat_samples),
    )


# -- report --------------------------------------------------------------------------------------
def report(results: Sequence[Result]) -> bool:
    small, large = results[0], results[-1]

    def row(name: str, values: Sequence[float], shown: Callable[[float], str] = mb) -> list[str]:
        ratio = f"{values[-1] / values[0]:.3f}" if values[0] else "-"
        return [name, *(shown(v) for v in values), ratio]

    def memory(name: str, pick: Callable[[Result], float]) -> list[str]:
        return row(name, [pick(r) for r in results])

    rows = [
        row("timers in Redis", [r.timers for r in results], lambda v: f"{v:,.0f}"),
        row(
            "first reconcile task, s (Celery 'succeeded in')",
            [r.reconciles[0][0] for r in results],
            lambda v: f"{v:.2f}",
        ),
        memory("worker main RSS, start", lambda r: r.start.main),
        memory("worker main RSS, after", lambda r: r.after.main),
        memory("worker children RSS (sum), start", lambda r: r.start.children),
        memory("worker children RSS (sum), after", lambda r: r.after.children),
        memory("worker total RSS, start", lambda r: r.start.total),
        memory("worker total RSS, after", lambda r: r.after.total),
        memory("worker total PSS, start", lambda r: r.start.pss),
        memory("worker total PSS, after", lambda r: r.after.pss),
        memory("worker peak (sum of VmHWM), after", lambda r: r.after.peak),
        memory("beat RSS, after", lambda r: r.beat.total),
        row("worker processes", [r.after.processes for r in results], lambda v: f"{v:.0f}"),
    ]
    print("\n== worker and beat memory, MB (2^20 bytes) ==")
    headers = ["measure", *(f"N = {r.size:,}" for r in results)]
    print(table([*headers, f"ratio {large.size:,}/{small.size:,}"], rows))
    print(
        "  start = median of 3 samples 2 s apart once the worker is ready, before beat starts; "
        "after = median of the samples taken once the index is full and the reconcile tasks "
        "have re-armed every timer; peak = the highest VmHWM sum seen while sampling."
    )
    for r in results:
        tasks = ", ".join(f"{n:,} in {seconds:.2f} s" for seconds, n in r.reconciles)
        print(
            f"  N = {r.size:,}: PostgreSQL filled in {r.fill_s:.1f} s; index full "
            f"{r.until_full_s:.1f} s after beat started; reconcile tasks finished by the end of "
            f"sampling (re-armed in): {tasks}"
        )
    growth = large.after.total - small.after.total
    allowed = max(FLAT_SHARE * small.after.total, FLAT_MB * _MB)
    flat = growth <= allowed
    print(
        f"\nverdict: {'flat' if flat else 'NOT flat'}: worker total RSS after the reconcile, "
        f"{large.size:,} vs {small.size:,} timers: {mb(large.after.total)} vs "
        f"{mb(small.after.total)} MB, growth {mb(growth)} MB; rule: growth <= max("
        f"{FLAT_SHARE:.0%} of {mb(small.after.total)} MB, {FLAT_MB:.0f} MB) = {mb(allowed)} MB"
    )
    pss_growth = large.after.pss - small.after.pss
    print(
        f"  (informational, not the verdict: worker total PSS after, {mb(large.after.pss)} vs "
        f"{mb(small.after.pss)} MB, growth {mb(pss_growth)} MB; PSS also rises when a pool "
        "child writes to pages it shared with the main process since the fork)"
    )
    return flat


# -- main ----------------------------------------------------------------------------------------
def sizes(text: str) -> list[int]:
    try:
        found = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--sizes: {exc}") from exc
    if len(found) < 2 or any(n < 1 for n in found):
        raise argparse.ArgumentTypeError("--sizes: at least two positive sizes, e.g. 1000,1000000")
    return sorted(found)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--sizes",
        type=sizes,
        default=[1_000, 1_000_000],
        help="armed checkpoints, comma-separated; the smallest is the baseline (default "
        "1000,1000000)",
    )
    parser.add_argument("--per-ticket", type=int, default=500, help="checkpoints per ticket row")
    parser.add_argument("--samples", type=int, default=5, help="RSS samples after the reconcile")
    parser.add_argument("--sample-seconds", type=float, default=20.0, help="spread over, s")
    parser.add_argument("--settle", type=float, default=3.0, help="after 'ready', before sampling")
    parser.add_argument("--start-timeout", type=float, default=120.0, help="worker ready, s")
    parser.add_argument("--timeout", type=float, default=900.0, help="index full/reconciled, s")
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="experiment: gc.freeze() in the worker's main process before the pool forks "
        "(celery's worker_init signal); escalera worker does not do this",
    )
    args = parser.parse_args()
    run = run_id()
    print(f"command: {command_line()}")
    print("setup:")
    print_kv(
        [
            *machine(),
            ("postgres", pg_settings()),
            ("databases", f"escalera_bench_rss_{run}_<N> (one per size, dropped after)"),
            ("redis", "a private redis-server per size, free loopback port, no persistence"),
            (
                "processes",
                "python -m worker.cli worker (default options), python -m worker.cli beat",
            ),
            (
                "experiment",
                "--gc-freeze: worker started as python -c <gc.freeze() at worker_init; "
                "worker.cli.main()> worker"
                if args.gc_freeze
                else "none (the worker as escalera runs it)",
            ),
            ("sizes", ", ".join(f"{n:,}" for n in args.sizes)),
        ]
    )
    results = [run_size(args, run, n) for n in args.sizes]
    flat = report(results)
    print("cleanup: worker and beat stopped, private redis-servers stopped, databases dropped.")
    return 0 if flat else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(2)
    except Exception:  # the run itself broke (cleanup already ran): not a verdict
        traceback.print_exc()
        sys.exit(2)
