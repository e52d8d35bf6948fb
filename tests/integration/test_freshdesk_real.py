"""Freshdesk as a desk runs it, through the HTTP app: rule webhooks in, the ticket's SLA out.

Each test posts rule bodies to ``POST /v1/webhooks/freshdesk`` with the shared secret as
Freshdesk's "Requires authentication" sends it (basic auth), applies what the app published, as
the worker does, and reads ``GET /v1/tickets/freshdesk/<id>`` with a read token. The bodies are
the rule bodies of worker/adapters/freshdesk.py and docs/portals/freshdesk.md; their values are
rendered as Freshdesk renders placeholders (``{status:{from:2,to:3}}``: real deliveries in
github.com/zulip/zulip zerver/webhooks/freshdesk/fixtures/; ``{reply_sent:sent}`` and
``{{ticket.modified_on}}``: Freshdesk's source, github.com/Ramesh-Veeriaperumal/freshconsult
app/models/helpdesk/note/callbacks.rb and app/drops/helpdesk/ticket_drop.rb). The policy is the
``soporte-completo`` preset (High is P2; pending and on_hold pause the clocks).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from shared.config import Settings
from shared.db.engine import make_engine, session_factory
from shared.db.migrate import upgrade
from shared.events import Event
from tests.support import PRESETS
from worker.api.app import Services, create_app
from worker.api.service import webhooks
from worker.events.apply import Outcome, apply_event
from worker.policies.book import PolicyBook

TOKEN = "read-token-for-freshdesk-tests"
SECRET = "freshdesk-shared-secret"
BASIC = "Basic " + base64.b64encode(f"escalera:{SECRET}".encode()).decode()
POSTED = {"authorization": BASIC, "content-type": "application/json"}
READ = {"authorization": f"Bearer {TOKEN}"}


class Recorder:
    """A publisher that keeps what it is given (the real one LPUSHes to Redis)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def publish(self, events: Sequence[Event]) -> None:
        self.events.extend(events)


class Desk:
    """The ingest app with a recorder for a queue, and the worker's apply step."""

    def __init__(self, config: Settings) -> None:
        self.recorder = Recorder()
        self.services = Services(
            settings=config,
            policies=PolicyBook.from_settings(config),
            publisher=self.recorder,
            sessions=session_factory(make_engine(config.database_url)),
            webhooks=webhooks(config),
            redis_ping=lambda: True,
        )
        self.client = TestClient(create_app(self.services))

    def post(self, body: dict[str, Any]) -> list[Outcome]:
        """Post one rule body as Freshdesk does; apply what was published; the outcomes."""
        before = len(self.recorder.events)
        raw = json.dumps(body).encode()
        response = self.client.post("/v1/webhooks/freshdesk", content=raw, headers=POSTED)
        assert response.status_code == 202, response.text
        with self.services.sessions.begin() as session:
            return [
                apply_event(session, self.services.policies, event, datetime.now(UTC)).outcome
                for event in self.recorder.events[before:]
            ]

    def ticket(self, ticket_id: str) -> dict[str, Any]:
        response = self.client.get(f"/v1/tickets/freshdesk/{ticket_id}", headers=READ)
        assert response.status_code == 200, response.text
        read: dict[str, Any] = response.json()
        return read


def settings(tmp_path: Path, integrations: str | None = None) -> Settings:
    url = f"sqlite:///{tmp_path / 'freshdesk.db'}"
    upgrade(url)
    found = None
    if integrations is not None:
        found = tmp_path / "integrations.yaml"
        found.write_text(integrations)
    return Settings(
        database_url=url,
        policy_dir=PRESETS,
        default_policy="soporte-completo",
        api_tokens=[SecretStr(TOKEN)],
        freshdesk_secret=SecretStr(SECRET),
        integrations=found,
    )


@pytest.fixture
def desk(tmp_path: Path) -> Desk:
    return Desk(settings(tmp_path))


def old_body(triggered: str, status: str, **extra: Any) -> dict[str, Any]:
    """The rule body documented before, rendered: it carries no time."""
    return {
        "ticket_id": "10542",
        "triggered_event": triggered,
        "status": status,
        "priority": "High",
        "requester_email": "j.doe@fabrikam.example",
        "company": "Fabrikam",
        "group": "L1 Service Desk",
        "latest_public_comment": "",
        "latest_private_comment": "",
        **extra,
    }


def rendered(at: datetime) -> str:
    """``{{ticket.modified_on}}`` as Rails renders a UTC time."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def test_pending_open_pending_ends_pending_with_its_clock_paused(desk: Desk) -> None:
    """Story 3 end to end: the two Pending bodies are byte-identical; the ticket ends pending."""
    desk.post(old_body("{ticket_action:created}", "Open"))
    outcomes = [
        *desk.post(old_body("{status:{from:2,to:3}}", "Pending")),
        *desk.post(old_body("{status:{from:3,to:2}}", "Open")),
        *desk.post(old_body("{status:{from:2,to:3}}", "Pending")),
    ]
    assert outcomes == [Outcome.APPLIED] * 3
    read = desk.ticket("10542")
    assert (read["priority"], read["status"]) == ("P2", "pending")
    assert read["metrics"]["first_response"]["state"] == "paused"


def test_a_retried_reply_is_applied_once(desk: Desk) -> None:
    """Freshdesk resends a reply's body after a failed attempt: the worker stores it once; the
    requester's own reply before it never counted as a response; the read shows the context."""
    now = datetime.now(UTC)
    created = {
        **old_body("{ticket_action:created}", "Open"),
        "updated_at": rendered(now - timedelta(minutes=30)),
        "requester_id": "80012345678",
        "subject": "Printer queue stuck\non floor 3",
        "source_channel": "Portal",
    }
    desk.post(created)
    by_requester = {
        **created,
        "triggered_event": "{reply_sent:sent}",
        "updated_at": rendered(now - timedelta(minutes=20)),
        "performer_id": "80012345678",
        "event": "agent_replied",  # an agent rule, but the performer asked: not a response
        "latest_public_comment": "Any news?",
    }
    assert desk.post(by_requester) == [Outcome.APPLIED]
    assert desk.ticket("10542")["metrics"]["first_response"]["state"] == "running"
    reply = {
        **by_requester,
        "updated_at": rendered(now - timedelta(minutes=10)),
        "performer_id": "80000000017",
        "latest_public_comment": "A technician is on the way.",
    }
    assert desk.post(reply) == [Outcome.APPLIED]
    assert desk.post(reply) == [Outcome.DUPLICATE]
    read = desk.ticket("10542")
    assert read["metrics"]["first_response"]["state"] == "met"
    shown = {key: read["ticket"][key] for key in ("subject", "channel", "requester_id")}
    assert shown == {
        "subject": "Printer queue stuck on floor 3",
        "channel": "web",
        "requester_id": "80012345678",
    }


def test_the_integration_settings_file_reaches_the_webhook(tmp_path: Path) -> None:
    """A custom status mapped by name in ESCALERA_INTEGRATIONS pauses the clock; a group mapped
    to tier 2 escalates the ticket."""
    desk = Desk(
        settings(
            tmp_path,
            "freshdesk:\n"
            "  statuses:\n    Waiting on Finance: on_hold\n"
            "  groups:\n    L2 Field Services: 2\n",
        )
    )
    desk.post(old_body("{ticket_action:created}", "Open"))
    desk.post(old_body("{group_id:{from:1,to:2}}", "Open", group="L2 Field Services"))
    desk.post(old_body("{status:{from:2,to:9}}", "Waiting on Finance"))
    read = desk.ticket("10542")
    assert (read["status"], read["tier"]) == ("on_hold", 2)
    assert read["metrics"]["first_response"]["state"] == "paused"
