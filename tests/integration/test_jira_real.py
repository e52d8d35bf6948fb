"""Jira Cloud webhooks through the HTTP app, the store and the ticket read, as a desk would see.

The payloads are the Cloud shapes of tests/fixtures/webhooks/jira/ (cloud_*.json; where each
shape comes from: that folder's SOURCES.md): a ``jira:issue_created`` naming the reporter, and
``comment_created`` deliveries whose reduced issue has no ``fields.reporter``. They are re-dated
to now, signed with ``X-Hub-Signature`` and carry ``X-Atlassian-Webhook-Identifier`` as Jira
sends them; the desk's integration settings file maps Jira's ``Highest`` to the policy's P1. A
summary edit is that folder's ``cloud_issue_updated_group`` with a ``summary`` changelog item as
github.com/sirajju/skill-sync ``webhook/JIRA.js`` (a real Cloud delivery) shows one.
"""

from __future__ import annotations

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
from tests.unit.adapter_support import Fixtures
from worker.adapters.signatures import sign_jira
from worker.api.app import Services, create_app
from worker.api.service import webhooks
from worker.events.apply import Outcome, apply_event
from worker.policies.book import PolicyBook

SECRET = "jira-signing-secret-for-tests"
TOKEN = "read-token-for-jira-tests"
READ = {"authorization": f"Bearer {TOKEN}"}
FIXTURES = Fixtures("jira")
SETTINGS = """\
jira:
  organization_field: customfield_10002
  priorities: {Highest: P1}
"""


class Recorder:
    """A publisher that keeps what it is given (the real one LPUSHes to Redis)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def publish(self, events: Sequence[Event]) -> None:
        self.events.extend(events)


@pytest.fixture
def services(tmp_path: Path) -> Services:
    url = f"sqlite:///{tmp_path / 'jira.db'}"
    upgrade(url)
    (tmp_path / "integrations.yaml").write_text(SETTINGS)
    config = Settings(
        database_url=url,
        policy_dir=PRESETS,
        default_policy="soporte-completo",
        api_tokens=[SecretStr(TOKEN)],
        jira_secret=SecretStr(SECRET),
        integrations=tmp_path / "integrations.yaml",
    )
    return Services(
        settings=config,
        policies=PolicyBook.from_settings(config),
        publisher=Recorder(),
        sessions=session_factory(make_engine(config.database_url)),
        webhooks=webhooks(config),
        redis_ping=lambda: True,
    )


class Desk:
    """Jira delivering to the app, and the worker applying what was queued."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.client = TestClient(create_app(services))
        self.now = datetime.now(UTC).replace(microsecond=0)
        assert isinstance(services.publisher, Recorder)
        self.queued = services.publisher.events

    def deliver(
        self, name: str | dict[str, Any], minutes_ago: int, identifier: str, **headers: str
    ) -> int:
        """POST fixture ``name`` (or a payload) re-dated ``minutes_ago``, signed, as Jira does."""
        payload = FIXTURES.load(name) if isinstance(name, str) else name
        raw = json.dumps(redated(payload, self.now - timedelta(minutes=minutes_ago))).encode()
        response = self.client.post(
            "/v1/webhooks/jira",
            content=raw,
            headers={
                "content-type": "application/json",
                "x-atlassian-webhook-identifier": identifier,
                "x-atlassian-webhook-flow": "Primary",
                **sign_jira(raw, SECRET),
                **headers,
            },
        )
        status: int = response.status_code
        return status

    def apply_queued(self) -> list[Outcome]:
        with self.services.sessions.begin() as session:
            outcomes = [
                apply_event(session, self.services.policies, event, self.now).outcome
                for event in self.queued
            ]
        self.queued.clear()
        return outcomes

    def ticket(self) -> dict[str, Any]:
        response = self.client.get(
            "/v1/tickets/jira/IT-1042", params={"at": self.now.isoformat()}, headers=READ
        )
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    def first_response(self) -> str:
        state: str = self.ticket()["metrics"]["first_response"]["state"]
        return state


def redated(payload: dict[str, Any], at: datetime) -> dict[str, Any]:
    """``payload`` as raised at ``at``: its epoch-ms timestamp and its own time."""
    payload["timestamp"] = int(at.timestamp() * 1000)
    stamp = at.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    fields = payload["issue"]["fields"]
    if "comment" in payload:
        payload["comment"]["created"] = payload["comment"]["updated"] = stamp
    elif payload["webhookEvent"] == "jira:issue_created":
        fields["created"] = fields["updated"] = stamp
    else:
        fields["updated"] = stamp
    return payload


def test_the_requesters_comment_leaves_first_response_open_until_an_agent_answers(
    services: Services,
) -> None:
    """Story 2 end to end: created by Ana (an Atlassian account), her comment arrives as
    comment_created without the reporter and does not meet first response; Luis's does."""
    desk = Desk(services)
    assert desk.deliver("cloud_issue_created", 30, "d-created") == 202
    assert desk.deliver("cloud_comment_created_requester", 20, "d-ana") == 202
    assert desk.apply_queued() == [Outcome.APPLIED, Outcome.APPLIED]
    assert desk.first_response() != "met"
    assert desk.deliver("cloud_comment_created_agent", 10, "d-luis") == 202
    desk.apply_queued()
    assert desk.first_response() == "met"


def test_a_retried_delivery_counts_once(services: Services) -> None:
    """Jira retries with the same identifier and body (plus X-Atlassian-Webhook-Retry): both
    answered 202, the second is a duplicate in the store."""
    desk = Desk(services)
    desk.deliver("cloud_issue_created", 30, "d-created")
    desk.deliver("cloud_comment_created_agent", 10, "d-luis")
    desk.deliver("cloud_comment_created_agent", 10, "d-luis", **{"x-atlassian-webhook-retry": "1"})
    assert desk.apply_queued() == [Outcome.APPLIED, Outcome.APPLIED, Outcome.DUPLICATE]
    assert desk.first_response() == "met"


def test_pending_open_pending_leaves_the_ticket_pending(services: Services) -> None:
    """Three status changes, two of them to the same status: each has its own changelog id and
    delivery identifier, so none is taken for a retry, and the ticket ends pending."""
    desk = Desk(services)
    desk.deliver("cloud_issue_created", 30, "d-created")
    moves = [
        ("Waiting for support", "Waiting for customer"),
        ("Waiting for customer", "In Progress"),
    ]
    moves.append(("In Progress", "Waiting for customer"))
    for minutes_ago, (changelog, (before, after)) in zip(
        (20, 15, 10), enumerate(moves, start=30900), strict=True
    ):
        payload = FIXTURES.load("cloud_issue_updated_group")
        payload["changelog"] = {
            "id": str(changelog),
            "items": [
                {
                    "field": "Status",
                    "fieldtype": "jira",
                    "fieldId": "status",
                    "fromString": before,
                    "toString": after,
                }
            ],
        }
        assert desk.deliver(payload, minutes_ago, f"d-{changelog}") == 202
    assert desk.apply_queued() == [Outcome.APPLIED] * 4
    assert desk.ticket()["status"] == "pending"


def summary_edit(summary: str) -> dict[str, Any]:
    """A real Cloud jira:issue_updated whose only change is the summary (a test helper)."""
    payload = FIXTURES.load("cloud_issue_updated_group")
    old = payload["issue"]["fields"]["summary"]
    payload["issue_event_type_name"] = "issue_updated"
    payload["issue"]["fields"]["summary"] = summary
    payload["changelog"] = {
        "id": "30931",
        "items": [
            {
                "field": "summary",
                "fieldtype": "jira",
                "fieldId": "summary",
                "from": None,
                "fromString": old,
                "to": None,
                "toString": summary,
            }
        ],
    }
    return payload


def test_a_summary_edit_is_stored_once_shown_and_moves_no_clock(services: Services) -> None:
    """An agent renames the request; Jira retries the delivery. Both answered 202, the retry a
    duplicate; the ticket shows the new subject and its SLA is what it was."""
    desk = Desk(services)
    desk.deliver("cloud_issue_created", 30, "d-created")
    desk.apply_queued()
    before = desk.ticket()
    renamed = "VPN drops every 10 minutes (Madrid and Bilbao offices)"
    assert desk.deliver(summary_edit(renamed), 20, "d-edit") == 202
    retry = {"x-atlassian-webhook-retry": "1"}
    assert desk.deliver(summary_edit(renamed), 20, "d-edit", **retry) == 202
    assert desk.apply_queued() == [Outcome.APPLIED, Outcome.DUPLICATE]
    after = desk.ticket()
    assert (before["ticket"]["subject"], after["ticket"]["subject"]) == (
        "VPN drops every 10 minutes (Madrid office)",
        renamed,
    )
    assert after["metrics"] == before["metrics"]
