"""Escalera's three processes under the suite's control: started, killed with -9, restarted.

Each process runs in a session of its own, so a kill takes the Celery worker's pool children
down with it, as a crashed machine or container would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from shared.redis_keys import celery_prefix, queue_list
from tests.integration.processes import free_port
from tests.support import ROOT

TOKEN = "chaos-token"
ACK_SECRET = "chaos-ack-secret"  # every page carries a link to acknowledge it (`Acker` uses it)


class Process:
    """One command; `kill9` holds it down until `start`; an exit on its own is restarted by
    `supervise` (as systemd's ``Restart=always`` would) and counted in ``exits``."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], logs: Path) -> None:
        self.name, self.argv, self.env = name, argv, env
        self.log = logs / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.kills = self.exits = 0
        self.wanted = self.held = False
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            self.wanted, self.held = True, False
            if not self.alive:
                self._spawn()

    def supervise(self) -> None:
        with self._lock:
            if self.wanted and not self.held and self.proc is not None and not self.alive:
                self.exits += 1
                self._spawn()

    def _spawn(self) -> None:
        with self.log.open("a") as handle:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "worker.cli", *self.argv],
                cwd=ROOT,
                env=self.env,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill9(self) -> None:
        """SIGKILL to the process and all its children at once: no shutdown, no ack, nothing."""
        with self._lock:
            self.held = True
            if self.proc is not None and self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=20)
                self.kills += 1

    def stop(self) -> None:
        with self._lock:
            self.wanted = False
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=20)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class System:
    """ingest, worker and beat against a database URL, a Redis URL and the sinks' URLs."""

    def __init__(
        self,
        *,
        database_url: str,
        redis_url: str,
        policy_dir: Path,
        channels: dict[str, str],
        logs: Path,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.prefix = "chaos"
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "ESCALERA_REDIS_PREFIX": self.prefix,
            "ESCALERA_POLICY_DIR": str(policy_dir),
            "ESCALERA_DEFAULT_POLICY": "chaos",
            "ESCALERA_API_TOKENS": json.dumps([TOKEN]),
            "ESCALERA_PUBLIC_URL": self.base,
            "ESCALERA_ACK_SECRET": ACK_SECRET,
            **{f"ESCALERA_CHANNEL_{name.upper()}": url for name, url in channels.items()},
            **(extra_env or {}),
        }
        self.logs = logs
        self.procs = {
            "ingest": Process(
                "ingest", ["ingest", "--port", str(self.port), "--workers", "1"], self.env, logs
            ),
            "worker": Process("worker", ["worker", "--concurrency", "2"], self.env, logs),
            "beat": Process("beat", ["beat"], self.env, logs),
        }
        self._supervising = threading.Event()

    @property
    def events_queue_key(self) -> str:
        return queue_list(celery_prefix(self.prefix), "events")

    def start(self) -> None:
        for proc in self.procs.values():
            proc.start()
        self.wait_ready()
        threading.Thread(target=self._supervise, daemon=True).start()

    def _supervise(self) -> None:
        while not self._supervising.wait(1.0):
            for proc in self.procs.values():
                proc.supervise()

    def exits(self) -> dict[str, int]:
        """How often each process ended on its own (and was restarted)."""
        return {name: p.exits for name, p in self.procs.items() if p.exits}

    def stop(self) -> None:
        self._supervising.set()
        for proc in self.procs.values():
            proc.stop()

    def ensure_running(self) -> None:
        for proc in self.procs.values():
            if not proc.alive:
                proc.start()

    def pids(self) -> dict[str, int]:
        return {name: p.proc.pid for name, p in self.procs.items() if p.proc is not None}

    def wait_ready(self, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if any(p.proc is not None and not p.alive for p in self.procs.values()):
                break
            try:
                if httpx.get(f"{self.base}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        output = "\n".join(
            f"--- {f.name}\n{f.read_text()[-4000:]}" for f in self.logs.glob("*.log")
        )
        pytest.fail(f"the system did not become ready:\n{output}")
