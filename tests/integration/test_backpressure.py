"""Backpressure: past ``ESCALERA_INGEST_MAX_QUEUE`` events waiting, a write is a 503 to retry.

The ingest app in-process, publishing to the real Redis under this test's prefix; the events
queue is filled by hand (nothing drains it here), so its depth is whatever a test makes it. The
Zendesk delivery is tests/fixtures/webhooks/zendesk/ticket_created.json, signed as Zendesk signs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError
from redis.asyncio import Redis as AsyncRedis
from structlog.testing import capture_logs

from shared.celery_app import make_celery, queue_key
from shared.config import Settings
from shared.db.engine import make_engine, session_factory
from shared.db.migrate import upgrade
from tests.integration.scrape import Scrape
from tests.integration.services import REDIS_URL
from tests.support import PRESETS
from tests.unit.adapter_support import Fixtures
from worker.adapters.signatures import sign_zendesk
from worker.api.app import Services, create_app
from worker.api.backlog import FRESH_S, RETRY_AFTER_S, Backlog
from worker.api.publisher import QueuePublisher
from worker.api.service import webhooks
from worker.policies.book import PolicyBook

TOKEN = "backpressure-token-for-tests"
SECRET = "zendesk-signing-secret"
ZENDESK = Fixtures("zendesk")


class Clock:
    """Monotonic seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Desk:
    """The ingest app with a queue limit, its Redis and its clock."""

    def __init__(self, tmp: Path, prefix: str, limit: int) -> None:
        url = f"sqlite:///{tmp / 'e.db'}"
        upgrade(url)
        self.config = Settings(
            database_url=url,
            redis_prefix=prefix,
            policy_dir=PRESETS,
            api_tokens=[SecretStr(TOKEN)],
            zendesk_secret=SecretStr(SECRET),
            max_event_age_days=36500,  # the fixture is dated 2025-03-04, whenever the tests run
            ingest_max_queue=limit,
        )
        self.redis = redis.Redis.from_url(REDIS_URL)
        self.key = queue_key(self.config, self.config.events_queue)
        self.clock = Clock()
        publisher = QueuePublisher(
            make_celery(self.config),
            AsyncRedis.from_url(REDIS_URL),
            self.config.events_queue,
            backlog=Backlog(limit, clock=self.clock),
        )
        self.services = Services(
            settings=self.config,
            policies=PolicyBook.from_settings(self.config),
            publisher=publisher,
            sessions=session_factory(make_engine(url)),
            webhooks=webhooks(self.config),
            redis_ping=self.redis.ping,
        )

    def fill(self, depth: int) -> None:
        """The events queue ``depth`` messages deep (placeholders: nothing applies them here)."""
        self.redis.delete(self.key)
        if depth:
            self.redis.lpush(self.key, *(f"waiting-{i}" for i in range(depth)))

    def depth(self) -> int:
        return int(self.redis.llen(self.key))


@pytest.fixture
def full_at_3(tmp_path: Path, redis_prefix: str) -> Iterator[tuple[Desk, TestClient]]:
    desk = Desk(tmp_path, redis_prefix, limit=3)
    with TestClient(create_app(desk.services)) as http:
        yield desk, http


def zendesk_delivery(http: TestClient) -> Any:
    """Zendesk's ticket-created delivery, signed now."""
    body = ZENDESK.raw("ticket_created")
    headers = {"content-type": "application/json", **sign_zendesk(body, SECRET, datetime.now(UTC))}
    return http.post("/v1/webhooks/zendesk", content=body, headers=headers)


def canonical(http: TestClient, ticket: str) -> Any:
    body = {
        "event_id": f"{ticket}-created",
        "ticket_id": ticket,
        "type": "created",
        "occurred_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
        "priority": "P1",
    }
    headers = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
    return http.post("/v1/events", content=json.dumps(body), headers=headers)


def refused_for_a_full_queue(http: TestClient, source: str) -> float:
    metrics = http.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"})
    return Scrape(metrics.text)("escalera_ingest_refused_total", source=source, reason="queue_full")


def test_a_webhook_at_the_limit_is_a_503_to_retry_and_nothing_of_it_is_queued(
    full_at_3: tuple[Desk, TestClient],
) -> None:
    """The queue holds 3 events, the limit: Zendesk's delivery gets a problem document, when to
    come back, and the queue is untouched; it is counted and logged; probes still answer."""
    desk, http = full_at_3
    desk.fill(3)
    counted = refused_for_a_full_queue(http, "zendesk")
    with capture_logs() as logs:
        refused = zendesk_delivery(http)
    assert refused.status_code == 503, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["retry-after"] == str(RETRY_AFTER_S)
    problem = refused.json()
    assert (problem["status"], problem["title"]) == (503, "Unavailable")
    assert "the events queue is full: 3 events wait, the limit is 3" in problem["detail"]
    assert "nothing of this request was queued" in problem["detail"]
    assert desk.depth() == 3
    assert refused_for_a_full_queue(http, "zendesk") == counted + 1
    [line] = [entry for entry in logs if entry["event"] == "events_queue_full"]
    assert (line["source"], line["ticket_id"], line["depth"], line["limit"]) == (
        "zendesk",
        "48213",
        3,
        3,
    )
    assert http.get("/healthz").status_code == 200
    assert http.get("/readyz").status_code == 200


def test_below_the_limit_a_webhook_is_accepted_as_before(
    full_at_3: tuple[Desk, TestClient],
) -> None:
    """Two events waiting, limit 3: 202, and the delivery's event joins them."""
    desk, http = full_at_3
    desk.fill(2)
    accepted = zendesk_delivery(http)
    assert (accepted.status_code, accepted.json()) == (202, {"accepted": 1})
    assert desk.depth() == 3


def test_a_queue_past_the_limit_refuses_api_writes_until_it_drains(
    full_at_3: tuple[Desk, TestClient],
) -> None:
    """Past the limit (another process accepted a batch) /v1/events is refused too; once the
    workers drain the queue, a write is accepted again as soon as the depth is read again
    (at most `FRESH_S` later: this process reads it no more often)."""
    desk, http = full_at_3
    desk.fill(5)
    counted = refused_for_a_full_queue(http, "api")
    first = canonical(http, "B-1")
    assert (first.status_code, first.headers["retry-after"]) == (503, str(RETRY_AFTER_S))
    assert refused_for_a_full_queue(http, "api") == counted + 1
    desk.fill(0)  # the workers caught up
    assert canonical(http, "B-2").status_code == 503  # the depth it read a moment ago
    desk.clock.now += FRESH_S
    assert canonical(http, "B-3").status_code == 202
    assert desk.depth() == 1


def test_a_limit_of_zero_never_refuses(tmp_path: Path, redis_prefix: str) -> None:
    """ESCALERA_INGEST_MAX_QUEUE=0: however deep the queue, writes are accepted."""
    desk = Desk(tmp_path, redis_prefix, limit=0)
    desk.fill(500)
    with TestClient(create_app(desk.services)) as http:
        assert zendesk_delivery(http).status_code == 202
        assert canonical(http, "Z-1").status_code == 202
    assert desk.depth() == 502


def test_the_limit_is_read_from_the_environment_and_a_negative_one_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """100,000 events unless set; 0 turns it off; a negative limit stops the process at start."""
    monkeypatch.delenv("ESCALERA_INGEST_MAX_QUEUE", raising=False)
    assert Backlog.from_settings(Settings()).limit == 100_000
    monkeypatch.setenv("ESCALERA_INGEST_MAX_QUEUE", "0")
    assert Backlog.from_settings(Settings()).limit == 0
    monkeypatch.setenv("ESCALERA_INGEST_MAX_QUEUE", "-1")
    with pytest.raises(ValidationError, match="ingest_max_queue"):
        Settings()
