"""Nothing accepted is ever lost: whatever its text holds, an event answered 202 ends stored or
dead-lettered, through the real ingest app and the worker's applier, on PostgreSQL and SQLite.

Issue 13, item 1: a batch ``[a1, n1 (a NUL in its ticket id), b1]`` was answered 202; on
PostgreSQL the batch failed, the dead-letter insert failed on the same NUL, and n1 was in neither
table. Now what the stores cannot hold is refused at the door (422 naming the field), and the
applier dead-letters whatever still fails (tests/integration/test_applier.py).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr
from redis.asyncio import Redis as AsyncRedis
from sqlalchemy import select

from shared.celery_app import make_celery, queue_key
from shared.config import Settings
from shared.db.models import DeadLetter, StoredEvent
from tests.hostile.budget import fuzz_settings
from tests.hostile.gate import TALLY
from tests.hostile.ledger import LEDGER
from tests.hostile.secrets import TOKEN
from tests.integration.services import REDIS_URL
from tests.support import PRESETS
from worker.api.app import Services, create_app
from worker.api.publisher import QueuePublisher
from worker.api.service import webhooks
from worker.events.applier import Applier, make_applier
from worker.runtime import Runtime

NOW = datetime.now(UTC).replace(microsecond=0)
BEARER = {"content-type": "application/json", "authorization": f"Bearer {TOKEN}"}


@dataclass
class Pipeline:
    """The ingest app in-process and the worker's applier, on one database and one queue."""

    client: TestClient
    applier: Applier
    runtime: Runtime

    @property
    def dialect(self) -> str:
        return self.runtime.engine.dialect.name

    def post(self, body: Any) -> Any:
        content = json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")
        response = self.client.post("/v1/events", content=content, headers=BEARER)
        TALLY[response.status_code] += 1
        assert response.status_code < 500, response.text
        return response

    def drain(self) -> None:
        """What the worker does: take, apply, acknowledge, until the queue is empty."""
        while batch := self.applier.queue.take(self.applier.batch, block_s=0):
            assert self.applier.apply(batch, threading.Event())
            self.applier.queue.ack()

    def kept(self) -> set[tuple[str, str]]:
        """(source, event id) of every stored and every dead-lettered event."""
        with self.runtime.sessions() as session:
            stored = session.execute(select(StoredEvent.source, StoredEvent.event_id)).all()
            dead = session.execute(select(DeadLetter.source, DeadLetter.event_id)).all()
        return {(source, event_id) for source, event_id in [*stored, *dead]}


@pytest.fixture
def pipeline(database_url: str, redis_prefix: str) -> Iterator[Pipeline]:
    config = Settings(
        database_url=database_url,
        redis_url=REDIS_URL,
        redis_prefix=redis_prefix,
        events_queue=f"{redis_prefix}-events",
        fire_queue=f"{redis_prefix}-fire",
        policy_dir=PRESETS,
        default_policy="soporte-completo",
        api_tokens=[SecretStr(TOKEN)],
    )
    rt = Runtime.build(config)
    services = Services(
        settings=config,
        policies=rt.policies,
        publisher=QueuePublisher(
            make_celery(config),
            AsyncRedis.from_url(config.redis_url, socket_timeout=5),
            config.events_queue,
        ),
        sessions=rt.sessions,
        webhooks=webhooks(config),
        redis_ping=redis.Redis.from_url(config.redis_url).ping,
    )
    with TestClient(create_app(services)) as client:
        yield Pipeline(client, make_applier(rt), rt)
    rt.redis.delete(queue_key(config, config.events_queue))
    rt.engine.dispose()


def _event(event_id: str, ticket: str, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "ticket_id": ticket,
        "type": "created",
        "occurred_at": (NOW - timedelta(hours=1)).isoformat(),
        "priority": "P2",
        **fields,
    }


@pytest.mark.parametrize("field", ["ticket_id", "event_id", "customer", "requester", "source"])
@pytest.mark.parametrize("control", ["\x00", "\n", "\x1b", "\x85"])
def test_a_control_character_in_any_id_or_name_is_refused_at_the_door(
    pipeline: Pipeline, field: str, control: str
) -> None:
    """The issue's batch: refused whole with 422 naming the event and field; nothing queued."""
    batch = [
        _event("a1", "A"),
        {**_event("n1", "N"), field: f"N{control}X"},
        _event("b1", "B"),
    ]
    response = pipeline.post(batch)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == f"[1].{field}"
    assert "control character" in response.json()["detail"]
    assert pipeline.applier.queue.depth() == 0


def test_a_source_longer_than_the_store_holds_is_refused_at_the_door(pipeline: Pipeline) -> None:
    response = pipeline.post(_event("s1", "S", source="s" * 65))
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "source"


# Every string field drawn from all of Unicode (NUL, controls, lone surrogates, long strings),
# or from all that the stores can hold (emoji, right-to-left marks, U+2028...), or plain, so
# that many events are accepted and reach the worker.
hostile_text = st.text(st.characters(codec=None, categories=None), max_size=300)
storable_text = st.text(
    st.characters(codec=None, exclude_categories=("Cc", "Cs")), min_size=1, max_size=256
)
plain_text = st.text("abcXYZ-_.@ 0123456789ñé", min_size=1, max_size=20)
one_control = st.builds(  # a plausible id with one control character in it (the NUL)
    lambda head, control, tail: head + control + tail,
    plain_text,
    st.sampled_from("\x00\n\x1b\x85") | st.characters(categories=("Cc",)),
    st.text("abc", max_size=3),
)
any_text = plain_text | storable_text | one_control | hostile_text


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    """Three events in four hold only text the stores can hold (so that whole batches are
    accepted and reach the worker); the fourth, any text at all."""
    kind = draw(st.sampled_from(["created", "agent_replied", "customer_replied", "resolved"]))
    clean = draw(st.sampled_from([True, True, True, False]))
    text = plain_text | storable_text if clean else any_text
    event: dict[str, Any] = {
        "event_id": draw(text),
        "ticket_id": draw(st.sampled_from(["T-1", "T-2"]) | text),
        "type": kind,
        "occurred_at": (NOW - timedelta(minutes=draw(st.integers(1, 600)))).isoformat(),
    }
    if kind == "created":
        priorities = st.sampled_from(["P1", "P2", "high"])
        event["priority"] = draw(priorities if clean else priorities | any_text)
    for name in ("customer", "requester", "source"):
        if draw(st.booleans()):
            event[name] = draw(st.just("api") if name == "source" else text)
    return event


@fuzz_settings("nothing_lost")
@given(batch=st.lists(events(), min_size=1, max_size=6))
def test_every_event_answered_202_ends_stored_or_dead_lettered(
    pipeline: Pipeline, batch: list[dict[str, Any]]
) -> None:
    response = pipeline.post(batch)
    if response.status_code != 202:
        assert response.status_code in (400, 403, 422), response.text
        return
    pipeline.drain()
    kept = pipeline.kept()
    unaccounted = [e for e in batch if (e.get("source", "api"), e["event_id"]) not in kept]
    LEDGER.count(pipeline.dialect, accepted=len(batch), unaccounted=len(unaccounted))
    assert unaccounted == [], unaccounted
