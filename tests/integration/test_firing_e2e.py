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


def test_an_overdue_ticket_pages_its_breach_once_and_not_the_warnings_it_caught_up(
    system: str, sink: JsonSink, postgres_url: str
) -> None:
    """A ticket dated 40 minutes back arrives with its 75 % and 90 % warnings and its breach all
    due: the on-call gets one page, the breach, in Spanish, with its key; the warnings fire too,
    caught up by the breach, and page nobody (the policy's default ``catch_up: latest``)."""
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

    sessions = session_factory(make_engine(postgres_url))

    def all_settled() -> dict[str, str | None] | None:
        with sessions() as s:
            rows = s.execute(select(Checkpoint.key, Checkpoint.state, Checkpoint.not_paged)).all()
            statuses = s.scalars(select(Notification.status)).all()
        settled = len(rows) == 3 and {row.state for row in rows} == {"fired"}
        return (
            {row.key: row.not_paged for row in rows} if settled and statuses == ["sent"] else None
        )

    not_paged = _wait_for(all_settled, "every checkpoint fired and the one notification sent")
    assert not_paged == {
        "first_response:warning:75": "caught_up",
        "first_response:warning:90": "caught_up",
        "first_response:breach": None,
    }
    _wait_for(lambda: sink.received, "the page arrived")
    assert [message["json"]["title"] for message in sink.received] == [
        "[P1] api/FE-1: primera respuesta incumplida"
    ]
    assert sink.received[0]["headers"]["X-Escalera-Dedupe-Key"].endswith(":page:oncall:0")
