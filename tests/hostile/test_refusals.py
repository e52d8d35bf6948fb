"""Each kind of hostile request is refused with the right status and a reason naming the field.

What tests/integration/test_ingest_api.py and tests/unit/test_signatures.py already show is not
repeated here (a wrong bearer token, a stale HMAC, malformed JSON, a form body, a body whose
Content-Length is over the limit, a naive time in a batch, an unknown type or priority, a forged
Jira signature, every signature scheme's unit checks). Every request goes through the `Gate`:
nothing refused reaches the Redis queue.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from shared.config import Settings
from shared.events import Event
from tests.hostile.conftest import MAX_BODY
from tests.hostile.gate import Gate
from tests.hostile.secrets import (
    FRESHDESK_SECRET,
    HMAC_SECRET,
    JIRA_SECRET,
    TOKEN,
    ZENDESK_SECRET,
)
from tests.support import ROOT
from worker.adapters.signatures import sign_escalera, sign_jira, sign_zendesk
from worker.api.window import EventWindow

FIXTURES = ROOT / "tests" / "fixtures" / "webhooks"
JSON = {"content-type": "application/json"}
BEARER = {**JSON, "authorization": f"Bearer {TOKEN}"}
# Event times only: a signature is made at the moment its request is sent (the suite may run
# for minutes after this module is imported, and signatures go stale in five).
NOW = datetime.now(UTC).replace(microsecond=0)


def refused(response: httpx.Response, status: int, field: str | None, says: str = "") -> None:
    """A problem document with ``status``, naming ``field``, whose detail contains ``says``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem.get("field") == field, problem
    assert says in problem["detail"], problem


def event(**overrides: Any) -> dict[str, Any]:
    return {
        "event_id": "h-1",
        "ticket_id": "H-1",
        "type": "created",
        "occurred_at": (NOW - timedelta(hours=1)).isoformat(),
        "priority": "P1",
        **overrides,
    }


def post_events(gate: Gate, body: Any, headers: dict[str, str] = BEARER) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return gate.send("POST", "/v1/events", content=content, headers=headers)


def recorded(portal: str, name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / portal / f"{name}.json").read_text())
    return loaded


def zendesk_reply(at: str) -> dict[str, Any]:
    payload = recorded("zendesk", "comment_added_public_agent")
    payload["time"] = at
    return payload


def post_zendesk(gate: Gate, payload: Any, signed_at: datetime | None = None) -> httpx.Response:
    body = json.dumps(payload).encode()
    headers = sign_zendesk(body, ZENDESK_SECRET, signed_at or datetime.now(UTC))
    return gate.send("POST", "/v1/webhooks/zendesk", content=body, headers={**JSON, **headers})


def post_jira(gate: Gate, body: bytes, secret: str = JIRA_SECRET) -> httpx.Response:
    headers = {**JSON, **sign_jira(body, secret)}
    return gate.send("POST", "/v1/webhooks/jira", content=body, headers=headers)


def jira_comment(**changes: Any) -> dict[str, Any]:
    payload = recorded("jira", "comment_created")
    payload["timestamp"] = int(datetime.now(UTC).timestamp() * 1000)
    payload["comment"]["created"] = (NOW - timedelta(minutes=5)).isoformat()
    payload.update(changes)
    return payload


def post_freshdesk(gate: Gate, body: bytes, secret: str = FRESHDESK_SECRET) -> httpx.Response:
    headers = {**JSON, "x-escalera-webhook-secret": secret}
    return gate.send("POST", "/v1/webhooks/freshdesk", content=body, headers=headers)


# --- forged, replayed and stale credentials -------------------------------------------------------


def test_a_forged_hmac_on_events_is_refused_naming_the_signature(gate: Gate) -> None:
    """Signed with another secret: 401 on X-Escalera-Signature; the secret is not in the reason."""
    body = json.dumps(event()).encode()
    headers = {**JSON, **sign_escalera(body, "guessed-secret", datetime.now(UTC))}
    response = post_events(gate, body, headers)
    refused(response, 401, "x-escalera-signature", "does not match")
    assert HMAC_SECRET not in response.text and "guessed-secret" not in response.text


def test_a_replayed_signed_request_is_refused_once_past_the_skew(gate: Gate) -> None:
    """Sent again within five minutes it is the same event (stored once by its id); later, 401."""
    body = json.dumps(event()).encode()
    first = post_events(gate, body, {**JSON, **sign_escalera(body, HMAC_SECRET, datetime.now(UTC))})
    again = post_events(gate, body, {**JSON, **sign_escalera(body, HMAC_SECRET, datetime.now(UTC))})
    assert (first.status_code, again.status_code) == (202, 202)
    late = sign_escalera(body, HMAC_SECRET, datetime.now(UTC) - timedelta(minutes=5, seconds=5))
    refused(post_events(gate, body, {**JSON, **late}), 401, "x-escalera-timestamp", "stale")


def test_a_forged_zendesk_webhook_is_refused(gate: Gate) -> None:
    """A signature made with another secret: 401 naming the signature header."""
    body = json.dumps(zendesk_reply(NOW.isoformat())).encode()
    headers = {**JSON, **sign_zendesk(body, "not-the-secret", datetime.now(UTC))}
    response = gate.send("POST", "/v1/webhooks/zendesk", content=body, headers=headers)
    refused(response, 401, "x-zendesk-webhook-signature", "does not match")


def test_a_replayed_zendesk_delivery_is_refused_once_stale(gate: Gate) -> None:
    """The same signed delivery six minutes after it was signed: 401 on its timestamp header."""
    stale = datetime.now(UTC) - timedelta(minutes=6)
    response = post_zendesk(gate, zendesk_reply(NOW.isoformat()), signed_at=stale)
    refused(response, 401, "x-zendesk-webhook-signature-timestamp", "stale")


def test_a_zendesk_signature_timestamp_without_offset_is_refused(gate: Gate) -> None:
    """A naive signature time cannot be checked for freshness: 401 naming the header."""
    body = json.dumps(zendesk_reply(NOW.isoformat())).encode()
    headers = {
        **JSON,
        **sign_zendesk(body, ZENDESK_SECRET, datetime.now(UTC)),
        "x-zendesk-webhook-signature-timestamp": NOW.replace(tzinfo=None).isoformat(),
    }
    response = gate.send("POST", "/v1/webhooks/zendesk", content=body, headers=headers)
    refused(response, 401, "x-zendesk-webhook-signature-timestamp", "offset")


def test_a_stale_jira_delivery_is_refused(gate: Gate) -> None:
    """Jira signs no time: a body whose timestamp is 41 minutes old is refused on `timestamp`."""
    old = int((datetime.now(UTC) - timedelta(minutes=41)).timestamp() * 1000)
    response = post_jira(gate, json.dumps(jira_comment(timestamp=old)).encode())
    refused(response, 401, "timestamp", "stale")


@pytest.mark.parametrize("stamp", [10**20, -(10**20), 2**63])
def test_a_jira_timestamp_beyond_any_calendar_is_refused_not_a_crash(
    gate: Gate, stamp: int
) -> None:
    """Epoch milliseconds past year 9999 (or before year 1): 401, the delivery's age is unknown."""
    response = post_jira(gate, json.dumps(jira_comment(timestamp=stamp)).encode())
    refused(response, 401, "timestamp", "age unknown")


def test_a_wrong_freshdesk_secret_is_refused(gate: Gate) -> None:
    """Freshdesk's shared secret, wrong: 401 naming where it is sent, not the secret."""
    payload = recorded("freshdesk", "reply_sent")
    response = post_freshdesk(gate, json.dumps(payload).encode(), secret="fd-guess")
    refused(response, 401, "x-escalera-webhook-secret", "not valid")
    assert FRESHDESK_SECRET not in response.text


def test_a_non_ascii_acknowledgement_signature_is_refused_not_a_crash(gate: Gate) -> None:
    """A link's `sig` is compared as bytes: any text is a 401 naming `sig`."""
    response = gate.send("POST", "/v1/notifications/7/ack", params={"sig": "ñandú"})
    refused(response, 401, "sig", "not valid")


# --- bodies: size, nesting, encoding ------------------------------------------------------------


def chunks(body: bytes) -> Iterator[bytes]:
    for start in range(0, len(body), 4096):
        yield body[start : start + 4096]


def test_an_oversize_body_without_a_length_is_cut_off_at_the_limit(gate: Gate) -> None:
    """Streamed in chunks (no Content-Length to trust): 413 once past the limit."""
    body = json.dumps([event(event_id=f"h-{i}") for i in range(2000)]).encode()
    assert len(body) > MAX_BODY
    response = gate.client.post("/v1/events", content=chunks(body), headers=BEARER)
    refused(response, 413, None, f"limit of {MAX_BODY} bytes")


@pytest.mark.parametrize("portal", ["zendesk", "freshdesk", "jira"])
def test_an_oversize_webhook_is_refused_before_its_signature_is_computed(
    gate: Gate, portal: str
) -> None:
    """413 for any portal, whatever its credentials."""
    body = b'{"pad": "' + b"x" * MAX_BODY + b'"}'
    response = gate.send("POST", f"/v1/webhooks/{portal}", content=body, headers=JSON)
    refused(response, 413, None, "limit")


DEEP = b'{"a":' * 5000 + b"1" + b"}" * 5000


def test_deeply_nested_json_is_a_400(gate: Gate) -> None:
    """Five thousand levels of objects: 400, nothing recursed to exhaustion."""
    refused(post_events(gate, DEEP), 400, None, "nested too deeply")


def test_deeply_nested_json_to_a_signed_webhook_is_a_400(gate: Gate) -> None:
    """Jira reads the body's age before anything else: that read refuses deep nesting too."""
    refused(post_jira(gate, DEEP), 400, None, "nested too deeply")
    refused(post_freshdesk(gate, DEEP), 400, None, "nested too deeply")


def test_nesting_just_under_the_parser_limit_is_refused_as_a_bad_field(gate: Gate) -> None:
    """A value 900 levels deep parses; the field that holds it is refused (422), no crash."""
    deep_value = json.loads("[" * 900 + "]" * 900)
    refused(post_events(gate, event(customer=deep_value)), 422, "customer", "string")
    payload = {**recorded("freshdesk", "reply_sent"), "occurred_at": NOW.isoformat()}
    payload["extra"] = deep_value
    response = post_freshdesk(gate, json.dumps(payload).encode())
    assert response.status_code == 202, response.text  # unknown keys are the rule author's own


@pytest.mark.parametrize(
    "body", [b'{"event_id": "\xff\xfe"}', b"\xc3\x28", b'{"ticket_id": "caf\xe9"}']
)
def test_invalid_utf8_is_a_400(gate: Gate, body: bytes) -> None:
    """Bytes that are not UTF-8: 400 saying so."""
    refused(post_events(gate, body), 400, None, "not UTF-8")


def test_invalid_utf8_to_a_webhook_is_a_400(gate: Gate) -> None:
    """A correctly signed Jira body that is not UTF-8: 400, not a crash in the age check."""
    refused(post_jira(gate, b'{"timestamp": "\xff"}'), 400, None, "not JSON")


# --- times -------------------------------------------------------------------------------------


def test_a_naive_time_in_a_single_event_names_occurred_at(gate: Gate) -> None:
    """No UTC offset: 422 on `occurred_at`, saying how to write it."""
    naive = (NOW - timedelta(hours=1)).replace(tzinfo=None).isoformat()
    response = post_events(gate, event(occurred_at=naive))
    refused(response, 422, "occurred_at", "without a UTC offset")


def test_a_naive_time_in_a_webhook_names_the_portals_field(gate: Gate) -> None:
    """Zendesk's `time`, Jira's `comment.created`, Freshdesk's `occurred_at`, each by name."""
    naive = NOW.replace(tzinfo=None).isoformat()
    refused(post_zendesk(gate, zendesk_reply(naive)), 422, "time", "offset")
    jira = jira_comment()
    jira["comment"]["created"] = naive
    refused(post_jira(gate, json.dumps(jira).encode()), 422, "comment.created", "offset")
    freshdesk = {**recorded("freshdesk", "reply_sent"), "occurred_at": naive}
    response = post_freshdesk(gate, json.dumps(freshdesk).encode())
    refused(response, 422, "occurred_at", "offset")


def test_a_model_level_error_names_the_event_in_a_batch(gate: Gate) -> None:
    """A priority change with no priority, second in a batch: the field is `[1]`, not `[1].`."""
    change = event(event_id="h-2", type="priority_changed", priority=None)
    response = post_events(gate, [event(), change])
    refused(response, 422, "[1]", "needs a priority")


def test_a_created_event_without_priority_needs_a_policy_that_gives_one(gate: Gate) -> None:
    """The policy has neither a matrix entry nor a default_priority: refused, saying so."""
    response = post_events(gate, [event(priority=None)])
    refused(response, 422, "priority", "default_priority")


@pytest.mark.parametrize(
    ("offset", "says"),
    [
        (timedelta(days=366), "more than 365 days ago"),
        (timedelta(days=-1), "s ahead of the server's clock"),
        (timedelta(minutes=-6), "ahead of the server's clock"),
    ],
)
def test_events_far_in_the_past_or_future_are_refused(
    gate: Gate, offset: timedelta, says: str
) -> None:
    """Past the window (a year back, five minutes ahead): 422 on `occurred_at` naming the setting."""
    response = post_events(gate, event(occurred_at=(datetime.now(UTC) - offset).isoformat()))
    refused(response, 422, "occurred_at", says)
    assert "ESCALERA_MAX_EVENT_" in response.json()["detail"]


@pytest.mark.parametrize("offset", [timedelta(days=364), timedelta(minutes=-4)])
def test_events_inside_the_window_are_accepted(gate: Gate, offset: timedelta) -> None:
    """A ticket from last year, or a portal clock four minutes fast: accepted."""
    assert (
        post_events(gate, event(occurred_at=(datetime.now(UTC) - offset).isoformat())).status_code
        == 202
    )


def test_one_event_out_of_the_window_refuses_its_batch_naming_its_index(gate: Gate) -> None:
    """The third event of a batch is from 2099: 422 on `[2].occurred_at`, none queued."""
    batch = [event(event_id=f"h-{i}") for i in range(3)]
    batch[2]["occurred_at"] = "2099-01-01T00:00:00+00:00"
    refused(post_events(gate, batch), 422, "[2].occurred_at", "ahead")


@pytest.mark.parametrize("at", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_times_at_the_ends_of_the_calendar_are_refused_not_a_crash(gate: Gate, at: str) -> None:
    """Instants that cannot be converted to UTC: 422 on the field, canonical or Zendesk's."""
    refused(post_events(gate, event(occurred_at=at)), 422, "occurred_at", "")
    refused(post_zendesk(gate, zendesk_reply(at)), 422, "time", "out of range")


def test_a_webhook_event_out_of_the_window_is_refused(gate: Gate) -> None:
    """A Zendesk event dated two years back (a replayed archive, a bad clock): 422."""
    old = (NOW - timedelta(days=730)).isoformat()
    refused(post_zendesk(gate, zendesk_reply(old)), 422, "occurred_at", "days ago")


def test_the_window_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    """ESCALERA_MAX_EVENT_AGE_DAYS=30 refuses a 31-day-old event; LEAD_S=0, one a second ahead."""
    monkeypatch.setenv("ESCALERA_MAX_EVENT_AGE_DAYS", "30")
    monkeypatch.setenv("ESCALERA_MAX_EVENT_LEAD_S", "0")
    window = EventWindow.from_settings(Settings())
    now = datetime.now(UTC)
    dated = [
        Event.model_validate(event(occurred_at=now - timedelta(days=days))) for days in (29, 31)
    ] + [Event.model_validate(event(occurred_at=now + timedelta(seconds=1)))]
    problems = window.problems(dated, now, indexed=True)
    assert [p["field"] for p in problems] == ["[1].occurred_at", "[2].occurred_at"]
    assert "more than 30 days ago" in problems[0]["message"]


# --- parameters and paths ------------------------------------------------------------------------


def test_a_naive_at_is_a_400_naming_it(gate: Gate) -> None:
    """GET /v1/tickets/...?at= without an offset: 400 on `at`."""
    response = gate.send(
        "GET", "/v1/tickets/api/H-1", params={"at": "2026-03-02T09:00:00"}, headers=BEARER
    )
    refused(response, 400, "at", "UTC offset")


@pytest.mark.parametrize(
    ("method", "path", "params", "field"),
    [
        ("GET", "/v1/tickets/api/H-1", {"at": "yesterday"}, "at"),
        ("POST", "/v1/notifications/seven/ack", {}, "notification_id"),
        ("POST", f"/v1/notifications/{2**64}/ack", {}, "notification_id"),
        ("POST", "/v1/notifications/0/ack", {}, "notification_id"),
    ],
)
def test_bad_parameters_are_problems_naming_them(
    gate: Gate, method: str, path: str, params: dict[str, str], field: str
) -> None:
    """FastAPI's own validation answers as a problem document too (422), naming the parameter."""
    refused(gate.send(method, path, params=params, headers=BEARER), 422, field, field)


def test_unknown_paths_and_methods_are_problems(gate: Gate) -> None:
    """404 and 405 are problem documents like every other refusal."""
    refused(gate.send("GET", "/v1/nothing-here"), 404, None, "Not Found")
    refused(gate.send("DELETE", "/v1/events"), 405, None, "Method Not Allowed")
