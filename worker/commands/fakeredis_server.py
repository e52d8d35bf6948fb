"""fakeredis's TCP server in a process of its own: ``escalera up``'s Redis when none is installed.

In memory only (stopping it loses queues and timers). Two fixes over the stock server (research:
tech-risks.md §3.1): replies go out with TCP_NODELAY (the stock one waits ~40 ms per pipeline on
Nagle and delayed ACKs: 11 tasks/s instead of ~100), and SIGTERM/SIGINT stop it promptly (its
handler threads are not daemons: ``serve_forever`` alone would not exit). Lua (``lupa``) must be
installed: kombu's lock runs a script.

    python -m worker.commands.fakeredis_server PORT
"""

from __future__ import annotations

import signal
import socket
import sys
import threading
from types import FrameType

from fakeredis import TcpFakeServer
from fakeredis._clients._tcp_server import TCPFakeRequestHandler


class _NoDelayHandler(TCPFakeRequestHandler):
    def setup(self) -> None:
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().setup()


def serve(port: int) -> None:
    server = TcpFakeServer(("127.0.0.1", port))
    server.RequestHandlerClass = _NoDelayHandler
    server.daemon_threads = True  # a client still connected must not keep the process alive

    def stop(_signum: int, _frame: FrameType | None) -> None:
        # shutdown() waits for serve_forever to return: call it from another thread
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()


if __name__ == "__main__":
    serve(int(sys.argv[1]))
