"""No 5xx from outside (issue 13, 8): a bad timestamp is a 401; a store down is a 503 problem.

Redis and the database are made unreachable by pointing the app at a port where nothing listens
(and, for SQLite, at a file in a folder that does not exist): the answer is a 503 problem document
with ``Retry-After``, never a bare 500, and nothing is queued. These requests bypass the `Gate`
(which counts any 5xx as a failure of the suite): a 503 here is the answer wanted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from redis.asyncio import Redis as AsyncRedis
from structlog.testing import capture_logs

from shared.celery_app import make_celery
from shared.config import Settings
from shared.db.engine import make_engine, session_factory
from tests.hostile.gate import Gate
from tests.hostile.secrets import HMAC_SECRET, READER_TOKEN, TOKEN
from worker.adapters.signatures import sign_escalera
from worker.api.app import Services, create_app
from worker.api.publisher import QueuePublisher

NOWHERE_REDIS = "redis://127.0.0.1:1/0"  # port 1: nothing listens, the connection is refused
NOWHERE_DATABASES = [
    "postgresql://postgres@127.0.0.1:1/escalera",
    "sqlite:////nonexistent-escalera-folder/escalera.db",
]
EVENT = {
    "event_id": "n-1",
    "ticket_id": "N-1",
    "type": "created",
    "occurred_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
    "priority": "P1",
}


def unavailable(response: httpx.Response, where: str) -> None:
    """A 503 problem document with a Retry-After of a few seconds."""
    assert response.status_code == 503, f"{where}: {response.status_code} {response.text}"
    assert response.headers["content-type"] == "application/problem+json"
    assert 1 <= int(response.headers["retry-after"]) <= 30
    assert "does not answer" in response.json()["detail"]


@pytest.fixture
def redis_down(config: Settings, services: Services) -> Iterator[TestClient]:
    """The app with its publisher on a Redis that refuses connections; the Gate on the real one."""
    publisher = QueuePublisher(
        make_celery(config),
        AsyncRedis.from_url(NOWHERE_REDIS, socket_timeout=1, socket_connect_timeout=1),
        config.events_queue,
    )
    app = create_app(replace(services, publisher=publisher))
    with TestClient(app, raise_server_exceptions=True) as client:
        yield client


@pytest.fixture(params=NOWHERE_DATABASES, ids=["postgresql", "sqlite"])
def database_down(services: Services, request: pytest.FixtureRequest) -> Iterator[TestClient]:
    sessions = session_factory(make_engine(request.param))
    with TestClient(create_app(replace(services, sessions=sessions))) as client:
        yield client


def test_a_timestamp_past_year_9999_is_a_401_naming_the_header(gate: Gate) -> None:
    """X-Escalera-Timestamp: 999999999999 overflowed datetime and answered 500 with a traceback."""
    body = json.dumps(EVENT).encode()
    headers = {
        "content-type": "application/json",
        **sign_escalera(body, HMAC_SECRET, 999999999999),
    }
    response = gate.send("POST", "/v1/events", content=body, headers=headers)
    assert response.status_code == 401
    assert response.json()["field"] == "x-escalera-timestamp"


def test_a_post_while_redis_is_down_is_a_503_with_retry_after(
    redis_down: TestClient, gate: Gate
) -> None:
    """Was a bare text/plain 500. Now: try again in a few seconds; the log names Redis only."""
    body = json.dumps(EVENT).encode()
    headers = {"content-type": "application/json", "authorization": f"Bearer {TOKEN}"}
    queued = gate.redis.llen(gate.queue_key)
    with capture_logs() as logs:
        response = redis_down.post("/v1/events", content=body, headers=headers)
    unavailable(response, "POST /v1/events")
    assert gate.redis.llen(gate.queue_key) == queued
    [logged] = [entry for entry in logs if entry["event"] == "store_unavailable"]
    assert (logged["store"], logged["path"]) == ("redis", "/v1/events")
    assert logged["error"] == "ConnectionError"


@pytest.mark.parametrize("path", ["/v1/tickets/api/N-1", "/v1/reports/at-risk"])
def test_a_read_while_the_database_is_down_is_a_503_with_retry_after(
    database_down: TestClient, path: str
) -> None:
    """PostgreSQL refusing connections, or a SQLite file that cannot be opened: 503, not 500."""
    headers = {"authorization": f"Bearer {READER_TOKEN}"}
    unavailable(database_down.get(path, headers=headers), f"GET {path}")
