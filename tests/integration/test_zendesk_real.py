"""Zendesk deliveries through the HTTP app and the store, as a desk's first day sends them.

Bodies are tests/fixtures/webhooks/zendesk/*.json, shaped after Zendesk's "Ticket events"
reference (developer.zendesk.com/api-reference/webhooks/event-types/ticket-events/) and public
integrations' copies of real deliveries; SOURCES.md there says which file follows which. Each is
signed as Zendesk signs (``X-Zendesk-Webhook-Signature`` over timestamp + body), posted to
``/v1/webhooks/zendesk``, and what the app queues is applied as the worker applies it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import func, select

from shared.config import Settings
from shared.db.engine import make_engine, session_factory
from shared.db.migrate import upgrade
from shared.db.models import StoredEvent
from shared.events import Event
from tests.support import PRESETS
from tests.unit.adapter_support import Fixtures
from worker.adapters.signatures import sign_zendesk
from worker.api.app import Services, create_app
from worker.api.service import webhooks
from worker.events.apply import apply_event
from worker.policies.book import PolicyBook

TOKEN = "t0ken-for-zendesk-tests"
READ = {"authorization": f"Bearer {TOKEN}"}
SECRET = "zendesk-signing-secret"
FIXTURES = Fixtures("zendesk")
AT = "2025-03-04T12:00:00+00:00"  # the e-mail ticket was created at 08:02 UTC that day


class Recorder:
    """A publisher that keeps what it is given (the real one LPUSHes to Redis)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def publish(self, events: Sequence[Event]) -> None:
        self.events.extend(events)


def desk(tmp: Path, policy_tail: str) -> tuple[Services, Recorder]:
    """The ingest services of a desk whose policy is soporte-completo plus ``policy_tail``."""
    policies = tmp / "policies"
    policies.mkdir()
    preset = (PRESETS / "soporte-completo.yaml").read_text()
    (policies / "soporte-completo.yaml").write_text(preset + policy_tail)
    url = f"sqlite:///{tmp / 'e.db'}"
    upgrade(url)
    config = Settings(
        database_url=url,
        policy_dir=policies,
        default_policy="soporte-completo",
        api_tokens=[SecretStr(TOKEN)],
        zendesk_secret=SecretStr(SECRET),
        max_event_age_days=36500,  # the fixtures are dated 2025-03-04, whenever the tests run
    )
    recorder = Recorder()
    services = Services(
        settings=config,
        policies=PolicyBook.from_settings(config),
        publisher=recorder,
        sessions=session_factory(make_engine(url)),
        webhooks=webhooks(config),
        redis_ping=lambda: True,
    )
    return services, recorder


@pytest.fixture
def with_default(tmp_path: Path) -> tuple[Services, Recorder]:
    """A desk whose policy gives a ticket without priority P3."""
    return desk(tmp_path, "\ndefault_priority: P3\n")


def post(client: TestClient, payload: dict[str, Any], invocation: str = "01HQ7ZK3V9") -> Any:
    """``payload`` as Zendesk delivers it: signed now, with its invocation id header."""
    body = json.dumps(payload).encode()
    headers = {
        "content-type": "application/json",
        "x-zendesk-webhook-invocation-id": invocation,
        **sign_zendesk(body, SECRET, datetime.now(UTC)),
    }
    return client.post("/v1/webhooks/zendesk", content=body, headers=headers)


def apply_all(services: Services, events: Sequence[Event]) -> None:
    """Apply what was queued, one event per transaction, as the worker would."""
    for event in events:
        with services.sessions.begin() as session:
            apply_event(session, services.policies, event, datetime.now(UTC))


def stored(services: Services) -> int:
    with services.sessions() as session:
        return session.scalar(select(func.count()).select_from(StoredEvent)) or 0


def status_change(previous: str, current: str, event_id: str, time: str) -> dict[str, Any]:
    """The e-mail ticket's status moved from ``previous`` to ``current`` at ``time``."""
    payload = FIXTURES.load("status_changed")
    payload["id"], payload["time"] = event_id, time
    payload["subject"] = "zen:ticket:48240"
    payload["detail"].update(id="48240", status=current, updated_at=time)
    payload["event"] = {"previous": previous, "current": current}
    return payload


def test_an_email_ticket_without_priority_is_tracked_at_the_policys_default(
    with_default: tuple[Services, Recorder],
) -> None:
    """Story 1: ``detail.priority: null`` was refused with 422 "no default_priority is set"
    although the policy had one. Now it is accepted and the ticket runs at P3."""
    services, recorder = with_default
    client = TestClient(create_app(services))
    response = post(client, FIXTURES.load("ticket_created_email"))
    assert response.status_code == 202, response.text
    (created,) = recorder.events
    assert (created.type.value, created.priority, created.subject) == (
        "created",
        None,
        "Invoice 2291 charged twice",
    )
    apply_all(services, recorder.events)
    read = client.get("/v1/tickets/zendesk/48240", params={"at": AT}, headers=READ)
    assert read.status_code == 200, read.text
    assert read.json()["priority"] == "P3"


def test_without_any_default_the_policy_refuses_it_at_the_door(tmp_path: Path) -> None:
    """A policy with neither default_priority nor matrix cannot evaluate the ticket: 422 naming
    the priority and why, and nothing queued (Zendesk shows the refusal in its activity log)."""
    services, recorder = desk(tmp_path, "")
    response = post(TestClient(create_app(services)), FIXTURES.load("ticket_created_email"))
    assert response.status_code == 422
    assert response.json()["field"] == "priority"
    assert "default_priority" in response.json()["detail"]
    assert recorder.events == []


def test_a_retried_delivery_is_stored_once(with_default: tuple[Services, Recorder]) -> None:
    """Zendesk retries a delivery it got no 2xx for, with the same body: accepted each time,
    stored once."""
    services, recorder = with_default
    client = TestClient(create_app(services))
    created = FIXTURES.load("ticket_created_email")
    assert post(client, created).status_code == 202
    assert post(client, created).status_code == 202  # the retry
    apply_all(services, recorder.events)
    assert (len(recorder.events), stored(services)) == (2, 1)


def test_pending_open_pending_is_three_changes_and_ends_paused(
    with_default: tuple[Services, Recorder],
) -> None:
    """Pending, open, then pending again: the two moves to pending have bodies alike but for
    their event ids and times, and neither is taken for a retry; the ticket ends pending, its
    first-response clock paused (soporte-completo pauses on pending)."""
    services, recorder = with_default
    client = TestClient(create_app(services))
    assert post(client, FIXTURES.load("ticket_created_email")).status_code == 202
    moves = [
        status_change("NEW", "PENDING", "0b6c1e9a-0001-4f7e-9a2d-1c0f5e7b8a90", "2025-03-04T08:10:00Z"),
        status_change("PENDING", "OPEN", "0b6c1e9a-0002-4f7e-9a2d-1c0f5e7b8a90", "2025-03-04T08:20:00Z"),
        status_change("OPEN", "PENDING", "0b6c1e9a-0003-4f7e-9a2d-1c0f5e7b8a90", "2025-03-04T08:30:00Z"),
    ]  # fmt: skip
    for move in moves:
        assert post(client, move, invocation=move["id"]).status_code == 202
    apply_all(services, recorder.events)
    assert stored(services) == 4
    sla = client.get("/v1/tickets/zendesk/48240", params={"at": AT}, headers=READ).json()
    assert sla["status"] == "pending"
    assert sla["metrics"]["first_response"]["state"] == "paused"


def context_change(name: str, time: str, **event: Any) -> dict[str, Any]:
    """The e-mail ticket's context changed at ``time``: fixture ``name`` (``detail`` the ticket
    after the change, ``event`` what changed: [Z-events] in SOURCES.md), with ``event``."""
    payload = FIXTURES.load(name)
    payload["time"], payload["subject"] = time, "zen:ticket:48240"
    payload["detail"] = {**FIXTURES.load("ticket_created_email")["detail"], "updated_at": time}
    payload["event"] = event
    return payload


def test_tag_and_subject_changes_are_kept_once_and_move_no_clock(
    with_default: tuple[Services, Recorder],
) -> None:
    """An agent tags the e-mail ticket ``vip`` (the delivery is retried) and renames it: the tag
    change is stored once, the ticket's page shows its tags and new subject, and its
    first-response clock is where it was."""
    services, recorder = with_default
    client = TestClient(create_app(services))
    assert post(client, FIXTURES.load("ticket_created_email")).status_code == 202
    apply_all(services, recorder.events)
    before = client.get("/v1/tickets/zendesk/48240", params={"at": AT}, headers=READ).json()
    tagged = context_change(
        "tags_changed", "2025-03-04T08:30:00Z", tags_added=["vip"], tags_removed=["billing"]
    )
    tagged["detail"]["tags"] = ["plan_gold", "vip"]
    renamed = context_change(
        "subject_changed",
        "2025-03-04T08:40:00Z",
        previous="Invoice 2291 charged twice",
        current="Invoice 2291 charged twice (refund due)",
    )
    renamed["detail"].update(subject=renamed["event"]["current"], tags=["plan_gold", "vip"])
    recorder.events.clear()
    for payload, invocation in [(tagged, "01HQ8A"), (tagged, "01HQ8A"), (renamed, "01HQ8B")]:
        assert post(client, payload, invocation).status_code == 202
    apply_all(services, recorder.events)
    assert (len(recorder.events), stored(services)) == (3, 3)
    after = client.get("/v1/tickets/zendesk/48240", params={"at": AT}, headers=READ).json()
    assert after["ticket"]["tags"] == ["plan_gold", "vip"]
    assert after["ticket"]["subject"] == "Invoice 2291 charged twice (refund due)"
    assert after["metrics"] == before["metrics"]
