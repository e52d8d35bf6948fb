"""Shared by the benchmarks: services, processes (start, wait, stop), CPU, memory, workload.

Everything a benchmark creates is named ``escalera_bench_<run>`` (PostgreSQL databases) or
``escalera-bench-<run>`` (Redis key prefix, Celery queue), so cleanup can never touch anything
else; every helper that creates something returns what is needed to remove it.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis

from shared.db.migrate import upgrade
from shared.redis_keys import celery_prefix, queue_list

ROOT = Path(__file__).resolve().parent.parent
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
REDIS_URL = "redis://127.0.0.1:6379/0"
PRESETS = ROOT / "deploy" / "policies"
POLICY = "soporte-completo"
TOKEN = "bench-token"
_TICK = os.sysconf("SC_CLK_TCK")


def run_id() -> str:
    return uuid.uuid4().hex[:8]


def command_line() -> str:
    return shlex.join([Path(sys.executable).name, *sys.argv])


def machine() -> list[tuple[str, str]]:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        ("machine", f"{os.cpu_count()} cores ({model}), {platform.system()} {platform.release()}"),
        ("python", f"{platform.python_version()} ({sys.executable})"),
        ("load average at start", load),
    ]


def print_kv(rows: Iterable[tuple[str, str]]) -> None:
    rows = list(rows)
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain text table: first column left-aligned, the others right-aligned."""
    cells = [[str(c) for c in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        pairs = enumerate(zip(row, widths, strict=True))
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in pairs)

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted sequence."""
    if not sorted_values:
        return float("nan")
    rank = max(1, round(pct / 100 * len(sorted_values) + 0.5 - 1e-9))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


# -- PostgreSQL ----------------------------------------------------------------------------------
def pg_url(database: str) -> str:
    return f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"


def pg_connect(
    database: str, *, autocommit: bool = True, host: str = PG_HOST, port: int = PG_PORT
) -> psycopg.Connection[Any]:
    """A connection to ``database`` on the shared server (or on ``host``:``port``)."""
    return psycopg.connect(
        host=host,
        port=port,
        user=PG_USER,
        dbname=database,
        autocommit=autocommit,
        connect_timeout=5,
    )


def pg_settings() -> str:
    with pg_connect("template1") as conn:
        version = conn.execute("SHOW server_version").fetchone()
        names = ("fsync", "synchronous_commit", "shared_buffers")
        values = [conn.execute(f"SHOW {n}").fetchone() for n in names]
    shown = ", ".join(f"{n}={v[0] if v else '?'}" for n, v in zip(names, values, strict=True))
    return f"PostgreSQL {version[0] if version else '?'} at {PG_HOST}:{PG_PORT} ({shown})"


@contextmanager
def fresh_database(name: str, *, migrate: bool = True) -> Iterator[str]:
    """Create ``name`` (must start with escalera_bench_), migrate it, yield its URL, drop it."""
    assert name.startswith("escalera_bench_"), name
    with pg_connect("template1") as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = pg_url(name)
        if migrate:
            upgrade(url)
        yield url
    finally:
        with pg_connect("template1") as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- Redis ---------------------------------------------------------------------------------------
def redis_client() -> redis.Redis:
    return redis.Redis.from_url(REDIS_URL, socket_timeout=5)


def redis_version() -> str:
    info = redis_client().info("server")
    return f"Redis {info.get('redis_version')} at {REDIS_URL} (pid {info.get('process_id')})"


def redis_pid() -> int | None:
    pid = redis_client().info("server").get("process_id")
    return int(pid) if pid and Path(f"/proc/{pid}/stat").exists() else None


def queue_key(prefix: str, queue: str) -> str:
    """Where Celery's queue list lives: `shared.redis_keys`, under kombu's ``global_keyprefix``."""
    return queue_list(celery_prefix(prefix), queue)


def delete_prefix(prefix: str) -> int:
    """Delete every key starting with ``prefix`` (never anything else); returns how many."""
    assert prefix.startswith("escalera-bench-"), prefix
    client, deleted = redis_client(), 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        batch.append(key)
        if len(batch) >= 500:
            deleted += int(client.unlink(*batch))
            batch = []
    if batch:
        deleted += int(client.unlink(*batch))
    return deleted


# -- processes -----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def escalera_env(database_url: str, prefix: str, queue: str, **extra: str) -> dict[str, str]:
    """The process environment with only our settings (inherited ESCALERA_* are dropped)."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("ESCALERA_") and k not in {"DATABASE_URL", "REDIS_URL"}
    }
    return {
        **base,
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "ESCALERA_REDIS_PREFIX": prefix,
        "ESCALERA_EVENTS_QUEUE": queue,
        "ESCALERA_POLICY_DIR": str(PRESETS),
        "ESCALERA_DEFAULT_POLICY": POLICY,
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


_PR_SET_PDEATHSIG = 1
_PRCTL = getattr(ctypes.CDLL(None), "prctl", None)  # looked up here: the child only calls it


def _die_with_parent(parent: int) -> Callable[[], None]:
    """For the child before exec: SIGTERM when the benchmark that started it dies (Linux), so a
    benchmark killed mid-run leaves no service behind. The signal follows the starting thread:
    benchmarks start their services from the main thread."""

    def arrange() -> None:
        if _PRCTL is not None:
            _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the benchmark died before the call: do not outlive it
            os.kill(os.getpid(), signal.SIGTERM)

    return arrange


def start(args: Sequence[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start a process in a session of its own (so its children can be stopped with it); it
    is sent SIGTERM if the benchmark dies first."""
    with log.open("ab") as handle:
        return subprocess.Popen(
            list(args),
            cwd=ROOT,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent(os.getpid()),  # noqa: PLW1509 - no threads run Python in the child
        )


def stop(proc: subprocess.Popen[Any], *, grace: float = 20.0) -> None:
    """SIGTERM the process (it stops its own children), then SIGKILL its process group."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    # Whatever is left of the group we started (a child that outlived its parent): kill it.
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.wait(timeout=5)


def stop_all(procs: Iterable[subprocess.Popen[Any]]) -> None:
    """`stop` each process in turn (a list may still grow after it is handed to a cleanup)."""
    for proc in procs:
        stop(proc)


def wait_for(
    condition: Callable[[], object],
    deadline: float,
    every: float = 0.1,
    *,
    procs: Collection[subprocess.Popen[Any]] = (),
) -> bool:
    """Whether ``condition()`` holds by ``deadline`` (a ``time.time()`` instant): asked every
    ``every`` s, and once more at the end; gives up early when one of ``procs`` has exited."""
    while time.time() < deadline and all(proc.poll() is None for proc in procs):
        if condition():
            return True
        time.sleep(every)
    return bool(condition())


def answers_within(url: str, proc: subprocess.Popen[Any], seconds: float = 40.0) -> bool:
    """Whether ``url`` answers 200 before ``seconds`` pass or ``proc`` exits."""

    def answers() -> bool:
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    return wait_for(answers, time.time() + seconds, 0.2, procs=[proc])


def start_workers(
    procs: list[subprocess.Popen[bytes]],
    count: int,
    *,
    concurrency: int,
    queue: str,
    env: dict[str, str],
    prefix: str,
) -> list[Path]:
    """Start ``count`` real ``worker.cli worker`` processes on ``queue`` (appended to ``procs``
    as they start, so a caller's cleanup stops those already running); their log files."""
    logs = [Path(tempfile.gettempdir()) / f"{prefix}-worker{i}.log" for i in range(count)]
    command = [sys.executable, "-m", "worker.cli", "worker", "--queues", queue]
    for log in logs:
        procs.append(start([*command, "--concurrency", str(concurrency)], env, log))
    return logs


def workers_ready(
    logs: Sequence[Path], procs: Collection[subprocess.Popen[Any]], seconds: float
) -> bool:
    """Whether every worker logged Celery's "ready" within ``seconds``, none exiting first."""
    return wait_for(
        lambda: all("ready" in log.read_text(errors="replace") for log in logs),
        time.time() + seconds,
        0.2,
        procs=procs,
    )


class PrivateRedis:
    """A ``redis-server`` of our own on a free loopback port, no persistence; started with
    `start` (so it dies with the benchmark), stopped with `stop`.

    ``folder`` is its working directory (the temporary one by default), ``log`` where its output
    goes (discarded by default); ``replica_of``: the port of a primary it replicates. ``host``,
    ``port`` and ``wrap`` (a command prefix, such as ``ip netns exec NAME``) start it elsewhere:
    in a network namespace of its own, listening on that namespace's address.
    """

    def __init__(
        self,
        *,
        folder: Path | None = None,
        log: Path = Path(os.devnull),
        replica_of: int | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        wrap: Sequence[str] = (),
    ) -> None:
        self.port = port or free_port()
        folder = folder or Path(tempfile.gettempdir())
        command = [*wrap, "redis-server", "--port", str(self.port), "--bind", host]
        command += ["--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", str(folder)]
        command += ["--dbfilename", f"escalera-bench-redis-{self.port}.rdb"]
        if host != "127.0.0.1":  # reached over a private bridge: no password, as on loopback
            command += ["--protected-mode", "no"]
        if replica_of is not None:
            command += ["--replicaof", "127.0.0.1", str(replica_of)]
        self.proc = start(command, dict(os.environ), log)
        self.url = f"redis://{host}:{self.port}/0"
        self.client = redis.Redis.from_url(self.url, socket_timeout=60)

        def answers() -> bool:
            try:
                return bool(self.client.ping())
            except redis.ConnectionError:
                return False

        if not wait_for(answers, time.time() + 10, 0.05, procs=[self.proc]):
            self.stop()
            raise RuntimeError(f"redis-server did not answer on {host}:{self.port}")
        self.version = str(self.client.info("server").get("redis_version"))

    def cpu_seconds(self) -> float:
        cpu = self.client.info("cpu")
        return float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"])

    def used_memory(self) -> int:
        return int(self.client.info("memory")["used_memory"])

    def stop(self) -> None:
        stop(self.proc, grace=10)


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# -- CPU accounting from /proc -------------------------------------------------------------------
def _stat(pid: int) -> tuple[int, float, float] | None:
    """(parent pid, own CPU seconds, CPU seconds of its reaped children) of a live process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    own = (int(fields[11]) + int(fields[12])) / _TICK
    reaped = (int(fields[13]) + int(fields[14])) / _TICK
    return int(fields[1]), own, reaped


def tree(pid: int) -> list[int]:
    """``pid`` and all its live descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                children.setdefault(stat[0], []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def rss_mib(pid: int) -> float:
    """Resident memory (VmRSS) of a process and its live descendants, in MiB (0 if gone)."""
    total = 0
    for member in tree(pid):
        with suppress(OSError):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


@dataclass(frozen=True)
class Tree:
    """A process and its descendants as they are at each sample (backends come and go)."""

    root: int


@dataclass(frozen=True)
class Backends:
    """The PostgreSQL backends serving one database (their process title names it), on a server
    other work shares. Each backend's CPU is kept as last seen, so one that exits between two
    samples keeps what it had used then (a pool's backends live as long as the pool)."""

    database: str
    seen: dict[int, float] = field(default_factory=dict, compare=False)

    def cpu_seconds(self) -> float:
        marker = f" {self.database} ".encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                title = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if title.startswith(b"postgres: ") and marker in title:
                stat = _stat(int(entry.name))
                if stat is not None:
                    self.seen[int(entry.name)] = stat[1]
        return sum(self.seen.values())


def cpu_seconds(group: Iterable[int] | Tree | Backends) -> float:
    """CPU seconds used so far by a list of processes, by a whole tree (reaped ones too), or by
    the backends of a database."""
    if isinstance(group, Backends):
        return group.cpu_seconds()
    if isinstance(group, Tree):
        stats = [s for s in (_stat(p) for p in tree(group.root)) if s is not None]
        return sum(own + reaped for _, own, reaped in stats)
    return sum(s[1] for s in (_stat(p) for p in group) if s is not None)


MACHINE = "machine"  # a CpuSample group name: every process on the machine (/proc/stat)


def machine_cpu_seconds() -> float:
    """CPU seconds the whole machine has been busy (all cores, every process)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / _TICK


@dataclass
class CpuSample:
    """CPU seconds of named groups of processes at one instant."""

    at: float
    seconds: dict[str, float]

    @classmethod
    def take(cls, groups: Mapping[str, list[int] | Tree | Backends]) -> CpuSample:
        """The groups' CPU seconds, and the whole machine's under the name ``MACHINE``."""
        seconds = {name: cpu_seconds(p) for name, p in groups.items()}
        return cls(time.monotonic(), {**seconds, MACHINE: machine_cpu_seconds()})

    def percent_since(self, earlier: CpuSample) -> dict[str, float]:
        """Average use of each group between two samples, in % of one core."""
        wall = self.at - earlier.at
        return {
            name: 100 * (self.seconds[name] - earlier.seconds[name]) / wall for name in self.seconds
        }


def postgres_tree(database: str) -> Tree | None:
    """The PostgreSQL server's processes (postmaster, every backend), if visible in /proc."""
    with pg_connect(database) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        stat = _stat(int(row[0])) if row else None
    return Tree(stat[0]) if stat is not None else None


# -- HTTP load ----------------------------------------------------------------------------------
_CONTENT_LENGTH = re.compile(rb"content-length:\s*(\d+)")
_RETRY_AFTER = re.compile(rb"\r\nretry-after:\s*(\d+)")


class RawHttp:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1 (or ``host``), hand-rolled: the cheapest
    client we can write, so the load generator takes as little as possible of the machine it
    measures."""

    def __init__(self, port: int, token: str = TOKEN, host: str = "127.0.0.1") -> None:
        self.port, self.host = port, host
        self._head = (
            f" HTTP/1.1\r\nhost: {host}:{port}\r\nauthorization: Bearer {token}\r\n"
            "content-type: application/json\r\ncontent-length: %d\r\n\r\n"
        )
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self.head = b""  # the last answer's status line and headers, lower case

    async def request(
        self, line: bytes, body: bytes = b"", timeout: float = 30.0
    ) -> tuple[int, bytes]:
        """(status, body) of one request; ``line`` is ``b"POST /v1/events"``, say.

        A kept-alive connection the server has closed meanwhile (uvicorn closes idle ones
        after 5 s) fails before any byte of the answer: the request is sent again once on a
        new connection. Raises ``TimeoutError`` (an ``OSError``) after ``timeout`` seconds.
        """
        reused = self._streams is not None
        try:
            return await asyncio.wait_for(self._exchange(line, body), timeout)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            self.close()
            nothing_back = not isinstance(exc, asyncio.IncompleteReadError) or not exc.partial
            if not (reused and nothing_back):
                raise
        return await asyncio.wait_for(self._exchange(line, body), timeout)

    async def _exchange(self, line: bytes, body: bytes) -> tuple[int, bytes]:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._streams
        writer.write(line + (self._head % len(body)).encode() + body)
        answer = self.head = (await reader.readuntil(b"\r\n\r\n")).lower()
        match = _CONTENT_LENGTH.search(answer)
        if match is None:
            raise ConnectionError(f"no content-length in {answer!r}")
        payload = await reader.readexactly(int(match.group(1)))
        if b"\r\nconnection: close" in answer:
            self.close()
        return int(answer[9:12]), payload

    def retry_after(self, default: float) -> float:
        """The last answer's ``Retry-After`` in seconds, or ``default`` if it had none."""
        match = _RETRY_AFTER.search(self.head)
        return float(match.group(1)) if match else default

    def close(self) -> None:
        """Close the connection (the next request opens a new one)."""
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


# -- py-spy --------------------------------------------------------------------------------------
def py_spy() -> str | None:
    found = Path(sys.executable).parent / "py-spy"
    return str(found) if found.exists() else shutil.which("py-spy")


def spy_stacks(raw: str) -> Iterator[tuple[list[str], int]]:
    """(frames root first, samples) of each line of py-spy's ``--format raw`` output."""
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            yield stack.split(";"), int(count)


def classify(
    raw: str,
    categories: Sequence[tuple[str, str]],
    *,
    keep: Callable[[list[str]], bool] | None = None,
) -> tuple[int, list[tuple[str, float]], list[tuple[str, float]]]:
    """Samples, the share of each category and the top leaf frames of a py-spy raw profile.

    A sample belongs to the category of the deepest frame of its stack that matches one of the
    patterns (the later category wins on the same frame); stacks ``keep`` refuses are dropped.
    """
    counts: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for frames, n in spy_stacks(raw):
        if keep is not None and not keep(frames):
            continue
        total += n
        found = "other"
        for frame in frames:
            for name, pattern in categories:
                if re.search(pattern, frame):
                    found = name
        counts[found] += n
        leaves[frames[-1]] += n
    if not total:
        return 0, [], []
    shares = [(name, 100 * n / total) for name, n in counts.most_common()]
    top = [(frame, 100 * n / total) for frame, n in leaves.most_common(12)]
    return total, shares, top


# -- the workload: realistic lives of tickets ----------------------------------------------------
_PRIORITIES = ("Alto", "Crítico", "Normal", "high", "critical", "medium")
_CUSTOMERS = ("farmacias-del-norte", "transportes-sol", "colegio-san-luis", "banco-demo")


def ticket_life(
    ticket: str, start: datetime, seed: int, source: str = "api"
) -> list[dict[str, Any]]:
    """Ten canonical events of one ticket, in the order a desk would send them.

    created, the agent acknowledges (first response), the customer answers, the ticket is
    opened, the agent asks for details and it goes pending (clocks pause), the customer replies,
    back to open, the priority is raised, the agent updates the customer, resolved.
    """

    def event(n: int, kind: str, minutes: int, **fields: Any) -> dict[str, Any]:
        return {
            "event_id": f"{ticket}-e{n}",
            "source": source,
            "ticket_id": ticket,
            "type": kind,
            "occurred_at": (start + timedelta(minutes=minutes)).isoformat(),
            **fields,
        }

    return [
        event(
            1,
            "created",
            0,
            priority=_PRIORITIES[seed % len(_PRIORITIES)],
            customer=_CUSTOMERS[seed % len(_CUSTOMERS)],
            requester=f"user{seed}@example.com",
            status="new",
        ),
        event(2, "agent_replied", 12 + seed % 10),
        event(3, "customer_replied", 40),
        event(4, "status_changed", 55, status="open"),
        event(5, "status_changed", 72, status="pending"),
        event(6, "customer_replied", 150),
        event(7, "status_changed", 151, status="open"),
        event(8, "priority_changed", 155, priority="Crítico"),
        event(9, "agent_replied", 170),
        event(10, "resolved", 200),
    ]


def fmt_rate(value: float) -> str:
    return f"{value:,.0f}"


def fmt_ms(value: float) -> str:
    return f"{value:.1f}" if value < 100 else f"{value:,.0f}"
