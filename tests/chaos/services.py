"""Faults the suite can inject: a Redis of its own, a PostgreSQL link it can cut, sinks it can stop.

Never the shared services: the Redis here is a private ``redis-server`` on a free port, and
PostgreSQL is reached through `PgProxy`, a TCP relay on 127.0.0.1 that an outage closes (new
connections refused, open ones dropped) while the shared server keeps running for everyone else.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis

from shared.redis_keys import celery_prefix, queue_list, unacked
from tests.integration.processes import free_port


class PrivateRedis:
    """``redis-server`` on a free port with an append-only file, as production runs it."""

    def __init__(self, folder: Path) -> None:
        if shutil.which("redis-server") is None:
            pytest.fail(
                "redis-server is not on the PATH: install it (apt-get install redis-server)"
            )
        self.folder, self.port = folder, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        log = (self.folder / "redis.log").open("a")
        self._proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--dir",
                str(self.folder),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        pytest.fail(f"the private redis-server on port {self.port} did not start")

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5)

    def restart(self, down_s: float = 1.0) -> None:
        """A clean shutdown (the append-only file is written) and a start on the same port."""
        self.stop()
        time.sleep(down_s)
        self.start()

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(timeout=20)


class PgProxy:
    """A TCP relay to PostgreSQL; `cut` refuses and drops connections until `restore`."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        threading.Thread(target=self._loop.run_forever, daemon=True).start()
        self.restore()

    def restore(self) -> None:
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(timeout=10)

    def cut(self) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=10)

    def close(self) -> None:
        self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.transport.abort()
            return
        self._writers |= {client_w, server_w}
        await asyncio.gather(_pipe(client_r, server_w), _pipe(server_r, client_w))
        self._writers -= {client_w, server_w}


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.transport.abort()


class Sink:
    """An HTTP endpoint for Apprise's ``json://``: every message with its arrival time.

    `stop` closes the port (connections refused: the sink is down), `start` opens it again.
    """

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.port = free_port()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.start()

    def url(self, path: str) -> str:
        return f"json://127.0.0.1:{self.port}/{path}"

    def start(self) -> None:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = self.rfile.read(length)
                if len(body) < length:  # the sender was killed mid-request: nothing arrived
                    self.send_response(400)
                    self.end_headers()
                    return
                with sink._lock:
                    sink.received.append(
                        {
                            "at": datetime.now(UTC),
                            "path": self.path.strip("/"),
                            "key": self.headers.get("X-Escalera-Dedupe-Key"),
                            "json": json.loads(body),
                        }
                    )
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def messages(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.received)


def where_on_redis(client: redis.Redis, prefix: str, event_ids: list[str]) -> dict[str, str]:
    """For events missing from the database: on the queue, taken unacknowledged, or nowhere."""
    import base64  # noqa: PLC0415 - diagnostics only

    found: dict[str, str] = {}
    places = {
        "queued": client.lrange(queue_list(celery_prefix(prefix), "events"), 0, -1),
        "unacked": list(client.hvals(unacked(celery_prefix(prefix)))),
    }
    for place, messages in places.items():
        for raw in messages:
            text = raw.decode()
            try:
                envelope = json.loads(text)
                if isinstance(envelope, list):  # unacked: [message, exchange, routing key]
                    envelope = envelope[0]
                body = base64.b64decode(envelope["body"]).decode()
            except (ValueError, KeyError, TypeError):
                body = text
            for event_id in event_ids:
                if event_id in body:
                    found[event_id] = place
    return {event_id: found.get(event_id, "nowhere on Redis") for event_id in event_ids}
