"""Notification sinks the tests start on 127.0.0.1: what was delivered, and a switch to fail."""

from __future__ import annotations

import json
import threading
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from tests.integration.processes import free_port


class JsonSink:
    """An HTTP endpoint Apprise's ``json://`` posts to; ``failing`` makes it answer 500."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.failing = False
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if sink.failing:
                    self.send_response(500)
                else:
                    sink.received.append({"json": json.loads(body), "headers": dict(self.headers)})
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str = "hook") -> str:
        return f"json://127.0.0.1:{self.port}/{path}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class SmtpSink:
    """An SMTP server Apprise's ``mailto://`` delivers to, keeping every message received."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        sink = self

        class Handler:
            async def handle_DATA(self, _server: object, _session: object, envelope: Any) -> str:
                sink.messages.append(message_from_bytes(envelope.content))
                return "250 OK"

        self.port = free_port()  # aiosmtpd checks its port by connecting: 0 would not do
        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def url(self, to: str = "oncall@example.com") -> str:
        return f"mailto://127.0.0.1:{self.port}?from=escalera@example.com&to={to}"

    def close(self) -> None:
        self._controller.stop()


class HangingSink:
    """A webhook that takes each request and never answers until `release` (a channel that
    hangs: the connection accepted, the reply never coming); `arrived` is set by the first."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.released = threading.Event()
        self.requests = 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                sink.requests += 1
                sink.arrived.set()
                sink.released.wait()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str = "hook", *, read_timeout_s: float = 60) -> str:
        """Apprise waits up to a minute for the answer (its read time-out, ``rto``)."""
        return f"json://127.0.0.1:{self.port}/{path}?rto={read_timeout_s:g}"

    def release(self) -> None:
        self.released.set()

    def close(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()
