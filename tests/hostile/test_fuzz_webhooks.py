"""The portal webhooks under fuzzing, signed as the portal signs them so the adapters get fuzzed.

Each body is a recorded payload (tests/fixtures/webhooks/) re-dated to now, with a few of its
values replaced by any JSON, dropped, or re-dated anywhere from year 1 to 9999. Most requests
carry valid credentials (past the signature check, into the adapter); some are forged or stale.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.hostile.budget import fuzz_settings
from tests.hostile.gate import Gate
from tests.hostile.secrets import FRESHDESK_SECRET, JIRA_SECRET, ZENDESK_SECRET
from tests.hostile.strategies import dumps, hostile_times, json_values
from tests.support import ROOT
from worker.adapters.signatures import sign_jira, sign_zendesk

FIXTURES = ROOT / "tests" / "fixtures" / "webhooks"
JSON = {"content-type": "application/json"}


def recorded(portal: str) -> list[dict[str, Any]]:
    return [json.loads(path.read_text()) for path in sorted((FIXTURES / portal).glob("*.json"))]


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside ``value`` (keys and list indexes)."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, inner in value.items():
            found += paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += paths(inner, (*prefix, index))
    return found


def replaced(document: Any, path: tuple[Any, ...], new: Any, drop: bool) -> Any:
    """A copy of ``document`` with the value at ``path`` replaced (or dropped)."""
    copy = json.loads(json.dumps(document))
    parent = copy
    for key in path[:-1]:
        parent = parent[key]
    if drop and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = new
    return copy


@st.composite
def hostile(draw: st.DrawFn, documents: list[dict[str, Any]], time_paths: list[str]) -> Any:
    """A recorded payload, re-dated, with up to three values broken anywhere in it."""
    document = json.loads(json.dumps(draw(st.sampled_from(documents))))
    for dotted in time_paths:
        *head, last = dotted.split(".")
        parent = document
        for key in head:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if isinstance(parent, dict) and last in parent:
            now = st.just(NOW_MS) if last == "timestamp" else st.sampled_from([NOW_ISO, NOW_JIRA])
            parent[last] = draw(now if draw(st.integers(0, 3)) else hostile_times)
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2, 3]))):
        where = paths(document)
        if not where:
            break
        path = draw(st.sampled_from(where))
        new = draw(hostile_times | json_values)
        document = replaced(document, path, new, drop=draw(st.booleans()))
    if draw(st.integers(0, 20)) == 0:
        document = draw(json_values)  # not even an object
    return document


NOW = datetime.now(UTC)
NOW_ISO = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
NOW_JIRA = NOW.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
NOW_MS = int(NOW.timestamp() * 1000)


@fuzz_settings("zendesk")
@given(
    payload=hostile(recorded("zendesk"), ["time", "detail.updated_at", "detail.created_at"]),
    signing=st.sampled_from(["valid", "valid", "valid", "forged", "stale", "naive", "none"]),
)
def test_zendesk_webhooks_never_break_the_ingest(gate: Gate, payload: Any, signing: str) -> None:
    """Signed Zendesk events with broken values: 202 or a 4xx naming the field; forged: 401."""
    body = dumps(payload)
    now = datetime.now(UTC)
    headers = {
        "valid": sign_zendesk(body, ZENDESK_SECRET, now),
        "forged": sign_zendesk(body, ZENDESK_SECRET[::-1], now),
        "stale": sign_zendesk(body, ZENDESK_SECRET, now - timedelta(minutes=6)),
        "naive": {
            **sign_zendesk(body, ZENDESK_SECRET, now),
            "x-zendesk-webhook-signature-timestamp": now.replace(tzinfo=None).isoformat(),
        },
        "none": {},
    }[signing]
    response = gate.send("POST", "/v1/webhooks/zendesk", content=body, headers={**JSON, **headers})
    if signing != "valid":
        assert response.status_code == 401, response.text


@fuzz_settings("freshdesk")
@given(
    payload=hostile(recorded("freshdesk"), ["occurred_at"]),
    auth=st.sampled_from(["header", "bearer", "basic", "wrong", "none"]),
)
def test_freshdesk_webhooks_never_break_the_ingest(gate: Gate, payload: Any, auth: str) -> None:
    """Freshdesk rule bodies with broken values, with the shared secret or without it."""
    basic = base64.b64encode(f"escalera:{FRESHDESK_SECRET}".encode()).decode()
    headers = {
        "header": {"x-escalera-webhook-secret": FRESHDESK_SECRET},
        "bearer": {"authorization": f"Bearer {FRESHDESK_SECRET}"},
        "basic": {"authorization": f"Basic {basic}"},
        "wrong": {"x-escalera-webhook-secret": FRESHDESK_SECRET.upper()},
        "none": {},
    }[auth]
    response = gate.send(
        "POST", "/v1/webhooks/freshdesk", content=dumps(payload), headers={**JSON, **headers}
    )
    if auth in ("wrong", "none"):
        assert response.status_code == 401, response.text


@fuzz_settings("jira")
@given(
    payload=hostile(recorded("jira"), ["timestamp", "comment.created", "issue.fields.created"]),
    signing=st.sampled_from(["valid", "valid", "valid", "forged", "none"]),
)
def test_jira_webhooks_never_break_the_ingest(gate: Gate, payload: Any, signing: str) -> None:
    """Signed Jira deliveries with broken values (the timestamp too): 202 or a clear 4xx."""
    body = dumps(payload)
    headers = {
        "valid": sign_jira(body, JIRA_SECRET),
        "forged": sign_jira(body, JIRA_SECRET + "!"),
        "none": {},
    }[signing]
    response = gate.send("POST", "/v1/webhooks/jira", content=body, headers={**JSON, **headers})
    if signing != "valid":
        assert response.status_code == 401, response.text


def test_the_recorded_payloads_are_all_fuzzed() -> None:
    """Every portal has recorded payloads to start from (an empty folder would fuzz nothing)."""
    for portal in ("zendesk", "freshdesk", "jira"):
        assert len(recorded(portal)) >= 8, portal
    assert Path(FIXTURES).is_dir()
