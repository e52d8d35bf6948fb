"""Every operation of the ingest OpenAPI document, fuzzed by schemathesis from that document.

schemathesis generates each request from the schema, valid and invalid (negative mode) alike;
the test adds credentials the way each endpoint takes them (a bearer token, the Escalera HMAC, a
portal's signature, a signed acknowledgement link, a key for reads), mostly valid so that requests get past the
door, and sends them through the `Gate`: no 5xx, nothing queued from a refusal.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import schemathesis
from hypothesis import given
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.core import NotSet

from tests.hostile.budget import fuzz_settings
from tests.hostile.gate import Gate
from tests.hostile.secrets import (
    ACK_SECRET,
    ACKER_TOKEN,
    FRESHDESK_SECRET,
    HMAC_SECRET,
    JIRA_SECRET,
    READER_TOKEN,
    TOKEN,
    ZENDESK_SECRET,
)
from worker.adapters.signatures import sign_escalera, sign_jira, sign_zendesk
from worker.notify.paging import ack_signature


@pytest.fixture
def cases(gate: Gate) -> Iterator[st.SearchStrategy[Case]]:
    """Requests for every operation the app documents, positive and negative."""
    document = gate.client.get("/openapi.json").json()
    schema = schemathesis.openapi.from_dict(document)
    operations = [result.ok() for result in schema.get_all_operations()]
    yield st.one_of([op.as_strategy(mode) for op in operations for mode in GenerationMode])


def encoded(case: Case) -> bytes | None:
    if isinstance(case.body, NotSet):
        return None
    if isinstance(case.body, bytes):
        return case.body
    return json.dumps(case.body).encode()


def credentials(path: str, body: bytes, valid: bool) -> dict[str, str]:
    """What the endpoint at ``path`` takes as credentials (wrong ones when not ``valid``)."""
    now = datetime.now(UTC)
    flip = "" if valid else "x"
    if path.startswith("/v1/webhooks/zendesk"):
        return sign_zendesk(body, ZENDESK_SECRET + flip, now)
    if path.startswith("/v1/webhooks/jira"):
        return sign_jira(body, JIRA_SECRET + flip)
    if path.startswith("/v1/webhooks/freshdesk"):
        basic = base64.b64encode(f"x:{FRESHDESK_SECRET}{flip}".encode()).decode()
        return {"authorization": f"Basic {basic}"}
    if path == "/v1/events" and body.startswith(b"["):
        return sign_escalera(body, HMAC_SECRET + flip, now)
    return {"authorization": f"Bearer {TOKEN}{flip}"}


@fuzz_settings("openapi")
@given(data=st.data())
def test_every_documented_operation_survives_fuzzing(
    gate: Gate, cases: st.SearchStrategy[Case], data: st.DataObject
) -> None:
    """Generated from the OpenAPI document: tickets, events, webhooks, acks, health; never a 5xx."""
    case = data.draw(cases)
    path = case.formatted_path
    if path.startswith("/v1/webhooks/") and data.draw(st.booleans()):
        path = "/v1/webhooks/" + data.draw(st.sampled_from(["zendesk", "jira", "freshdesk"]))
    body = encoded(case)
    headers: dict[str, Any] = {k: str(v) for k, v in (case.headers or {}).items()}
    if case.method.upper() == "POST":
        headers.setdefault("content-type", case.media_type or "application/json")
        headers.update(credentials(path, body or b"", valid=data.draw(st.integers(0, 4)) > 0))
    elif not path.startswith(("/healthz", "/readyz")):  # reads need a key with `read`
        token = data.draw(st.sampled_from([READER_TOKEN, READER_TOKEN, TOKEN, ACKER_TOKEN, "x"]))
        headers.setdefault("authorization", f"Bearer {token}")
    query = {k: str(v) for k, v in (case.query or {}).items()}
    if path.endswith("/ack") and data.draw(st.booleans()):
        notification = path.split("/")[3]
        if notification.isdigit():
            query["sig"] = ack_signature(ACK_SECRET, int(notification))
    gate.send(case.method.upper(), path, content=body, headers=headers, params=query)
