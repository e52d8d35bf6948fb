"""A Redis that takes a request and never answers: the publisher gives up after its deadline.

The ingest service's Redis client has no ``socket_timeout`` (it cost a task per command); the
publisher bounds each request's wait itself and raises redis' `TimeoutError`, which the app
answers 503 as a store outage. The "Redis" here is a socket on 127.0.0.1 that reads and never
replies.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import redis.exceptions
from redis.asyncio import Redis as AsyncRedis

from shared.celery_app import make_celery
from shared.config import settings
from tests.support import event
from worker.api.backlog import Backlog
from worker.api.publisher import Durability, QueuePublisher


@pytest.fixture
def silent_redis() -> Iterator[str]:
    """A URL whose server accepts connections, reads what it is sent and never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            held.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"
    server.close()
    for conn in held:
        conn.close()


@pytest.mark.parametrize("limit", [0, 100], ids=["no backlog limit", "backlog limit (LLEN)"])
def test_a_redis_that_never_answers_is_a_redis_timeout_after_the_deadline(
    silent_redis: str, limit: int
) -> None:
    async def publish() -> float:
        # as the service builds it: no socket_timeout
        client = AsyncRedis.from_url(silent_redis, socket_timeout=None, socket_connect_timeout=1)
        publisher = QueuePublisher(
            make_celery(settings()),
            client,
            "events",
            Durability(),
            Backlog(limit),
            io_timeout_s=0.3,
        )
        began = time.monotonic()
        try:
            with pytest.raises(redis.exceptions.TimeoutError, match=r"within 0\.3 s"):
                await publisher.publish([event("created", datetime(2026, 1, 5, 10, tzinfo=UTC))])
            return time.monotonic() - began
        finally:
            await client.aclose()

    waited = asyncio.run(publish())
    assert 0.3 <= waited < 2.0
