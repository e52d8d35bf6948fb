"""``escalera up``: ingest, worker and beat together on one machine, with nothing installed.

What is not configured is filled in: the database (``DATABASE_URL``, default a SQLite file),
Redis (``REDIS_URL``, default a private redis-server or fakeredis, `embedded_redis`), an API
token, and every policy channel without a URL prints to this terminal (``console://``), so
notifications are seen exactly as a channel receives them. ``--demo`` posts a morning of tickets
(`worker.demo.morning`) into a fresh database of its own. ``--policy`` chooses the policy in
force, a preset by name or a file (`worker.commands.policy_choice`). Ctrl-C stops everything,
in order.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

import redis
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from shared.config import settings
from shared.db.migrate import upgrade
from shared.errors import EscaleraError
from shared.integrations import BUNDLED, load_integrations
from shared.policy_routes import channel_env
from worker.commands import children
from worker.commands.embedded_redis import EmbeddedRedis, start_redis
from worker.commands.policy_choice import PolicyChoice, choose_policy, link_folder
from worker.demo.feed import run_feed
from worker.notify.console import CONSOLE_FD_ENV, SCHEME
from worker.notify.transport import scheme
from worker.policies.book import load_folder

HOME = Path(".escalera")  # up's own files, in the working directory
READY_TIMEOUT_S = 90.0  # for the API to answer at all (three processes importing at once)
UNREADY_GRACE_S = 15.0  # for the database and Redis to answer once it does


@dataclass
class Stack:
    """What ``up`` started, to stop in this order: the API first, Redis last."""

    processes: list[children.Child] = field(default_factory=list)
    redis: EmbeddedRedis | None = None

    def stop(self) -> None:
        children.stop_all(self._all())

    def kill(self) -> None:
        for child in self._all():
            child.kill()

    def _all(self) -> list[children.Child]:
        return [*self.processes, *([self.redis.child] if self.redis else [])]


class _Signals:
    """Ctrl-C and SIGTERM ask ``up`` to stop; a second one kills what is still running.
    Outside a terminal, SIGHUP is passed on: each process reloads its policies
    (docs/operations.md); in one it stays the hang-up of a closed window."""

    def __init__(self, stack: Stack) -> None:
        self.stop = threading.Event()
        self._stack = stack
        self._before = {
            number: signal.signal(number, self._handle)
            for number in (signal.SIGINT, signal.SIGTERM)
        }
        if not sys.stdout.isatty():  # in a terminal, SIGHUP is the window closing: stop
            self._before[signal.SIGHUP] = signal.signal(signal.SIGHUP, self._reload)

    def _reload(self, _signum: int, _frame: FrameType | None) -> None:
        children.reload_all(self._stack.processes)

    def restore(self) -> None:
        for number, handler in self._before.items():
            signal.signal(number, handler)

    def _handle(self, _signum: int, _frame: FrameType | None) -> None:
        if self.stop.is_set():
            self._stack.kill()
        self.stop.set()


def up_command(args: argparse.Namespace) -> int:
    _port_is_free(args.port)
    choice = _chosen_policy(args.policy)
    HOME.mkdir(exist_ok=True)
    if choice is not None:
        _put_in_force(choice)
    demo_dir = _demo_dir() if args.demo and not _env("DATABASE_URL") else None
    if demo_dir is not None:
        os.environ["DATABASE_URL"] = f"sqlite:///{(demo_dir / 'escalera.db').resolve()}"
    log_path = HOME / "up.log"
    log_path.write_bytes(b"")
    stack = Stack()
    with log_path.open("ab") as log:  # appending: every child writes to it
        signals = _Signals(stack)
        try:
            return _run(args, signals, stack, log=log, log_path=log_path, demo_dir=demo_dir)
        finally:
            stack.stop()
            signals.restore()
            _say("escalera up: stopped.")


def _run(
    args: argparse.Namespace,
    signals: _Signals,
    stack: Stack,
    *,
    log: IO[bytes],
    log_path: Path,
    demo_dir: Path | None,
) -> int:
    if not _env("REDIS_URL"):
        data_dir = None if demo_dir is not None else HOME / "redis"
        stack.redis = start_redis(args.redis, data_dir, log)
        os.environ["REDIS_URL"] = stack.redis.url
    else:
        _redis_answers(_env("REDIS_URL") or "")
    api = f"http://127.0.0.1:{args.port}"
    token, token_shown = _api_token()
    console = _console_channels()
    if not (os.environ.get("ESCALERA_PUBLIC_URL") or os.environ.get("ESCALERA_ACK_SECRET")):
        os.environ["ESCALERA_PUBLIC_URL"] = api  # so a page's acknowledgement link works here
        os.environ["ESCALERA_ACK_SECRET"] = secrets.token_urlsafe(24)
    if not os.environ.get("ESCALERA_INTEGRATIONS") and BUNDLED.exists():
        os.environ["ESCALERA_INTEGRATIONS"] = str(BUNDLED)  # every portal mapped as documented
    settings.cache_clear()
    config = settings()
    load_integrations(config.integrations)  # a file that does not validate stops us here
    try:
        upgrade(config.database_url)
    except OperationalError as exc:
        raise EscaleraError(
            f"the database {_shown(config.database_url)} does not answer ({exc.orig}): start it, "
            "or unset DATABASE_URL for a SQLite file"
        ) from exc
    terminal = os.dup(sys.stdout.fileno())  # the worker writes console notifications here
    os.environ[CONSOLE_FD_ENV] = str(terminal)
    for name, argv in (
        ("worker", ["worker", "--concurrency", str(args.concurrency)]),
        ("beat", ["beat"]),
        ("ingest", ["ingest", "--port", str(args.port), "--workers", "1"]),
    ):
        fds = [terminal] if name == "worker" else []
        stack.processes.insert(
            0, children.start(name, children.escalera(argv), os.environ, log, pass_fds=fds)
        )
    os.close(terminal)
    problem = _wait_ready(api, stack, signals.stop)
    if signals.stop.is_set():
        return 0
    if problem is not None:
        _failed(problem, log_path)
        return 1
    _banner(
        api,
        token=token if token_shown else None,
        channels=console,
        embedded=stack.redis,
        log_path=log_path,
        demo_dir=demo_dir,
    )
    if args.demo:
        tag = "" if demo_dir is not None else f"-{secrets.token_hex(2)}"
        feed = threading.Thread(
            target=run_feed, args=(api, token, signals.stop, _say), kwargs={"tag": tag}, daemon=True
        )
        feed.start()
    while not signals.stop.wait(0.5):
        dead = [child.name for child in stack.processes if not child.running()]
        if dead:
            _failed(f"{', '.join(dead)} exited", log_path)
            return 1
    _say("escalera up: stopping…")
    return 0


def _env(name: str) -> str | None:
    return os.environ.get(name) or os.environ.get(f"ESCALERA_{name}")


def _shown(url: str) -> str:
    """A URL as it may be printed: without its password."""
    return make_url(url).render_as_string(hide_password=True)


def _redis_answers(url: str) -> None:
    client = redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise EscaleraError(
            f"REDIS_URL {_shown(url)} does not answer ({exc}): start it, or unset REDIS_URL for "
            "a Redis of escalera up's own"
        ) from exc
    finally:
        client.close()


def _chosen_policy(policy: str | None) -> PolicyChoice | None:
    """``--policy``, validated before anything starts (a bad one stops ``up``, naming it)."""
    if policy is None:
        return None
    settings.cache_clear()
    return choose_policy(policy, settings().policy_dir)


def _put_in_force(choice: PolicyChoice) -> None:
    """The settings every process reads: the chosen policy is the default one, and a file from
    elsewhere is in a policy folder of ``up``'s own, beside the configured folder's policies."""
    if not choice.in_folder:
        folder = link_folder(choice, settings().policy_dir, HOME / "policies")
        os.environ["ESCALERA_POLICY_DIR"] = str(folder.resolve())
    os.environ["ESCALERA_DEFAULT_POLICY"] = choice.name


def _demo_dir() -> Path:
    """A fresh database for each demo, so its tickets start from nothing every time."""
    folder = HOME / "demo"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def _port_is_free(port: int) -> None:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise EscaleraError(
                f"port {port} is taken ({exc.strerror}): choose another with --port"
            ) from exc


def _api_token() -> tuple[str, bool]:
    """The token the demo feed and the user's curl use; shown only if ``up`` made it up.

    A legacy token (`ESCALERA_API_TOKENS`): it writes source ``api``, reads and acknowledges.
    """
    configured = json.loads(os.environ.get("ESCALERA_API_TOKENS") or "[]")
    if configured:
        return str(configured[0]), False
    token = secrets.token_urlsafe(16)
    os.environ["ESCALERA_API_TOKENS"] = json.dumps([token])
    return token, True


def _console_channels() -> dict[str, str]:
    """Channels without a URL print here (in every policy). For the banner: the channels of the
    policies in use, and where each goes."""
    settings.cache_clear()
    config = settings()
    policies = load_folder(config.policy_dir)
    for loaded in policies.values():
        for name in loaded.policy.channels:
            if not os.environ.get(channel_env(name)):
                os.environ[channel_env(name)] = f"{SCHEME}://{name}"
    where: dict[str, str] = {}
    for policy in dict.fromkeys([config.default_policy, *config.source_policies.values()]):
        for name in policies[policy].policy.channels if policy in policies else ():
            url = os.environ[channel_env(name)]
            where[name] = "this terminal" if scheme(url) == SCHEME else f"{scheme(url)}://…"
    return where


def _wait_ready(api: str, stack: Stack, stop: threading.Event) -> str | None:
    """None once the API is ready (database and Redis answer); else what went wrong."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    last = "it did not answer"
    while time.monotonic() < deadline and not stop.is_set():
        dead = [child.name for child in stack.processes if not child.running()]
        if dead:
            return f"{', '.join(dead)} exited"
        try:
            with urllib.request.urlopen(f"{api}/readyz", timeout=2):
                return None
        except urllib.error.HTTPError as exc:  # 503: its checks say which service does not answer
            last = f"{api}/readyz answered {exc.code} {exc.read().decode(errors='replace')}"
            deadline = min(deadline, time.monotonic() + UNREADY_GRACE_S)
        except OSError:
            pass
        stop.wait(0.3)
    return "stopped" if stop.is_set() else f"the API is not ready: {last}"


def _failed(problem: str, log_path: Path, lines: int = 20) -> None:
    """Say what failed under the end of the children's log, where the reason usually is."""
    tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])
    _say(f"{tail}\nescalera up: {problem}. Above: the end of {log_path}.")


def _banner(
    api: str,
    *,
    token: str | None,
    channels: dict[str, str],
    embedded: EmbeddedRedis | None,
    log_path: Path,
    demo_dir: Path | None,
) -> None:
    config = settings()
    database = _shown(config.database_url)
    if demo_dir is not None:
        database += " (a fresh one for each --demo)"
    queue = embedded.description if embedded else _shown(config.redis_url)
    policy_file = (config.policy_dir / f"{config.default_policy}.yaml").resolve()  # not up's link
    rows = [
        ("API", f"{api}  (docs: {api}/docs)"),
        ("token", token if token else "the first of ESCALERA_API_TOKENS"),
        ("policy", f"{config.default_policy}  ({policy_file})"),
        ("integrations", str(config.integrations or "none: every portal maps by default")),
        ("database", database),
        ("redis", queue),
        *((f"#{name}", where) for name, where in channels.items()),
        ("logs", str(log_path)),
    ]
    lines = ["", "Escalera is up. Ctrl-C stops it.", ""]
    lines += [f"  {label:<16}{value}" for label, value in rows]
    if embedded is not None and embedded.warning:
        lines += [
            "",
            textwrap.fill(embedded.warning, 96, initial_indent="  ", subsequent_indent="  "),
        ]
    ticket = "api/MX-1002" if demo_dir is not None else "SOURCE/TICKET_ID"
    bearer = token if token else "$TOKEN"
    lines += [
        "",
        f"  A ticket's SLA:  curl -H 'Authorization: Bearer {bearer}' {api}/v1/tickets/{ticket}",
    ]
    lines += ["", "Notifications follow as they fall due.", ""]
    lines += [f"The desk in a browser (sign in with the token): open {api}/", ""]
    _say("\n".join(lines))


def _say(text: str) -> None:
    print(text, flush=True)
