"""The ingest HTTP API in-process: what it accepts, what it refuses and how it says so."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from shared.config import Settings
from shared.db.engine import make_engine, session_factory
from shared.db.migrate import upgrade
from shared.events import Event
from tests.support import PRESETS
from worker.adapters.signatures import sign_escalera, sign_jira, sign_zendesk
from worker.api.app import Services, create_app
from worker.api.service import webhooks
from worker.events.apply import apply_event
from worker.policies.book import PolicyBook

TOKEN = "t0ken-for-tests"
READ = {"authorization": f"Bearer {TOKEN}"}  # a legacy token reads tickets too
HMAC_SECRET = "hmac-secret-for-tests"
ZENDESK_SECRET = "zendesk-signing-secret"
JIRA_SECRET = "jira-signing-secret"
FRESHDESK_SECRET = "freshdesk-shared-secret"


class Recorder:
    """A publisher that keeps what it is given (the real one LPUSHes to Redis)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def publish(self, events: Sequence[Event]) -> None:
        self.events.extend(events)


@pytest.fixture
def config(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    url = f"sqlite:///{tmp_path_factory.mktemp('ingest') / 'e.db'}"
    upgrade(url)
    return Settings(
        database_url=url,
        policy_dir=PRESETS,
        default_policy="soporte-completo",
        api_tokens=[SecretStr(TOKEN)],
        api_hmac_secret=SecretStr(HMAC_SECRET),
        zendesk_secret=SecretStr(ZENDESK_SECRET),
        jira_secret=SecretStr(JIRA_SECRET),
        freshdesk_secret=SecretStr(FRESHDESK_SECRET),
        max_body_bytes=64 * 1024,
        max_event_age_days=36500,  # its events are dated 2026-03-02, whenever the tests run
    )


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def services(config: Settings, recorder: Recorder) -> Services:
    return Services(
        settings=config,
        policies=PolicyBook.from_settings(config),
        publisher=recorder,
        sessions=session_factory(make_engine(config.database_url)),
        webhooks=webhooks(config),
        redis_ping=lambda: True,
    )


@pytest.fixture
def client(services: Services) -> TestClient:
    return TestClient(create_app(services))


def canonical(**overrides: Any) -> dict[str, Any]:
    return {
        "event_id": "e-1",
        "ticket_id": "T-1",
        "type": "created",
        "occurred_at": "2026-03-02T09:00:00-06:00",
        "priority": "Crítico",
        **overrides,
    }


def post_events(client: TestClient, body: Any, **headers: str) -> Any:
    return client.post(
        "/v1/events",
        content=json.dumps(body),
        headers={"content-type": "application/json", "authorization": f"Bearer {TOKEN}", **headers},
    )


def test_a_canonical_event_is_accepted_and_queued(client: TestClient, recorder: Recorder) -> None:
    """202 with the count, and the event is on the queue."""
    response = post_events(client, canonical())
    assert (response.status_code, response.json()) == (202, {"accepted": 1})
    assert [e.event_id for e in recorder.events] == ["e-1"]


def test_a_batch_is_accepted_whole(client: TestClient, recorder: Recorder) -> None:
    """An array of events is queued in full."""
    batch = [canonical(event_id=f"e-{i}", ticket_id=f"T-{i}") for i in range(50)]
    assert post_events(client, batch).json() == {"accepted": 50}
    assert len(recorder.events) == 50


def test_a_batch_with_one_bad_event_is_refused_whole(
    client: TestClient, recorder: Recorder
) -> None:
    """One naive timestamp in a batch: 422 naming its index and field, nothing queued."""
    batch = [canonical(event_id="a"), canonical(event_id="b", occurred_at="2026-03-02T09:00:00")]
    response = post_events(client, batch)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["field"] == "[1].occurred_at"
    assert recorder.events == []


@pytest.mark.parametrize(
    ("headers", "reason"),
    [({"authorization": "Bearer wrong"}, "not valid"), ({"authorization": ""}, "missing")],
)
def test_wrong_or_missing_credentials_are_refused(
    client: TestClient, recorder: Recorder, headers: dict[str, str], reason: str
) -> None:
    """401, with a reason that does not echo the token, and nothing queued."""
    response = post_events(client, canonical(), **headers)
    assert response.status_code == 401
    assert reason in response.json()["detail"] and TOKEN not in response.text
    assert recorder.events == []


def test_an_hmac_signed_request_is_accepted_and_a_stale_one_refused(
    client: TestClient, recorder: Recorder
) -> None:
    """Signed with the shared secret and a fresh timestamp: 202; ten minutes old: 401."""
    body = json.dumps(canonical()).encode()
    now = datetime.now(UTC)
    fresh = client.post(
        "/v1/events",
        content=body,
        headers={"content-type": "application/json", **sign_escalera(body, HMAC_SECRET, now)},
    )
    stale = client.post(
        "/v1/events",
        content=body,
        headers={
            "content-type": "application/json",
            **sign_escalera(body, HMAC_SECRET, now - timedelta(minutes=10)),
        },
    )
    assert (fresh.status_code, stale.status_code) == (202, 401)
    assert len(recorder.events) == 1


def test_malformed_json_is_a_400(client: TestClient) -> None:
    """Broken JSON says where it breaks."""
    response = client.post(
        "/v1/events",
        content=b'{"event_id": ',
        headers={"content-type": "application/json", "authorization": f"Bearer {TOKEN}"},
    )
    assert response.status_code == 400
    assert "malformed JSON at line 1" in response.json()["detail"]


def test_wrong_content_type_is_a_415(client: TestClient) -> None:
    """Form data is refused with the type it expected."""
    response = client.post(
        "/v1/events",
        content=b"a=b",
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "authorization": f"Bearer {TOKEN}",
        },
    )
    assert response.status_code == 415


def test_a_body_over_the_limit_is_a_413(client: TestClient, recorder: Recorder) -> None:
    """Past the configured limit (64 KiB here) the request is refused unread."""
    response = post_events(
        client, [canonical(event_id=f"e-{i}", requester="x" * 200) for i in range(400)]
    )
    assert response.status_code == 413
    assert recorder.events == []


def test_an_unknown_event_type_is_refused_with_the_allowed_ones(client: TestClient) -> None:
    """A type outside the contract is a 422 that lists what is allowed."""
    response = post_events(client, canonical(type="ticket_exploded"))
    assert response.status_code == 422
    assert response.json()["field"] == "type" and "agent_replied" in response.json()["detail"]


def test_an_unknown_priority_is_refused_at_the_door(client: TestClient) -> None:
    """The policy does not know 'Gravísimo': 422 with the known priorities, not a dead letter later."""
    response = post_events(client, canonical(priority="Gravísimo"))
    assert response.status_code == 422
    assert "unknown priority 'Gravísimo' (known: P1, P2, P3)" in response.json()["detail"]


def test_a_signed_zendesk_webhook_is_accepted(client: TestClient, recorder: Recorder) -> None:
    """A Zendesk ticket-created event with a valid signature becomes a canonical created event."""
    payload = {
        "id": "01HZ-zendesk-event-1",
        "type": "zen:event-type:ticket.created",
        "time": "2026-03-02T15:00:00Z",
        "subject": "zen:ticket:4021",
        "account_id": 1,
        "detail": {
            "id": "4021",
            "priority": "URGENT",
            "status": "NEW",
            "requester_id": "9",
            "organization_id": "77",
            "created_at": "2026-03-02T15:00:00Z",
            "updated_at": "2026-03-02T15:00:00Z",
        },
        "event": {},
    }
    body = json.dumps(payload).encode()
    headers = {
        "content-type": "application/json",
        **sign_zendesk(body, ZENDESK_SECRET, datetime.now(UTC)),
    }
    response = client.post("/v1/webhooks/zendesk", content=body, headers=headers)
    assert response.status_code == 202, response.text
    (created,) = recorder.events
    assert (created.source, created.ticket_id, created.type.value) == ("zendesk", "4021", "created")


def test_a_forged_jira_webhook_is_refused(client: TestClient, recorder: Recorder) -> None:
    """Signed with another secret: 401 and nothing queued."""
    body = b'{"webhookEvent": "jira:issue_created"}'
    response = client.post(
        "/v1/webhooks/jira",
        content=body,
        headers={"content-type": "application/json", **sign_jira(body, "not-the-secret")},
    )
    assert response.status_code == 401
    assert recorder.events == []


def test_a_webhook_from_an_unknown_portal_is_refused(client: TestClient) -> None:
    """Only configured portals are accepted."""
    response = client.post(
        "/v1/webhooks/otrs", content=b"{}", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert "unknown source 'otrs'" in response.json()["detail"]


def test_stored_ticket_is_served_in_the_simulate_shape(
    client: TestClient, services: Services
) -> None:
    """GET /v1/tickets returns the same document simulate prints for the ticket."""
    with services.sessions.begin() as session:
        apply_event(
            session, services.policies, Event.model_validate(canonical()), datetime.now(UTC)
        )
    response = client.get(
        "/v1/tickets/api/T-1", params={"at": "2026-03-02T09:20:00-06:00"}, headers=READ
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["priority"], body["metrics"]["first_response"]["state"]) == ("P1", "running")
    assert body["metrics"]["first_response"]["due_at"] == "2026-03-02T09:30:00-06:00"


def test_unknown_ticket_is_a_404(client: TestClient) -> None:
    """A ticket Escalera never heard of is a 404 problem."""
    response = client.get("/v1/tickets/api/nope", headers=READ)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_health_and_readiness(client: TestClient, services: Services) -> None:
    """healthz answers; readyz reports each dependency."""
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert {k: ready[k] for k in ("ready", "checks")} == {
        "ready": True,
        "checks": {"database": True, "redis": True},
    }
    assert ready["policies"]["origin"] == "folder" and len(ready["policies"]["hash"]) >= 8


def test_readiness_fails_when_redis_does_not_answer(services: Services) -> None:
    """A dead Redis makes readyz 503, naming it."""
    broken = Services(
        **{**services.__dict__, "redis_ping": lambda: (_ for _ in ()).throw(ConnectionError())}
    )
    response = TestClient(create_app(broken)).get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": True, "redis": False}


def test_openapi_is_served(client: TestClient) -> None:
    """The API documents itself at /docs and /openapi.json."""
    assert client.get("/docs").status_code == 200
    assert "/v1/webhooks/{source}" in client.get("/openapi.json").json()["paths"]
