"""POST /v1/events under fuzzing: single events, batches, raw bytes; never a 5xx, never a leak.

Every request goes through `Gate`: no 5xx, every refusal a problem document with nothing queued,
every 202 exactly its events on the Redis queue.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.events import Event
from tests.hostile.budget import fuzz_settings
from tests.hostile.gate import Gate
from tests.hostile.secrets import HMAC_SECRET, READER_TOKEN, TOKEN
from tests.hostile.strategies import (
    canonical_event,
    dumps,
    hostile_times,
    json_values,
    raw_bodies,
    valid_times,
)
from worker.adapters.signatures import sign_escalera
from worker.api.app import Services
from worker.events.apply import apply_event

JSON = "application/json"
content_types = st.sampled_from(
    [JSON, JSON, JSON, "application/json; charset=utf-8", "application/problem+json"]
) | st.sampled_from(["text/plain", "application/x-www-form-urlencoded", "", "application/jsonx"])


@st.composite
def credentials(draw: st.DrawFn, body: bytes) -> dict[str, str]:
    """Mostly valid (a bearer token or the HMAC), sometimes wrong, missing or stale."""
    kind = draw(st.sampled_from(["bearer", "bearer", "hmac", "hmac", "wrong", "none", "stale"]))
    now = datetime.now(UTC)
    if kind == "bearer":
        return {"authorization": f"Bearer {TOKEN}"}
    if kind == "hmac":
        return sign_escalera(body, HMAC_SECRET, now)
    if kind == "stale":
        return sign_escalera(
            body, HMAC_SECRET, now - timedelta(minutes=draw(st.integers(6, 10**6)))
        )
    if kind == "wrong":
        return draw(
            st.sampled_from(
                [
                    {"authorization": f"Bearer {TOKEN}x"},
                    {"authorization": f"Basic {TOKEN}"},
                    sign_escalera(body, HMAC_SECRET + "x", now),
                    {**sign_escalera(body, HMAC_SECRET, now), "x-escalera-timestamp": "1"},
                ]
            )
        )
    return {}


def post(gate: Gate, body: bytes, headers: dict[str, str]) -> Any:
    return gate.send("POST", "/v1/events", content=body, headers=headers)


@fuzz_settings("events_single")
@given(event=canonical_event, data=st.data())
def test_single_events_never_break_the_ingest(gate: Gate, event: Any, data: st.DataObject) -> None:
    """One generated event (mostly plausible, often broken): 202 or a clear 4xx."""
    body = dumps(event)
    response = post(gate, body, {"content-type": JSON, **data.draw(credentials(body))})
    assert response.status_code in (
        202,
        400,
        401,
        403,
        413,
        415,
        422,
    )  # 403: a source the key may not write


@fuzz_settings("events_batch")
@given(batch=st.lists(canonical_event | json_values, max_size=30), data=st.data())
def test_batches_are_accepted_or_refused_whole(
    gate: Gate, batch: list[Any], data: st.DataObject
) -> None:
    """A batch with any mix of good and bad items: all of it queued, or none (the Gate checks)."""
    body = dumps(batch)
    response = post(gate, body, {"content-type": JSON, **data.draw(credentials(body))})
    if response.status_code == 202:
        assert response.json() == {"accepted": len(batch)}


@fuzz_settings("events_raw")
@given(body=raw_bodies, content_type=content_types, data=st.data())
def test_raw_bytes_never_break_the_ingest(
    gate: Gate, body: bytes, content_type: str, data: st.DataObject
) -> None:
    """Invalid UTF-8, truncated or deeply nested JSON, wrong media types: a 4xx, never a 5xx."""
    post(gate, body, {"content-type": content_type, **data.draw(credentials(body))})


@pytest.fixture
def stored(services: Services) -> None:
    """H-1 created an hour ago; H-2 has a reply but no created event yet."""
    now = datetime.now(UTC)
    for ticket, kind in (("H-1", "created"), ("H-2", "agent_replied")):
        fields = {"priority": "P1"} if kind == "created" else {}
        stored = Event.model_validate(
            {
                "event_id": f"{ticket}-{kind}",
                "ticket_id": ticket,
                "type": kind,
                "occurred_at": now - timedelta(hours=1),
                **fields,
            }
        )
        with services.sessions.begin() as session:
            apply_event(session, services.policies, stored, now)


@fuzz_settings("tickets")
@given(at=hostile_times | valid_times, ticket=st.sampled_from(["H-1", "H-2", "nope"]))
def test_a_stored_tickets_sla_at_any_time_never_breaks(
    gate: Gate, stored: None, at: Any, ticket: str
) -> None:
    """GET /v1/tickets/api/…?at=… for any `at` (year 1 to 9999, naive, garbage): 200 or a 4xx."""
    reader = {"authorization": f"Bearer {READER_TOKEN}"}
    response = gate.send("GET", f"/v1/tickets/api/{ticket}", params={"at": str(at)}, headers=reader)
    if ticket != "H-1":
        assert response.status_code in (400, 404, 422), response.text
