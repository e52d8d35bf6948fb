"""Keys with scopes: nothing is read or written without a key that may do it (issue 13, 2 and 5).

The hostile app has the legacy token (``api-token-1``: every scope, writes ``api`` only) and three
keys of one scope each: ``reader``, ``zendesk-sync`` (writes ``api`` and ``zendesk``) and
``pager`` (acknowledges). Every request goes through the `Gate`: no 5xx, refusals queue nothing.
"""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError

from shared.config import ApiKey, Settings
from shared.events import Event
from tests.hostile.gate import Gate
from tests.hostile.secrets import (
    ACKER_TOKEN,
    HMAC_SECRET,
    READER_TOKEN,
    TOKEN,
    WRITER_TOKEN,
    ZENDESK_SECRET,
)
from tests.support import ROOT
from worker.adapters.signatures import sign_escalera, sign_zendesk
from worker.api.app import Services, create_app
from worker.api.keys import Scope, authorize
from worker.events.apply import apply_event

NOW = datetime.now(UTC).replace(microsecond=0)
ZENDESK = ROOT / "tests" / "fixtures" / "webhooks" / "zendesk"
READS = ["/v1/tickets/api/H-1", "/v1/reports/at-risk", "/metrics"]


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", "content-type": "application/json"}


def refused(response: httpx.Response, status: int, field: str | None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    problem: dict[str, Any] = response.json()
    assert problem.get("field") == field, problem
    return problem


def event(**overrides: Any) -> dict[str, Any]:
    return {
        "event_id": "k-1",
        "ticket_id": "K-1",
        "type": "created",
        "occurred_at": (NOW - timedelta(hours=1)).isoformat(),
        "priority": "P1",
        **overrides,
    }


def post(gate: Gate, body: Any, headers: dict[str, str]) -> httpx.Response:
    return gate.send("POST", "/v1/events", content=json.dumps(body).encode(), headers=headers)


def zendesk_created() -> dict[str, Any]:
    """Zendesk's recorded ticket.created, sent five minutes ago."""
    webhook: dict[str, Any] = json.loads((ZENDESK / "ticket_created.json").read_text())
    webhook["time"] = (NOW - timedelta(minutes=5)).isoformat()
    return webhook


def queued(gate: Gate) -> list[Event]:
    """The events on the test's queue, oldest first, as the worker will read them."""
    events = []
    for raw in reversed(gate.redis.lrange(gate.queue_key, 0, -1)):
        args, _kwargs, _embed = json.loads(base64.b64decode(json.loads(raw)["body"]))
        events.append(Event.model_validate(args[0]))
    return events


@pytest.mark.parametrize("path", READS)
def test_reads_without_a_key_are_refused(gate: Gate, path: str) -> None:
    """Tickets, reports and metrics answer 401 to a request without a key or with a wrong one."""
    refused(gate.send("GET", path), 401, "authorization")
    refused(gate.send("GET", path, headers=bearer(READER_TOKEN + "x")), 401, "authorization")


@pytest.mark.parametrize("path", READS)
@pytest.mark.parametrize("token", [WRITER_TOKEN, ACKER_TOKEN])
def test_reads_with_a_key_without_the_read_scope_are_forbidden(
    gate: Gate, path: str, token: str
) -> None:
    """A valid key without `read`: 403 naming the key, never its token."""
    problem = refused(gate.send("GET", path, headers=bearer(token)), 403, "authorization")
    assert "has no `read` scope" in problem["detail"]
    assert token not in problem["detail"]


@pytest.mark.parametrize("token", [READER_TOKEN, TOKEN])
def test_a_read_key_and_a_legacy_token_read(gate: Gate, token: str) -> None:
    """The reader key and a legacy token (it kept its reads) get tickets, reports and metrics."""
    assert gate.send("GET", "/v1/tickets/api/H-1", headers=bearer(token)).status_code == 404
    assert gate.send("GET", "/v1/reports/at-risk", headers=bearer(token)).status_code == 200
    scraped = gate.send("GET", "/metrics", headers=bearer(token))
    assert scraped.status_code == 200
    assert "escalera_events_ingested" in scraped.text


@pytest.mark.parametrize("token", [READER_TOKEN, ACKER_TOKEN])
def test_writing_without_the_write_scope_is_forbidden(gate: Gate, token: str) -> None:
    refused(post(gate, event(), bearer(token)), 403, "authorization")


def test_a_legacy_token_writes_api_but_no_portal(gate: Gate) -> None:
    """Issue 13, 5: an API token wrote as Zendesk. Now 403 naming the event's source field."""
    assert post(gate, event(), bearer(TOKEN)).status_code == 202
    batch = [event(event_id="k-2"), event(event_id="k-3", source="zendesk")]
    problem = refused(post(gate, batch, bearer(TOKEN)), 403, "[1].source")
    assert "'api-token-1' may not write source 'zendesk'" in problem["detail"]
    refused(post(gate, event(source="zendesk"), bearer(TOKEN)), 403, "source")


def test_a_signed_write_may_write_api_only(gate: Gate) -> None:
    """The HMAC writes the sources of ESCALERA_API_HMAC_SOURCES: `api` unless configured."""
    body = json.dumps([event(source="jira")]).encode()
    headers = {"content-type": "application/json", **sign_escalera(body, HMAC_SECRET, NOW)}
    refused(gate.send("POST", "/v1/events", content=body, headers=headers), 403, "[0].source")


def test_a_key_writes_the_sources_it_names_under_the_api_namespace(gate: Gate) -> None:
    """zendesk-sync writes zendesk: its ids are stored as `api:<id>`; an `api` event's as sent."""
    batch = [event(event_id="z-1", source="zendesk"), event(event_id="a-1")]
    assert post(gate, batch, bearer(WRITER_TOKEN)).status_code == 202
    assert [(e.source, e.event_id) for e in queued(gate)] == [
        ("zendesk", "api:z-1"),
        ("api", "a-1"),
    ]


def test_an_api_event_cannot_make_the_genuine_webhook_a_duplicate(
    gate: Gate, services: Services
) -> None:
    """Issue 13, 5: an API event reusing a portal's event id; the signed webhook still counts."""
    webhook = zendesk_created()
    forged = event(
        event_id=webhook["id"], source="zendesk", ticket_id=webhook["detail"]["id"], priority="P3"
    )
    assert post(gate, forged, bearer(WRITER_TOKEN)).status_code == 202
    body = json.dumps(webhook).encode()
    headers = {"content-type": "application/json", **sign_zendesk(body, ZENDESK_SECRET, NOW)}
    assert (
        gate.send("POST", "/v1/webhooks/zendesk", content=body, headers=headers).status_code == 202
    )
    outcomes = []
    for queued_event in queued(gate):
        with services.sessions.begin() as session:
            applied = apply_event(session, services.policies, queued_event, NOW)
            outcomes.append(applied.outcome.value)
    assert outcomes == ["applied", "applied"]  # the webhook is not taken for a duplicate


def test_a_webhook_event_id_in_the_api_namespace_is_refused(gate: Gate) -> None:
    """No adapter-derived id may start `api:`: that prefix is the API's alone."""
    webhook = {**zendesk_created(), "id": "api:k-1"}
    body = json.dumps(webhook).encode()
    headers = {"content-type": "application/json", **sign_zendesk(body, ZENDESK_SECRET, NOW)}
    response = gate.send("POST", "/v1/webhooks/zendesk", content=body, headers=headers)
    refused(response, 422, "event_id")


def test_an_id_with_no_room_for_the_namespace_is_refused(gate: Gate) -> None:
    """A 256-character id for a portal source would not fit once prefixed: 422, naming it."""
    long_id = "x" * 256
    refused(
        post(gate, [event(event_id=long_id, source="zendesk")], bearer(WRITER_TOKEN)),
        422,
        "[0].event_id",
    )
    assert post(gate, [event(event_id=long_id)], bearer(WRITER_TOKEN)).status_code == 202


def test_docs_can_be_turned_off(config: Settings, services: Services) -> None:
    """ESCALERA_API_DOCS=false: /docs, /redoc and /openapi.json are gone (404 problem)."""
    on = TestClient(create_app(services))
    assert on.get("/openapi.json").status_code == 200
    assert on.get("/docs").status_code == 200
    off = TestClient(create_app(_replace(services, config.model_copy(update={"api_docs": False}))))
    for path in ("/docs", "/redoc", "/openapi.json"):
        response = off.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/problem+json"


def test_legacy_tokens_are_keys_named_by_their_position(config: Settings) -> None:
    """ESCALERA_API_TOKENS keep working: api-token-N, every scope, writing `api` only."""
    second = config.model_copy(update={"api_tokens": [SecretStr(TOKEN), SecretStr("second-token")]})
    key = authorize(second, {"authorization": "Bearer second-token"}, Scope.ACK)
    assert (key.name, key.sources) == ("api-token-2", frozenset({"api"}))
    assert authorize(config, {"authorization": f"Bearer {ACKER_TOKEN}"}, Scope.ACK).name == "pager"


@pytest.mark.parametrize(
    ("keys", "says"),
    [
        ([{"name": "a", "token": "t" * 20, "scopes": ["read", "delete"]}], "api_keys.0.scopes.1"),
        ([{"name": "a", "token": "short", "scopes": ["read"]}], "at least 16 characters"),
        (
            [
                {"name": "a", "token": "t" * 20, "scopes": ["read"]},
                {"name": "a", "token": "u" * 20, "scopes": ["read"]},
            ],
            "ESCALERA_API_KEYS[1]: the name 'a' is taken",
        ),
        (
            [
                {"name": "a", "token": "t" * 20, "scopes": ["read"]},
                {"name": "b", "token": "t" * 20, "scopes": ["write"]},
            ],
            "ESCALERA_API_KEYS[1] ('b') has the token of 'a'",
        ),
        ([{"name": "api-token-1", "token": "t" * 20, "scopes": ["read"]}], "is taken"),
        (  # narrowed in a key but left among the legacy tokens: it would keep every scope
            [{"name": "ops", "token": "legacy-token-value", "scopes": ["read"]}],
            "ESCALERA_API_KEYS[0] ('ops') has the token of 'api-token-1' of ESCALERA_API_TOKENS",
        ),
    ],
)
def test_a_bad_key_list_fails_at_start_naming_the_entry(
    monkeypatch: pytest.MonkeyPatch, keys: list[dict[str, Any]], says: str
) -> None:
    """ESCALERA_API_KEYS that cannot work is refused when read, naming the entry; no token shown."""
    monkeypatch.setenv("ESCALERA_API_KEYS", json.dumps(keys))
    monkeypatch.setenv("ESCALERA_API_TOKENS", json.dumps(["legacy-token-value"]))
    with pytest.raises(ValidationError) as raised:
        Settings()
    assert says in str(raised.value)
    assert "t" * 20 not in str(raised.value) and "short" not in str(raised.value).split("]")[-1]


def test_a_key_with_sources_is_built_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = [{"name": "sync", "token": "s" * 20, "scopes": ["write"], "sources": ["jira"]}]
    monkeypatch.setenv("ESCALERA_API_KEYS", json.dumps(keys))
    loaded = Settings().api_keys
    assert loaded == [
        ApiKey(name="sync", token=SecretStr("s" * 20), scopes=["write"], sources=["jira"])
    ]
    assert str(loaded[0].token) == "**********"


def _replace(services: Services, config: Settings) -> Services:
    return replace(services, settings=config)
