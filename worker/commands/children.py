"""The processes ``escalera up`` runs: started in a session of their own, stopped in order.

Each child gets its own session, so a Ctrl-C in the terminal reaches ``up`` alone and ``up``
stops the children one by one (the API first, Redis last). On Linux each child also gets
SIGTERM if ``up`` dies without stopping it, so none outlives it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO

STOP_TIMEOUT_S = 20.0
_PR_SET_PDEATHSIG = 1


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout_s``; its exit status."""
        if self.running():
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.process.wait()

    def reload(self) -> None:
        """SIGHUP: it reloads its policies (a worker passes the signal on to its pool)."""
        if self.running():
            self.process.send_signal(signal.SIGHUP)

    def kill(self) -> None:
        """SIGKILL to its whole process group: a worker's pool processes go with it."""
        with contextlib.suppress(ProcessLookupError):  # already gone
            os.killpg(self.process.pid, signal.SIGKILL)


def start(
    name: str,
    argv: Sequence[str],
    env: Mapping[str, str],
    log: IO[bytes],
    *,
    pass_fds: Sequence[int] = (),
) -> Child:
    """Start ``argv`` with its output appended to ``log``."""
    process = subprocess.Popen(
        list(argv),
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        pass_fds=tuple(pass_fds),
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509 - no threads yet
    )
    return Child(name, process)


def escalera(subcommand: Sequence[str]) -> list[str]:
    """The argv of an ``escalera`` subcommand in this interpreter."""
    return [sys.executable, "-m", "worker.cli", *subcommand]


def stop_all(children: Sequence[Child]) -> None:
    """In the given order, each one after the previous has exited."""
    for child in children:
        child.stop()


def reload_all(children: Sequence[Child]) -> None:
    """SIGHUP to each: each reloads its policies (each also watches the folder on its own)."""
    for child in children:
        child.reload()


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() == 1:  # the parent died before prctl: do not start at all
        os._exit(1)
