"""The Redis ``escalera up`` starts when ``REDIS_URL`` is not set: a private redis-server, else
fakeredis.

A redis-server on the PATH runs on a free local port with its data in ``data_dir`` (append-only
file, so queued events survive a restart) or, with no ``data_dir``, in memory. Without one,
fakeredis's TCP server stands in: in memory only, announced as not durable.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import redis

from shared.errors import EscaleraError
from worker.commands import children

READY_TIMEOUT_S = 20.0


@dataclass
class EmbeddedRedis:
    url: str
    description: str  # for the banner
    warning: str | None  # what the user must know: it is not durable
    child: children.Child


def start_redis(choice: str, data_dir: Path | None, log: IO[bytes]) -> EmbeddedRedis:
    """Start the chosen Redis (``auto``: redis-server if installed) and wait until it answers."""
    server = shutil.which("redis-server") if choice in ("auto", "redis-server") else None
    if choice == "redis-server" and server is None:
        raise EscaleraError("--redis redis-server: no redis-server on the PATH")
    port = free_port()
    if server is not None:
        argv = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        argv += ["--loglevel", "warning", "--daemonize", "no"]
        if data_dir is not None:
            data_dir.mkdir(parents=True, exist_ok=True)
            argv += ["--dir", str(data_dir.resolve()), "--appendonly", "yes"]
        else:
            argv += ["--appendonly", "no"]
        where = f"data in {data_dir}" if data_dir is not None else "in memory"
        description = f"a private redis-server on port {port} ({where})"
        warning = None
    else:
        _require_lua()
        argv = [sys.executable, "-m", "worker.commands.fakeredis_server", str(port)]
        description = f"fakeredis on port {port} (no redis-server on the PATH)"
        warning = (
            "fakeredis is in memory and NOT durable: events still queued are lost when it stops "
            "(the database keeps every ticket, and armed timers are re-armed from it). "
            "Install redis-server, or set REDIS_URL, for a durable queue."
        )
    url = f"redis://127.0.0.1:{port}/0"
    child = children.start("redis", argv, os.environ, log)
    _wait_until_answers(url, child)
    return EmbeddedRedis(url, description, warning, child)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _require_lua() -> None:
    if importlib.util.find_spec("lupa") is None:
        raise EscaleraError(
            "no redis-server on the PATH, and fakeredis cannot stand in without Lua: "
            "pip install 'fakeredis[lua]' (or install redis-server, or set REDIS_URL)"
        )


def _wait_until_answers(url: str, child: children.Child) -> None:
    client = redis.Redis.from_url(url, socket_timeout=1)
    deadline = time.monotonic() + READY_TIMEOUT_S
    try:
        while time.monotonic() < deadline and child.running():
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.1)
    finally:
        client.close()
    child.stop()
    raise EscaleraError(f"the embedded Redis ({url}) did not start: see the log")
