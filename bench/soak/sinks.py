"""The soak's notification sinks on 127.0.0.1: one that answers every message, one that never does.

Apprise's ``json://`` posts each message; `CountingSink` answers 200 and counts them.
`HangingSink` is a channel that hangs: it accepts the connection and reads the request, and the
answer never comes (the sender gives up at its read time-out, Apprise's ``rto``: 4 s unless the
URL says otherwise). One thread serves every connection, however many hang at once.
"""

from __future__ import annotations

import selectors
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Listening(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5: with a worker's pool processes sending on 8
    # threads each, connects beyond it were dropped and retried by TCP 1, 3 and 7 s later,
    # which the soak then counted as delivery lateness (a real webhook's backlog is far larger)
    request_queue_size = 512
    daemon_threads = True


class CountingSink:
    def __init__(self) -> None:
        self.count = 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                sink.count += 1
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self.server = _Listening(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class HangingSink:
    """Accepts each request and never answers; a connection is closed when its sender gives up.

    ``requests``: requests that arrived (``POST`` lines read); ``open``: connections held now.
    """

    def __init__(self) -> None:
        self.requests = self.open = 0
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=512)
        self._listener.setblocking(False)
        self.port = int(self._listener.getsockname()[1])
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ)
        threading.Thread(target=self._serve, name="hanging-sink", daemon=True).start()

    def _serve(self) -> None:
        while True:
            for key, _ in self._selector.select():
                sock: socket.socket = key.fileobj  # type: ignore[assignment]
                if sock is self._listener:
                    conn, _ = sock.accept()
                    conn.setblocking(False)
                    self._selector.register(conn, selectors.EVENT_READ)
                    self.open += 1
                    continue
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                if data:  # a request's bytes: read, never answered
                    self.requests += data.count(b"POST ")
                else:  # the sender gave up (its read time-out) and closed
                    self._selector.unregister(sock)
                    sock.close()
                    self.open -= 1
