"""The Zendesk adapter: signed ticket-event webhooks in, canonical events out."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.events import EventType, Status
from tests.unit.adapter_support import Fixtures, Runner, json_body
from worker.adapters.base import Adapter, Unauthorized, WebhookRequest
from worker.adapters.signatures import sign_zendesk
from worker.adapters.zendesk import ZendeskAdapter

FIXTURES = Fixtures("zendesk")
SECRET = "zendesk-signing-secret"
RECEIVED = datetime(2025, 3, 4, 9, 30, 30, tzinfo=UTC)
ADAPTER = ZendeskAdapter()


def delivery(payload: Any, headers: dict[str, str] | None = None) -> WebhookRequest:
    """The request carrying ``payload``, signed when it was received (a test helper)."""
    body = json_body(payload)
    signed = sign_zendesk(body, SECRET, RECEIVED)
    return WebhookRequest(body, {**signed, **(headers or {})}, RECEIVED)


RUN = Runner(ADAPTER, delivery)
fixture, events, one, refused = FIXTURES.load, RUN.events, RUN.one, RUN.refused


def status_change(previous: str, current: str) -> dict[str, Any]:
    """The status-changed fixture moved from ``previous`` to ``current`` (a test helper)."""
    payload = fixture("status_changed")
    payload["event"] = {"previous": previous, "current": current}
    return payload


# --- verification ----------------------------------------------------------------------------------


def test_adapter_follows_the_protocol() -> None:
    """ZendeskAdapter is an `Adapter` whose source is `zendesk`."""
    adapter: Adapter = ZendeskAdapter()
    assert adapter.source == "zendesk"


def test_verify_accepts_a_signed_delivery() -> None:
    """A raw fixture body signed by Zendesk one minute before receipt is accepted."""
    body = FIXTURES.raw("comment_added_public_agent")
    headers = sign_zendesk(body, SECRET, RECEIVED - timedelta(minutes=1))
    ADAPTER.verify(WebhookRequest(body, headers, RECEIVED), SECRET)


def test_verify_refuses_a_forged_delivery() -> None:
    """A body signed with another secret is refused with 401."""
    body = FIXTURES.raw("comment_added_public_agent")
    request = WebhookRequest(body, sign_zendesk(body, "forger", RECEIVED), RECEIVED)
    with pytest.raises(Unauthorized):
        ADAPTER.verify(request, SECRET)


def test_verify_refuses_a_replay_after_five_minutes() -> None:
    """A genuine delivery received more than five minutes after signing is refused."""
    body = FIXTURES.raw("comment_added_public_agent")
    headers = sign_zendesk(body, SECRET, RECEIVED - timedelta(minutes=5, seconds=1))
    with pytest.raises(Unauthorized, match="stale"):
        ADAPTER.verify(WebhookRequest(body, headers, RECEIVED), SECRET)


def test_verify_refuses_an_unsigned_delivery() -> None:
    """A delivery without Zendesk's signature headers is refused."""
    body = FIXTURES.raw("ticket_created")
    with pytest.raises(Unauthorized):
        ADAPTER.verify(WebhookRequest(body, {"content-type": "application/json"}, RECEIVED), SECRET)


# --- created ---------------------------------------------------------------------------------------


def test_ticket_created_maps_priority_customer_and_requester() -> None:
    """ticket.created becomes `created` with Zendesk's priority name, org and requester ids."""
    event = one(fixture("ticket_created"))
    assert event.model_dump(exclude_defaults=True) == {
        "event_id": "cbe4028c-7239-495d-b020-f22348516046",
        "source": "zendesk",
        "ticket_id": "48213",
        "type": EventType.CREATED,
        "occurred_at": datetime(2025, 3, 4, 8, 2, 11, 672717, tzinfo=UTC),
        "priority": "HIGH",
        "customer": "3300776655",
        "requester": "3300998877",
    }


def test_ticket_created_takes_its_tier_from_the_group() -> None:
    """With a tier configured for the ticket's group, the created event carries it."""
    assert one(fixture("ticket_created"), ZendeskAdapter(tiers={"3300445566": 1})).tier == 1


def test_ticket_created_without_priority_is_refused_unless_defaulted() -> None:
    """A ticket without priority is refused naming the field, or gets default_priority."""
    payload = fixture("ticket_created")
    payload["detail"]["priority"] = None
    assert refused(payload).field == "detail.priority"
    assert one(payload, ZendeskAdapter(default_priority="normal")).priority == "normal"


def test_priorities_can_be_renamed() -> None:
    """A configured rename applies (case-insensitively); other names pass through."""
    adapter = ZendeskAdapter(priorities={"high": "P2"})
    assert one(fixture("ticket_created"), adapter).priority == "P2"
    assert one(fixture("priority_changed"), adapter).priority == "URGENT"


# --- comments --------------------------------------------------------------------------------------


def test_public_agent_comment_is_a_response() -> None:
    """A public comment by staff is a public `agent_replied`, which counts as a response."""
    event = one(fixture("comment_added_public_agent"))
    assert (event.type, event.public, event.automatic) == (EventType.AGENT_REPLIED, True, False)
    assert event.counts_as_response
    assert event.occurred_at == datetime(2025, 3, 4, 9, 17, 42, tzinfo=UTC)


def test_private_agent_note_is_not_a_response() -> None:
    """A private comment by staff is a non-public `agent_replied`: not a response."""
    event = one(fixture("comment_added_private_note"))
    assert (event.type, event.public) == (EventType.AGENT_REPLIED, False)
    assert not event.counts_as_response


def test_requester_comment_is_a_customer_reply() -> None:
    """A comment by a non-staff author is `customer_replied`."""
    assert one(fixture("comment_added_requester")).type is EventType.CUSTOMER_REPLIED


@pytest.mark.parametrize("path", ["event.comment.author.is_staff", "event.comment.is_public"])
def test_comment_without_author_role_or_visibility_is_refused(path: str) -> None:
    """Without is_staff or is_public the reply cannot be classified: refused naming the field."""
    payload = fixture("comment_added_public_agent")
    *parents, leaf = path.split(".")
    node = payload
    for key in parents:
        node = node[key]
    del node[leaf]
    assert refused(payload).field == path


# --- status ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("previous", "current", "kind", "status"),
    [
        ("OPEN", "SOLVED", EventType.RESOLVED, Status.SOLVED),
        ("SOLVED", "CLOSED", EventType.CLOSED, Status.CLOSED),
        ("SOLVED", "OPEN", EventType.REOPENED, Status.OPEN),
        ("CLOSED", "OPEN", EventType.REOPENED, Status.OPEN),
        ("NEW", "OPEN", EventType.STATUS_CHANGED, Status.OPEN),
        ("OPEN", "PENDING", EventType.STATUS_CHANGED, Status.PENDING),
        ("OPEN", "HOLD", EventType.STATUS_CHANGED, Status.ON_HOLD),
        ("SOLVED", "PENDING", EventType.STATUS_CHANGED, Status.PENDING),
        ("open", "Solved", EventType.RESOLVED, Status.SOLVED),
    ],
)
def test_status_changes_map_to_canonical_events(
    previous: str, current: str, kind: EventType, status: Status
) -> None:
    """Solved resolves, closed closes, leaving solved for open reopens, the rest are moves."""
    event = one(status_change(previous, current))
    assert (event.type, event.status) == (kind, status)


def test_status_change_occurs_at_the_event_time_in_utc() -> None:
    """The nanosecond `time` of the payload becomes an aware UTC instant."""
    event = one(fixture("status_changed"))
    assert event.occurred_at == datetime(2025, 3, 4, 16, 45, 20, 987654, tzinfo=UTC)


def test_unmapped_status_is_refused_naming_value_and_known_ones() -> None:
    """A status outside the map is refused with the field, the value and the known statuses."""
    error = refused(status_change("OPEN", "DELETED"))
    assert error.field == "event.current"
    assert "'DELETED'" in error.reason
    assert "hold" in error.reason and "solved" in error.reason


def test_status_map_can_be_extended() -> None:
    """A configured status adds to the defaults."""
    event = one(status_change("OPEN", "DELETED"), ZendeskAdapter(statuses={"deleted": "closed"}))
    assert (event.type, event.status) == (EventType.CLOSED, Status.CLOSED)


def test_unknown_previous_status_still_maps_the_new_one() -> None:
    """The previous status only decides between reopened and a move; unknown, it is a move."""
    event = one(status_change("ARCHIVED", "OPEN"))
    assert (event.type, event.status) == (EventType.STATUS_CHANGED, Status.OPEN)


# --- priority and assignment -----------------------------------------------------------------------


def test_priority_change_passes_the_portal_name_through() -> None:
    """ticket.priority_changed becomes `priority_changed` with Zendesk's name for the priority."""
    event = one(fixture("priority_changed"))
    assert (event.type, event.priority, event.event_id) == (
        EventType.PRIORITY_CHANGED,
        "URGENT",
        "0f7c5d1a-9b2e-4c3d-8e1f-2a3b4c5d6e7f",
    )


def test_cleared_priority_is_refused() -> None:
    """A priority change to nothing is refused naming event.current."""
    payload = fixture("priority_changed")
    payload["event"]["current"] = None
    assert refused(payload).field == "event.current"


def test_group_assignment_carries_the_groups_tier() -> None:
    """A group change is `assigned`, with the tier configured for the new group, if any."""
    configured = one(fixture("group_assignment_changed"), ZendeskAdapter(tiers={"3300445599": 2}))
    assert (configured.type, configured.tier) == (EventType.ASSIGNED, 2)
    assert one(fixture("group_assignment_changed")).tier is None


def test_agent_assignment_is_an_assignment_without_tier() -> None:
    """An agent change (numeric ids in the payload) is `assigned` without tier."""
    event = one(fixture("agent_assignment_changed"))
    assert (event.type, event.tier) == (EventType.ASSIGNED, None)


# --- refusals --------------------------------------------------------------------------------------


def test_unknown_event_type_is_refused_listing_known_ones() -> None:
    """An event type the adapter does not map is refused (422), never dropped."""
    error = refused(fixture("tags_changed"))
    assert error.field == "type"
    assert "ticket.tags_changed" in error.reason
    assert "zen:event-type:ticket.comment_added" in error.reason


def test_trigger_body_is_refused_with_a_way_out() -> None:
    """A trigger-connected body (no event type) is refused, pointing to /v1/events."""
    error = refused(fixture("trigger_body"))
    assert (error.field, "/v1/events" in error.reason) == ("type", True)


def test_body_that_is_not_an_object_is_refused() -> None:
    """A JSON array or string is not a Zendesk event."""
    refused([fixture("ticket_created")])
    refused("zen:event-type:ticket.created")


def test_ticket_id_falls_back_to_the_subject() -> None:
    """Without detail.id the ticket id comes from `subject` (zen:ticket:<id>)."""
    payload = fixture("priority_changed")
    del payload["detail"]["id"]
    assert one(payload).ticket_id == "48213"
    payload["subject"] = "zen:user:1"
    assert refused(payload).field == "detail.id"


def test_time_falls_back_to_updated_at_then_is_required() -> None:
    """Without `time`, detail.updated_at dates the event; without either, it is refused."""
    payload = fixture("priority_changed")
    del payload["time"]
    assert one(payload).occurred_at == datetime(2025, 3, 4, 9, 30, 5, tzinfo=UTC)
    del payload["detail"]["updated_at"]
    assert refused(payload).field == "time"


@pytest.mark.parametrize("value", ["2025-03-04T09:30:05", "4 March 2025", "", 1741080605])
def test_time_without_offset_or_unreadable_is_refused(value: object) -> None:
    """A local time, prose, an empty string or a number is not a usable timestamp."""
    payload = fixture("priority_changed")
    payload["time"] = value
    del payload["detail"]["updated_at"]
    refused(payload)


# --- event ids -------------------------------------------------------------------------------------


def test_duplicate_delivery_yields_identical_event_ids() -> None:
    """The same event delivered twice (a retry) gives the same event, id included."""
    first = events(
        fixture("comment_added_public_agent"), headers={"x-zendesk-webhook-invocation-id": "1"}
    )
    again = events(
        fixture("comment_added_public_agent"), headers={"x-zendesk-webhook-invocation-id": "2"}
    )
    assert first == again
    assert first[0].key == ("zendesk", "6b1f0c2e-3a41-4f7e-9a2d-1c0f5e7b8a90")


def test_event_id_falls_back_to_the_invocation_id() -> None:
    """Without an event `id`, the invocation id header (same across retries) is the id."""
    payload = fixture("priority_changed")
    del payload["id"]
    event = events(payload, headers={"x-zendesk-webhook-invocation-id": "01HQ7ZK3V9"})[0]
    assert event.event_id == "01HQ7ZK3V9"
    assert refused(copy.deepcopy(payload)).field == "id"
