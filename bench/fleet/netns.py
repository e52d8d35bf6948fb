"""Network namespaces joined by a bridge: separate "machines" on one box, for the fleet bench.

`Network` (a context manager, root only) creates a bridge in the root namespace holding
``<subnet>.1/24``, and for each name a namespace with a veth pair: one end in the bridge, the
other in the namespace with ``<subnet>.<10 + i>/24`` and a default route through the bridge. A
process started with `Network.wrap(name)` in front of its command line runs in that namespace:
its 127.0.0.1 is its own, and it reaches the others (and the root namespace, at the bridge's
address) only over the bridge, as separate machines reach each other over a network.

On leaving (normally, on an exception, on Ctrl-C) every process still in a namespace is killed
and the namespaces, veths and bridge are deleted. Every name carries the run's id, so two runs
never share anything, and cleanup never touches what another run created.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from contextlib import suppress
from types import TracebackType


def _ip(*args: str, check: bool = True) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


class Network:
    """Namespaces ``names`` on a bridge, ``<subnet>.0/24`` (``subnet``: the first three octets)."""

    def __init__(self, run: str, names: Sequence[str], subnet: str = "10.77.0") -> None:
        if os.geteuid() != 0:
            raise SystemExit("network namespaces need root")
        self.run, self.names, self.subnet = run, list(names), subnet
        self.bridge = f"esf{run[:6]}br"  # interface names: at most 15 characters
        self.gateway = f"{subnet}.1"
        self.address = {name: f"{subnet}.{10 + i}" for i, name in enumerate(self.names)}
        self.namespace = {name: f"escalera-fleet-{run}-{name}" for name in self.names}
        self._made: list[str] = []  # namespaces created, for cleanup

    def wrap(self, name: str) -> list[str]:
        """The command prefix that runs a program in namespace ``name``."""
        return ["ip", "netns", "exec", self.namespace[name]]

    def __enter__(self) -> Network:
        try:
            self._create()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _create(self) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for i, name in enumerate(self.names):
            namespace, outside, inside = self.namespace[name], f"esf{self.run[:6]}{i}h", "eth0"
            _ip("netns", "add", namespace)
            self._made.append(namespace)
            _ip("link", "add", outside, "type", "veth", "peer", "name", f"esf{self.run[:6]}{i}n")
            _ip("link", "set", f"esf{self.run[:6]}{i}n", "netns", namespace)
            _ip("link", "set", outside, "master", self.bridge)
            _ip("link", "set", outside, "up")
            inns = ["netns", "exec", namespace, "ip"]
            _ip(*inns, "link", "set", "lo", "up")
            _ip(*inns, "link", "set", f"esf{self.run[:6]}{i}n", "name", inside)
            _ip(*inns, "addr", "add", f"{self.address[name]}/24", "dev", inside)
            _ip(*inns, "link", "set", inside, "up")
            _ip(*inns, "route", "add", "default", "via", self.gateway)

    def pids(self, name: str) -> list[int]:
        """The processes running in namespace ``name`` now."""
        out = _ip("netns", "pids", self.namespace[name], check=False)
        return [int(p) for p in out.split()]

    def close(self) -> None:
        """Kill what still runs in our namespaces (only processes this run started there), then
        delete the namespaces (their veth ends go with them) and the bridge."""
        for namespace in self._made:
            name = next(n for n, ns in self.namespace.items() if ns == namespace)
            for _ in range(2):
                pids = self.pids(name)
                for pid in pids:
                    with suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                if not pids:
                    break
                time.sleep(0.5)
        for i, namespace in enumerate(self._made):
            # the veth first: a namespace outlives its deletion while the kernel still holds it
            # (a closing socket, say), and its veth pair with it; deleting one end deletes both
            _ip("link", "del", f"esf{self.run[:6]}{i}h", check=False)
            _ip("netns", "del", namespace, check=False)
        self._made.clear()
        _ip("link", "del", self.bridge, check=False)
