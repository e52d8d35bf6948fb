"""A portal's REST API on 127.0.0.1, answering what a test gives it: canned JSON by route.

Tests of `escalera sync` (and of anything else that calls a portal) start one, give it the
answers the vendor documents for each route, and read back what was asked. A route may hold
several answers, given in turn (a 429 with ``Retry-After``, then the page), the last one
repeating. Nothing here talks to the internet.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Answer:
    body: Any
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Asked:
    """One request the server received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: Any


@dataclass
class _Route:
    method: str
    path: str
    query: Mapping[str, str]  # these parameters must be present with these values
    answers: list[Answer]


class PortalServer:
    """Routes by method, path and (optionally) query parameters; unknown routes answer 404."""

    def __init__(self) -> None:
        self._routes: list[_Route] = []
        self.asked: list[Asked] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def answer(
        self,
        method: str,
        path: str,
        *answers: Answer | Any,
        query: Mapping[str, str] | None = None,
    ) -> None:
        """Answer ``method path`` (with ``query`` among its parameters) with ``answers`` in
        turn, the last one for ever; a bare value is a 200 with that JSON body. A later route
        for the same request wins, so a test can narrow one."""
        given = [a if isinstance(a, Answer) else Answer(a) for a in answers]
        with self._lock:
            self._routes.insert(0, _Route(method, path, dict(query or {}), given))

    def asked_for(self, path: str) -> list[Asked]:
        return [a for a in self.asked if a.path == path]

    def start(self) -> PortalServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _respond(self, asked: Asked) -> Answer:
        with self._lock:
            self.asked.append(asked)
            for route in self._routes:
                if (route.method, route.path) != (asked.method, asked.path):
                    continue
                if any(asked.query.get(k) != [v] for k, v in route.query.items()):
                    continue
                return route.answers.pop(0) if len(route.answers) > 1 else route.answers[0]
        return Answer({"error": f"no route for {asked.method} {asked.path}"}, status=404)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                parts = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                asked = Asked(
                    self.command,
                    parts.path,
                    urllib.parse.parse_qs(parts.query, keep_blank_values=True),
                    {k.lower(): v for k, v in self.headers.items()},
                    json.loads(raw) if raw else None,
                )
                answer = server._respond(asked)
                # 204 No Content (Jira's answer to an issue edit) has no body at all
                payload = b"" if answer.status == 204 else json.dumps(answer.body).encode()
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = _serve

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler


@contextmanager
def portal_server() -> Iterator[PortalServer]:
    server = PortalServer().start()
    try:
        yield server
    finally:
        server.stop()
