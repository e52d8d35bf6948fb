"""From event to page, for real: ingest → worker → Redis timers → beat → fire → Apprise → sink.

The ticket is dated 40 minutes back, so its first-response checkpoints are already due when it
arrives: the test waits on the pipeline, never on a timer.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from shared.db.engine import make_engine, session_factory
from shared.db.models import Checkpoint, Notification
from tests.integration.processes import free_port, running, wait_ready
from tests.integration.services import REDIS_URL, truncate
from tests.integration.sinks import JsonSink
from tests.support import preset_text_without_notifications

TOKEN = "firing-e2e"
ROUTES = """
channels:
  oncall: {}
routes:
  - {name: page, when: {kinds: [warning, breach]}, channels: [oncall]}
"""


@pytest.fixture
def system(postgres_url: str, redis_prefix: str, tmp_path: Path, sink: JsonSink) -> Iterator[str]:
    """Ingest, worker and beat running against PostgreSQL and Redis; yields the ingest URL."""
    truncate(postgres_url)
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "desk.yaml").write_text(
        preset_text_without_notifications("soporte-completo") + ROUTES
    )
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": postgres_url,
        "REDIS_URL": REDIS_URL,
        "ESCALERA_REDIS_PREFIX": redis_prefix,
        "ESCALERA_EVENTS_QUEUE": f"{redis_prefix}-events",
        "ESCALERA_FIRE_QUEUE": f"{redis_prefix}-fire",
        "ESCALERA_POLICY_DIR": str(policies),
        "ESCALERA_DEFAULT_POLICY": "desk",
        "ESCALERA_API_TOKENS": json.dumps([TOKEN]),
        "ESCALERA_CHANNEL_ONCALL": sink.url(),
    }
    commands = {
        "ingest": ["ingest", "--port", str(port), "--workers", "1"],
        "worker": ["worker", "--concurrency", "2"],
        "beat": ["beat"],
    }
    with running(commands, env, tmp_path) as procs:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, procs, tmp_path)
        yield base


def _wait_for(condition, what: str, seconds: float = 45):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.2)
    pytest.fail(f"{what} within {seconds} s")


def test_an_overdue_ticket_pages_each_checkpoint_exactly_once(
    system: str, sink: JsonSink, postgres_url: str
) -> None:
    """Warnings at 75 % and 90 % and the breach each reach the on-call once, in Spanish, with their keys."""
    created = datetime.now(UTC) - timedelta(minutes=40)
    event = {
        "event_id": "fe-1",
        "ticket_id": "FE-1",
        "type": "created",
        "occurred_at": created.isoformat(),
        "priority": "Crítico",
        "customer": "acme",
    }
    response = httpx.post(
        f"{system}/v1/events", json=event, headers={"authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 202

    _wait_for(lambda: len(sink.received) >= 3, "three pages arrived")
    sessions = session_factory(make_engine(postgres_url))

    def all_settled() -> bool:
        with sessions() as s:
            states = s.scalars(select(Checkpoint.state)).all()
            statuses = s.scalars(select(Notification.status)).all()
        return len(states) == 3 and set(states) == {"fired"} and statuses == ["sent"] * 3

    _wait_for(all_settled, "every checkpoint fired and every notification sent")
    titles = sorted(message["json"]["title"] for message in sink.received)
    assert titles == [
        "[P1] api/FE-1: 75% del tiempo de primera respuesta consumido",
        "[P1] api/FE-1: 90% del tiempo de primera respuesta consumido",
        "[P1] api/FE-1: primera respuesta incumplida",
    ]
    keys = [message["headers"]["X-Escalera-Dedupe-Key"] for message in sink.received]
    assert len(set(keys)) == len(keys) == 3
