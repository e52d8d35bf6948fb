"""Escalera's real processes for end-to-end tests: started, awaited, stopped, logs kept."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support import ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running(
    commands: dict[str, list[str]], env: dict[str, str], logs: Path
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Run each ``escalera`` command (name -> arguments) until the block ends."""
    handles = {name: (logs / f"{name}.log").open("w") for name in commands}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "worker.cli", *argv],
            cwd=ROOT,
            env=env,
            stdout=handles[name],
            stderr=subprocess.STDOUT,
        )
        for name, argv in commands.items()
    ]
    try:
        yield procs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=20)
        for handle in handles.values():
            handle.close()


def wait_ready(base: str, procs: list[subprocess.Popen[bytes]], logs: Path) -> None:
    """Until /readyz answers 200; fail with every process's log if one dies or 90 s pass.

    Starting takes a few seconds alone; on a machine loaded by other jobs it took over 30.
    """
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            break
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    output = "\n".join(f"--- {f.name}\n{f.read_text()}" for f in logs.glob("*.log"))
    pytest.fail(f"the ingest service did not become ready:\n{output}")
