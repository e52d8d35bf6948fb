"""A notification sink that keeps each message's dedupe keys, for the overload judge.

Apprise's ``json://`` sends the key as ``X-Escalera-Dedupe-Key``; a storm digest's header names
the digest, and its text names each notification's key (`bench.soak.overload.keys_in`).
"""

from __future__ import annotations

import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bench.soak.overload import keys_in
from worker.notify.transport import DEDUPE_HEADER


class KeyedSink(ThreadingHTTPServer):
    """Answers 200 to each message; ``count``: messages, ``keys``: times each key arrived."""

    request_queue_size = 512  # not socketserver's 5: connects past it wait 1-7 s in TCP retries
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Taker)
        self.port = int(self.server_address[1])
        self.count = 0
        self.keys: Counter[str] = Counter()
        self.lock = threading.Lock()
        threading.Thread(target=self.serve_forever, name="keyed-sink", daemon=True).start()

    def take(self, header: str | None, body: bytes) -> None:
        keys = keys_in(header, body)
        with self.lock:
            self.count += 1
            self.keys.update(keys)


class _Taker(BaseHTTPRequestHandler):
    server: KeyedSink

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", 0))
        self.server.take(self.headers.get(DEDUPE_HEADER), self.rfile.read(length))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_args: object) -> None:  # a line per message: not wanted here
        pass
