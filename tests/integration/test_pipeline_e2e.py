"""The whole path, for real: portal webhooks → ingest process → Redis → Celery worker → PostgreSQL.

Valid, forged, malformed, duplicated and out-of-order traffic from Zendesk, Freshdesk, Jira and
the canonical API; the stored SLA state is then read back through GET /v1/tickets.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from shared.db.engine import make_engine, session_factory
from shared.db.models import Checkpoint, StoredEvent, Ticket
from tests.integration.processes import free_port, running, wait_ready
from tests.integration.services import REDIS_URL, truncate
from tests.support import ROOT
from worker.adapters.signatures import sign_jira, sign_zendesk

TOKEN = "e2e-token"
SECRETS = {"zendesk": "zd-secret", "jira": "jira-secret", "freshdesk": "fd-secret"}
WEBHOOKS = ROOT / "tests" / "fixtures" / "webhooks"
T0 = (datetime.now(UTC) - timedelta(hours=3)).replace(microsecond=0)

POLICY = """
name: desk
calendars: {always: 24x7}
default_timezone: UTC
priorities:
  P1: {aliases: [urgent, highest, critical]}
  P2: {aliases: [high]}
  P3: {aliases: [medium, normal]}
  P4: {aliases: [low, lowest]}
plans: {standard: {calendar: always}}
default_plan: standard
targets:
  - {priorities: [P1, P2], first_response: 1h, update_every: 2h, resolution: 8h,
     escalations: [{tier: 2, after: 4h, from: first_response}]}
  - {priorities: [P3, P4], first_response: 4h, resolution: 2d}
"""


@pytest.fixture
def pipeline(postgres_url: str, redis_prefix: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A running ingest service and worker; yields (base URL, database URL)."""
    truncate(postgres_url)
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "desk.yaml").write_text(POLICY)
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": postgres_url,
        "REDIS_URL": REDIS_URL,
        "ESCALERA_REDIS_PREFIX": redis_prefix,
        "ESCALERA_EVENTS_QUEUE": f"{redis_prefix}-events",
        "ESCALERA_POLICY_DIR": str(tmp_path / "policies"),
        "ESCALERA_DEFAULT_POLICY": "desk",
        "ESCALERA_API_TOKENS": json.dumps([TOKEN]),
        **{f"ESCALERA_{name.upper()}_SECRET": secret for name, secret in SECRETS.items()},
    }
    commands = {
        "ingest": ["ingest", "--port", str(port)],
        "worker": ["worker", "--concurrency", "2"],
    }
    with running(commands, env, tmp_path) as procs:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, procs, tmp_path)
        yield base, postgres_url


def _fixture(portal: str, name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((WEBHOOKS / portal / f"{name}.json").read_text())
    return loaded


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _traffic() -> dict[str, Any]:
    """The portals' payloads, re-dated around T0 (Jira refuses deliveries older than its retries)."""
    zd_created = _fixture("zendesk", "ticket_created")
    zd_created["detail"].update(
        id="900", priority="URGENT", created_at=_iso(T0), updated_at=_iso(T0)
    )
    zd_created.update(subject="zen:ticket:900", time=_iso(T0), id="zd-evt-1")
    zd_reply = _fixture("zendesk", "comment_added_public_agent")
    zd_reply["detail"].update(
        id="900", priority="URGENT", updated_at=_iso(T0 + timedelta(minutes=20))
    )
    zd_reply.update(subject="zen:ticket:900", time=_iso(T0 + timedelta(minutes=20)), id="zd-evt-2")

    fd_created = _fixture("freshdesk", "ticket_created")
    fd_created.update(ticket_id="700", priority="High", occurred_at=_iso(T0))

    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    jira_created = _fixture("jira", "issue_created")
    jira_created["timestamp"] = now_ms
    jira_created["issue"]["fields"].update(
        created=T0.strftime("%Y-%m-%dT%H:%M:%S.000+0000"), priority={"id": "1", "name": "Highest"}
    )
    jira_reply = _fixture("jira", "comment_created")
    jira_reply["timestamp"] = now_ms
    jira_reply["comment"]["created"] = (T0 + timedelta(hours=2)).strftime(
        "%Y-%m-%dT%H:%M:%S.000+0000"
    )
    return {
        "zd_created": zd_created,
        "zd_reply": zd_reply,
        "fd_created": fd_created,
        "jira_created": jira_created,
        "jira_reply": jira_reply,
    }


def _post_zendesk(
    client: httpx.Client, payload: dict[str, Any], secret: str = SECRETS["zendesk"]
) -> int:
    body = json.dumps(payload).encode()
    headers = {"content-type": "application/json", **sign_zendesk(body, secret, datetime.now(UTC))}
    return client.post("/v1/webhooks/zendesk", content=body, headers=headers).status_code


def _post_jira(client: httpx.Client, payload: dict[str, Any]) -> int:
    body = json.dumps(payload).encode()
    headers = {"content-type": "application/json", **sign_jira(body, SECRETS["jira"])}
    return client.post("/v1/webhooks/jira", content=body, headers=headers).status_code


def _post_canonical(client: httpx.Client, events: list[dict[str, Any]]) -> int:
    return client.post(
        "/v1/events", json=events, headers={"authorization": f"Bearer {TOKEN}"}
    ).status_code


def _canonical(
    ticket: str, event_id: str, kind: str, at: datetime, **fields: Any
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "ticket_id": ticket,
        "type": kind,
        "occurred_at": at.isoformat(),
        **fields,
    }


def _wait_for_events(database_url: str, expected: int) -> None:
    sessions = session_factory(make_engine(database_url))
    deadline = time.monotonic() + 60
    count = 0
    while time.monotonic() < deadline:
        with sessions() as s:
            count = s.scalar(select(func.count()).select_from(StoredEvent)) or 0
        if count >= expected:
            return
        time.sleep(0.2)
    pytest.fail(f"the worker stored {count} of {expected} events within 60 s")


def test_portal_and_api_traffic_ends_as_the_right_stored_sla_state(
    pipeline: tuple[str, str],
) -> None:
    """Every accepted event is applied once; forged and malformed requests leave no trace."""
    base, database_url = pipeline
    t = _traffic()
    with httpx.Client(base_url=base, timeout=10) as client:
        # Zendesk: the reply arrives before the ticket it answers; the created event twice.
        assert _post_zendesk(client, t["zd_reply"]) == 202
        assert _post_zendesk(client, t["zd_created"]) == 202
        assert _post_zendesk(client, t["zd_created"]) == 202  # a portal retry
        assert _post_zendesk(client, t["zd_created"], secret="forged") == 401
        # Freshdesk: shared secret header; a wrong one is refused.
        fd = json.dumps(t["fd_created"]).encode()
        assert (
            client.post(
                "/v1/webhooks/freshdesk",
                content=fd,
                headers={
                    "content-type": "application/json",
                    "x-escalera-webhook-secret": SECRETS["freshdesk"],
                },
            ).status_code
            == 202
        )
        assert (
            client.post(
                "/v1/webhooks/freshdesk",
                content=fd,
                headers={"content-type": "application/json", "x-escalera-webhook-secret": "guess"},
            ).status_code
            == 401
        )
        # Jira: signed; a malformed body is refused.
        assert _post_jira(client, t["jira_created"]) == 202
        assert _post_jira(client, t["jira_reply"]) == 202
        assert (
            client.post(
                "/v1/webhooks/jira",
                content=b"{not json",
                headers={
                    "content-type": "application/json",
                    **sign_jira(b"{not json", SECRETS["jira"]),
                },
            ).status_code
            == 400
        )
        # Canonical API: a shuffled, duplicated life of one ticket.
        life = [
            _canonical("C-1", "c1", "created", T0, priority="critical"),
            _canonical("C-1", "c2", "agent_replied", T0 + timedelta(minutes=40)),
            _canonical("C-1", "c3", "status_changed", T0 + timedelta(hours=1), status="pending"),
            _canonical("C-1", "c4", "status_changed", T0 + timedelta(hours=2), status="open"),
        ]
        assert _post_canonical(client, [life[3], life[1]]) == 202
        assert _post_canonical(client, [life[0], life[2], life[1]]) == 202
        assert _post_canonical(client, [{**life[0], "occurred_at": "2026-03-02T09:00:00"}]) == 422
        assert (
            client.post(
                "/v1/events", json=life, headers={"authorization": "Bearer nope"}
            ).status_code
            == 401
        )

        _wait_for_events(database_url, expected=2 + 1 + 2 + 4)
        at = (T0 + timedelta(hours=2, minutes=30)).isoformat()
        reader = {"authorization": f"Bearer {TOKEN}"}  # reads need a key too
        zd = client.get("/v1/tickets/zendesk/900", params={"at": at}, headers=reader).json()
        fdk = client.get("/v1/tickets/freshdesk/700", params={"at": at}, headers=reader).json()
        jira = client.get("/v1/tickets/jira/ITSD-482", params={"at": at}, headers=reader).json()
        api = client.get("/v1/tickets/api/C-1", params={"at": at}, headers=reader).json()

    assert (zd["priority"], zd["metrics"]["first_response"]["state"]) == ("P1", "met")
    assert (
        zd["metrics"]["first_response"]["completed_at"] == (T0 + timedelta(minutes=20)).isoformat()
    )
    assert (fdk["priority"], fdk["metrics"]["first_response"]["state"]) == ("P2", "breached")
    assert (jira["priority"], jira["metrics"]["first_response"]["state"]) == ("P1", "breached")
    assert jira["metrics"]["first_response"]["breached_at"] == (T0 + timedelta(hours=1)).isoformat()
    # C-1: answered at 40 min; the update clock ran 20 min, paused an hour, ran 30 min more.
    update = api["metrics"]["update"]
    assert (update["state"], update["elapsed_seconds"]) == ("running", 50 * 60)
    assert update["due_at"] == (T0 + timedelta(hours=3, minutes=40)).isoformat()

    sessions = session_factory(make_engine(database_url))
    with sessions() as s:
        per_source = dict(
            s.execute(select(StoredEvent.source, func.count()).group_by(StoredEvent.source)).all()
        )
        escalation = s.scalars(
            select(Checkpoint.due_at)
            .join(Ticket)
            .where(Ticket.ticket_id == "C-1", Checkpoint.key == "escalation:tier2")
        ).one()
    assert per_source == {"zendesk": 2, "freshdesk": 1, "jira": 2, "api": 4}
    assert escalation == T0 + timedelta(minutes=40) + timedelta(
        hours=5
    )  # 4 h of running time + the 1 h pause
