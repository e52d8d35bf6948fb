"""The Freshdesk adapter: automation-rule webhooks with a shared secret, to canonical events."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.events import EventType, Status
from tests.unit.adapter_support import Fixtures, Runner, json_body
from worker.adapters.base import Adapter, Unauthorized, WebhookRequest
from worker.adapters.freshdesk import FreshdeskAdapter

FIXTURES = Fixtures("freshdesk")
SECRET = "freshdesk-shared-secret"
RECEIVED = datetime(2025, 3, 4, 8, 47, 3, tzinfo=UTC)
ADAPTER = FreshdeskAdapter()


def delivery(payload: Any, headers: dict[str, str] | None = None) -> WebhookRequest:
    """The request carrying ``payload`` with the shared secret (a test helper, not a test)."""
    body = json_body(payload)
    return WebhookRequest(body, headers or {"x-escalera-webhook-secret": SECRET}, RECEIVED)


RUN = Runner(ADAPTER, delivery)
fixture, one, refused = FIXTURES.load, RUN.one, RUN.refused


def status_change(before: str, after: str, name: str) -> dict[str, Any]:
    """A status-change body from code ``before`` to ``after`` named ``name`` (a test helper)."""
    return {
        **fixture("status_resolved"),
        "triggered_event": f"{{status:{{from:{before},to:{after}}}}}",
        "status": name,
    }


# --- verification ----------------------------------------------------------------------------------


def test_adapter_follows_the_protocol() -> None:
    """FreshdeskAdapter is an `Adapter` whose source is `freshdesk`."""
    adapter: Adapter = FreshdeskAdapter()
    assert adapter.source == "freshdesk"


@pytest.mark.parametrize(
    "headers",
    [
        {"x-escalera-webhook-secret": SECRET},
        {"authorization": f"Bearer {SECRET}"},
        {"authorization": "Basic " + base64.b64encode(f"escalera:{SECRET}".encode()).decode()},
    ],
    ids=["header", "bearer", "basic"],
)
def test_verify_accepts_the_shared_secret(headers: dict[str, str]) -> None:
    """The rule's secret is accepted in our header, as a bearer token or as basic auth."""
    body = FIXTURES.raw("ticket_created")
    ADAPTER.verify(WebhookRequest(body, headers, RECEIVED), SECRET)


@pytest.mark.parametrize("headers", [{}, {"x-escalera-webhook-secret": "guess"}])
def test_verify_refuses_missing_or_wrong_secret(headers: dict[str, str]) -> None:
    """Without the right secret the request is refused with 401."""
    body = FIXTURES.raw("ticket_created")
    with pytest.raises(Unauthorized):
        ADAPTER.verify(WebhookRequest(body, headers, RECEIVED), SECRET)


# --- created ---------------------------------------------------------------------------------------


def test_ticket_created_maps_priority_requester_and_company() -> None:
    """{ticket_action:created} becomes `created` with the priority name, e-mail and company."""
    event = one(fixture("ticket_created"))
    assert event.model_dump(exclude_defaults=True, exclude={"event_id"}) == {
        "source": "freshdesk",
        "ticket_id": "10542",
        "type": EventType.CREATED,
        "occurred_at": datetime(2025, 3, 4, 8, 12, 40, tzinfo=UTC),
        "priority": "High",
        "customer": "Fabrikam",
        "requester": "j.doe@fabrikam.example",
    }


def test_ticket_created_takes_its_tier_from_the_group_name() -> None:
    """A tier configured for the group's name (case-insensitively) is carried by `created`."""
    assert one(fixture("ticket_created"), FreshdeskAdapter(tiers={"l1 service desk": 1})).tier == 1


def test_ticket_created_without_priority_is_refused_unless_defaulted() -> None:
    """An empty priority placeholder is refused naming `priority`, or gets default_priority."""
    payload = {**fixture("ticket_created"), "priority": ""}
    assert refused(payload).field == "priority"
    assert one(payload, FreshdeskAdapter(default_priority="Low")).priority == "Low"


# --- status ----------------------------------------------------------------------------------------


def test_custom_waiting_status_pauses_by_name() -> None:
    """Custom status 6 "Waiting on Customer" maps by name to pending (the research example)."""
    event = one(fixture("status_waiting_on_customer"))
    assert (event.type, event.status) == (EventType.STATUS_CHANGED, Status.PENDING)


@pytest.mark.parametrize(
    ("before", "after", "name", "kind", "status"),
    [
        ("6", "4", "Resolved", EventType.RESOLVED, Status.SOLVED),
        ("2", "5", "Closed", EventType.CLOSED, Status.CLOSED),
        ("4", "2", "Open", EventType.REOPENED, Status.OPEN),
        ("5", "2", "Open", EventType.REOPENED, Status.OPEN),
        ("2", "3", "Pending", EventType.STATUS_CHANGED, Status.PENDING),
        ("3", "2", "Open", EventType.STATUS_CHANGED, Status.OPEN),
        ("4", "3", "Pending", EventType.STATUS_CHANGED, Status.PENDING),
        ("2", "7", "Waiting on Third Party", EventType.STATUS_CHANGED, Status.ON_HOLD),
    ],
)
def test_status_codes_map_to_canonical_events(
    before: str, after: str, name: str, kind: EventType, status: Status
) -> None:
    """Resolved resolves, Closed closes, leaving them for Open reopens, the rest are moves."""
    event = one(status_change(before, after, name))
    assert (event.type, event.status) == (kind, status)


def test_built_in_status_code_wins_over_a_renamed_status() -> None:
    """Codes 2-5 are Freshdesk's own: a renamed "Resolved" (code 4) still resolves."""
    event = one(status_change("2", "4", "Fixed"))
    assert event.type is EventType.RESOLVED


def test_resolved_and_reopened_fixtures() -> None:
    """The resolved and reopened fixtures give `resolved` then `reopened`, dated in UTC."""
    resolved, reopened = one(fixture("status_resolved")), one(fixture("status_reopened"))
    assert (resolved.type, resolved.occurred_at) == (
        EventType.RESOLVED,
        datetime(2025, 3, 4, 14, 20, tzinfo=UTC),
    )
    assert (reopened.type, reopened.status) == (EventType.REOPENED, Status.OPEN)


def test_unmapped_custom_status_is_refused_naming_it() -> None:
    """An account's own status (code 8 "Job Application") is refused with the known ones."""
    error = refused(status_change("2", "8", "Job Application"))
    assert error.field == "status"
    assert "8" in error.reason and "'Job Application'" in error.reason
    assert "waiting_on_customer" in error.reason


@pytest.mark.parametrize("key", ["8", "Job Application"])
def test_status_map_can_be_extended_by_code_or_name(key: str) -> None:
    """A custom status can be mapped by its code or by its name."""
    adapter = FreshdeskAdapter(statuses={key: "on_hold"})
    assert one(status_change("2", "8", "Job Application"), adapter).status is Status.ON_HOLD


# --- priority, notes, replies, assignment -------------------------------------------------------------


def test_priority_change_passes_the_name_through() -> None:
    """{priority:{from:3,to:4}} becomes `priority_changed` to the rendered name "Urgent"."""
    event = one(fixture("priority_changed"))
    assert (event.type, event.priority) == (EventType.PRIORITY_CHANGED, "Urgent")


def test_priority_change_falls_back_to_the_code() -> None:
    """Without a rendered name, code 1-4 gives Low, Medium, High or Urgent; others are refused."""
    payload = {**fixture("priority_changed"), "priority": ""}
    assert one(payload).priority == "Urgent"
    assert refused({**payload, "triggered_event": "{priority:{from:3,to:9}}"}).field == "priority"


@pytest.mark.parametrize(("name", "public"), [("note_public", True), ("note_private", False)])
def test_notes_are_agent_replies_public_or_not(name: str, public: bool) -> None:
    """{note_type:public} is a public agent reply, {note_type:private} a private one."""
    event = one(fixture(name))
    assert (event.type, event.public, event.counts_as_response) == (
        EventType.AGENT_REPLIED,
        public,
        public,
    )


def test_reply_rule_is_a_public_agent_reply() -> None:
    """A rule body saying "event": "agent_replied" is a public agent reply (a response)."""
    event = one(fixture("reply_sent"))
    assert (event.type, event.counts_as_response) == (EventType.AGENT_REPLIED, True)


def test_customer_reply_rule_is_a_customer_reply() -> None:
    """A rule body saying "event": "customer_replied" is `customer_replied`."""
    assert one(fixture("customer_replied")).type is EventType.CUSTOMER_REPLIED


def test_group_rule_is_an_assignment_with_the_groups_tier() -> None:
    """A rule body saying "event": "assigned" carries the tier of the new group, if configured."""
    event = one(fixture("group_updated"), FreshdeskAdapter(tiers={"L2 Field Services": 2}))
    assert (event.type, event.tier) == (EventType.ASSIGNED, 2)
    assert one(fixture("group_updated")).tier is None


# --- refusals --------------------------------------------------------------------------------------


def test_unknown_triggered_event_is_refused_listing_known_ones() -> None:
    """{ticket_action:delete} is not mapped: refused naming triggered_event, never dropped."""
    error = refused(fixture("ticket_deleted"))
    assert error.field == "triggered_event"
    assert "ticket_action:delete" in error.reason and "note_type:private" in error.reason


def test_unknown_rule_event_is_refused() -> None:
    """An "event" literal other than the documented ones is refused naming `event`."""
    error = refused({**fixture("reply_sent"), "event": "escalated"})
    assert (error.field, "customer_replied" in error.reason) == ("event", True)


@pytest.mark.parametrize("rendered", ["", "status changed", "{status:{from:2}}", "status:2"])
def test_unreadable_triggered_event_is_refused(rendered: str) -> None:
    """A missing or unreadable triggered_event is refused naming the field."""
    assert (
        refused({**fixture("priority_changed"), "triggered_event": rendered}).field
        == "triggered_event"
    )


def test_triggered_event_tolerates_spaces() -> None:
    """Spaces inside the rendered braces do not matter."""
    event = one(
        {**fixture("priority_changed"), "triggered_event": "{ priority : { from : 3 , to : 4 } }"}
    )
    assert event.type is EventType.PRIORITY_CHANGED


def test_missing_ticket_id_is_refused() -> None:
    """A body without ticket_id is refused naming it."""
    payload = fixture("note_public")
    del payload["ticket_id"]
    assert refused(payload).field == "ticket_id"


def test_body_that_is_not_an_object_is_refused() -> None:
    """A JSON array is not a Freshdesk rule body."""
    refused([fixture("note_public")])


# --- time ------------------------------------------------------------------------------------------


def test_without_a_timestamp_the_receive_time_is_used() -> None:
    """Freshdesk renders no time: a body without occurred_at is dated when it was received."""
    assert one(fixture("status_waiting_on_customer")).occurred_at == RECEIVED


def test_a_timestamp_can_be_required() -> None:
    """With require_timestamp, a body without occurred_at is refused naming it."""
    adapter = FreshdeskAdapter(require_timestamp=True)
    assert refused(fixture("status_waiting_on_customer"), adapter).field == "occurred_at"


@pytest.mark.parametrize("value", ["2025-03-04T08:40:00", "Tue, 4 Mar, 2025 at 5:00 PM"])
def test_unusable_timestamp_is_refused(value: str) -> None:
    """An occurred_at without offset, or in Freshdesk's display format, is refused."""
    assert refused({**fixture("note_private"), "occurred_at": value}).field == "occurred_at"


# --- event ids -------------------------------------------------------------------------------------


def test_duplicate_delivery_yields_identical_event_ids() -> None:
    """A retried delivery (same body, keys in any order) gets the same event id."""
    payload = fixture("status_waiting_on_customer")
    reordered = dict(reversed(list(payload.items())))
    first, again = one(payload), one(reordered)
    assert first.event_id == again.event_id
    assert re.fullmatch(r"10542:[0-9a-f]{32}", first.event_id)


def test_different_deliveries_get_different_event_ids() -> None:
    """Two replies differing only in their latest comment are two events."""
    payload = fixture("reply_sent")
    second = {**payload, "latest_public_comment": "Any news on your side?"}
    assert one(payload).event_id != one(second).event_id
