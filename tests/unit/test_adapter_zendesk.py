"""The Zendesk adapter: signed ticket-event webhooks in, canonical events out.

Payloads are tests/fixtures/webhooks/zendesk/*.json, shaped after the sources SOURCES.md there
lists ([Z-events]: Zendesk's "Ticket events" reference; [dust], [lambda], [script]: public
integrations' copies of real bodies).
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from scheduler.clock import State
from scheduler.evaluate import evaluate
from shared.events import AuthorRole, EventType, Status
from shared.policy_file import load_policy
from tests.support import ROOT
from tests.unit.adapter_support import Fixtures, Runner, json_body
from worker.adapters.base import Adapter, Unauthorized, WebhookRequest
from worker.adapters.signatures import sign_zendesk
from worker.adapters.zendesk import ZendeskAdapter

FIXTURES = Fixtures("zendesk")
SECRET = "zendesk-signing-secret"
RECEIVED = datetime(2025, 3, 4, 9, 30, 30, tzinfo=UTC)
ADAPTER = ZendeskAdapter()
# CONTRACTS.md's example policy: P1 first response in 1 h, Madrid office hours.
CONTRACT = load_policy(ROOT / "tests" / "fixtures" / "contract-example.yaml")
TUESDAY_NOON = datetime(2025, 3, 4, 12, 0, tzinfo=UTC)  # the fixtures' tickets open at 08:02


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


def test_ticket_created_maps_priority_customer_requester_and_context() -> None:
    """ticket.created becomes `created` with Zendesk's priority name, org and requester ids, and
    the ticket's context as ``detail`` shows it (shape: [Z-events], [dust] in SOURCES.md)."""
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
        "subject": "VPN drops every 10 minutes",
        "group": "3300445566",
        "tags": ("plan_gold", "vpn"),
        "ticket_type": "incident",
        "channel": "web",
        "requester_id": "3300998877",
    }


def test_ticket_created_takes_its_tier_from_the_group() -> None:
    """With a tier configured for the ticket's group, the created event carries it."""
    assert one(fixture("ticket_created"), ZendeskAdapter(tiers={"3300445566": 1})).tier == 1


def test_an_email_ticket_without_priority_is_created_for_the_policy_to_decide() -> None:
    """Story 1: Zendesk sends ``detail.priority: null`` for a ticket that arrived by e-mail
    (shape: [Z-events]; null priority as [lambda] and [script] in SOURCES.md). It is created
    without priority, not refused: the policy's default_priority (or matrix) gives one."""
    event = one(fixture("ticket_created_email"))
    assert (event.type, event.priority, event.channel) == (EventType.CREATED, None, "email")
    assert (event.ticket_id, event.requester_id, event.ticket_type) == ("48240", "3300998877", None)


def test_an_email_ticket_takes_the_settings_default_priority_first() -> None:
    """A default_priority in the Zendesk settings wins over the policy's."""
    assert one(fixture("ticket_created_email"), ZendeskAdapter(default_priority="P3")).priority == (
        "P3"
    )


def test_an_email_ticket_is_evaluated_at_the_policys_default_priority() -> None:
    """Through the SLA core: the e-mail ticket gets the policy's default_priority (P1 here) and
    its first-response clock runs from creation."""
    policy = CONTRACT.model_copy(update={"default_priority": "P1"})
    sla = evaluate(policy, [one(fixture("ticket_created_email"))], TUESDAY_NOON)
    assert sla.priority == "P1"
    assert sla.metrics["first_response"].state is State.BREACHED


def test_priorities_can_be_renamed() -> None:
    """A configured rename applies (case-insensitively); other names pass through."""
    adapter = ZendeskAdapter(priorities={"high": "P2"})
    assert one(fixture("ticket_created"), adapter).priority == "P2"
    assert one(fixture("priority_changed"), adapter).priority == "URGENT"


# --- comments: who answered -----------------------------------------------------------------------


def test_public_agent_comment_is_a_response_by_its_author() -> None:
    """A public comment by staff is a public `agent_replied` by the author's id, role agent,
    which counts as a response (shape: [Z-events], [dust] in SOURCES.md)."""
    event = one(fixture("comment_added_public_agent"))
    assert (event.type, event.public, event.automatic) == (EventType.AGENT_REPLIED, True, False)
    assert (event.author, event.author_role) == ("3300112233", AuthorRole.AGENT)
    assert event.requester_id == "3300998877"
    assert event.counts_as_response
    assert event.occurred_at == datetime(2025, 3, 4, 9, 17, 42, tzinfo=UTC)


def test_private_agent_note_is_not_a_response() -> None:
    """A private comment by staff is a non-public `agent_replied`: not a response."""
    event = one(fixture("comment_added_private_note"))
    assert (event.type, event.public, event.author_role) == (
        EventType.AGENT_REPLIED,
        False,
        AuthorRole.AGENT,
    )
    assert not event.counts_as_response


def test_requesters_comment_is_a_customer_reply_by_the_requester() -> None:
    """A comment by a non-staff author who is the ticket's requester: `customer_replied`,
    role requester, with the author's id."""
    event = one(fixture("comment_added_requester"))
    assert (event.type, event.author, event.author_role) == (
        EventType.CUSTOMER_REPLIED,
        "3300998877",
        AuthorRole.REQUESTER,
    )


def test_a_ccd_colleagues_comment_is_a_customer_reply_by_a_customer() -> None:
    """Another end user on the ticket (a CC, not staff, not the requester): role customer."""
    payload = fixture("comment_added_requester")
    payload["event"]["comment"]["author"] = {"id": 3300998800, "is_staff": False, "name": "Al"}
    event = one(payload)
    assert (event.type, event.author, event.author_role) == (
        EventType.CUSTOMER_REPLIED,
        "3300998800",
        AuthorRole.CUSTOMER,
    )


def test_a_staff_requesters_own_comment_does_not_meet_first_response() -> None:
    """On an internal desk an agent may open a ticket for themselves: their later comment is
    staff and public, yet it is the requester's, so the first response is still due."""
    created = fixture("ticket_created")
    created["detail"]["priority"] = "URGENT"  # P1: first response within 1 h
    by_agent, own = fixture("comment_added_public_agent"), fixture("comment_added_public_agent")
    by_agent["time"] = own["time"] = "2025-03-04T08:30:00Z"  # 28 minutes after creation
    own["event"]["comment"]["author"]["id"] = own["detail"]["requester_id"]

    def first_response(comment: dict[str, Any]) -> State:
        sla = evaluate(CONTRACT, [one(created), one(comment)], TUESDAY_NOON)
        return sla.metrics["first_response"].state

    assert (first_response(own), first_response(by_agent)) == (State.BREACHED, State.MET)


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


def test_a_custom_status_change_takes_the_status_the_settings_map_its_id_to() -> None:
    """Zendesk custom statuses arrive as ids (shape: [script], [Z-events] in SOURCES.md); a
    custom "Waiting on vendor" under the open category, mapped to on_hold, pauses the ticket."""
    event = one(
        fixture("custom_status_changed"), ZendeskAdapter(statuses={"3300222999": "on_hold"})
    )
    assert (event.type, event.status) == (EventType.STATUS_CHANGED, Status.ON_HOLD)


def test_an_unmapped_custom_status_falls_back_to_its_category() -> None:
    """Without a mapping for the custom status id, its category (``detail.status``) decides."""
    event = one(fixture("custom_status_changed"))
    assert (event.type, event.status) == (EventType.STATUS_CHANGED, Status.OPEN)


def test_a_custom_status_neither_mapped_nor_categorised_is_refused_naming_its_id() -> None:
    """No mapping and no category: refused, saying which id to add to `statuses`."""
    payload = fixture("custom_status_changed")
    del payload["detail"]["status"]
    error = refused(payload)
    assert error.field == "event.current"
    assert "'3300222999'" in error.reason and "statuses" in error.reason


def test_a_status_change_follows_the_mapped_custom_status_of_the_ticket() -> None:
    """A status change and a custom status change of one action agree: the ticket's mapped
    custom status (``detail.custom_status``) wins over the bare category."""
    payload = status_change("PENDING", "OPEN")
    payload["detail"]["custom_status"] = "3300222999"
    event = one(payload, ZendeskAdapter(statuses={"3300222999": "on_hold"}))
    assert (event.type, event.status) == (EventType.STATUS_CHANGED, Status.ON_HOLD)


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


def test_group_assignment_carries_the_group_and_its_tier() -> None:
    """A group change is `assigned` to the new group, with its configured tier, if any."""
    configured = one(fixture("group_assignment_changed"), ZendeskAdapter(tiers={"3300445599": 2}))
    assert (configured.type, configured.group, configured.tier) == (
        EventType.ASSIGNED,
        "3300445599",
        2,
    )
    assert one(fixture("group_assignment_changed")).tier is None


def test_agent_assignment_is_an_assignment_to_the_agent_without_tier() -> None:
    """An agent change (numeric ids in the payload) is `assigned` to that agent, without tier."""
    event = one(fixture("agent_assignment_changed"))
    assert (event.type, event.assignee, event.tier) == (EventType.ASSIGNED, "3300112244", None)


# --- context-only changes: updated ----------------------------------------------------------------
# Zendesk's "Ticket events" reference ([Z-events] in SOURCES.md) gives ticket.tags_changed an
# ``event`` of ``tags_added`` / ``tags_removed`` (as [lambda] parses it), and subject_changed,
# type_changed and requester_changed an ``event`` of ``previous`` / ``current``; ``detail`` is
# the ticket after the change.


def test_tags_changed_is_an_update_carrying_the_tags_added_removed_and_all() -> None:
    """ticket.tags_changed becomes `updated` with the tags added and removed, and every tag the
    ticket has now (``detail.tags``)."""
    event = one(fixture("tags_changed"))
    assert event.model_dump(exclude_defaults=True) == {
        "event_id": "7d2a9e4b-1c3f-4a5b-8e6d-0f9a8b7c6d5e",
        "source": "zendesk",
        "ticket_id": "48213",
        "type": EventType.UPDATED,
        "occurred_at": datetime(2025, 3, 4, 9, 40, tzinfo=UTC),
        "tags": ("escalated", "plan_gold", "vpn"),
        "tags_added": ("escalated",),
        "tags_removed": (),
    }


def test_a_removed_tag_is_carried_cleaned_and_once() -> None:
    """A removal alone is an update too; tags are cleaned like every portal text."""
    payload = fixture("tags_changed")
    payload["detail"]["tags"] = ["plan_gold"]
    payload["event"] = {"tags_added": [], "tags_removed": ["vpn\n", "vpn", "escalated"]}
    event = one(payload)
    assert (event.type, event.tags_added, event.tags_removed, event.tags) == (
        EventType.UPDATED,
        (),
        ("vpn", "escalated"),
        ("plan_gold",),
    )


def test_tags_changed_naming_no_tags_is_refused() -> None:
    """Without tags_added or tags_removed the change cannot be told: refused naming the field."""
    payload = fixture("tags_changed")
    payload["event"] = {}
    assert refused(payload).field == "event.tags_added"


def test_subject_changed_is_an_update_carrying_the_new_subject() -> None:
    """ticket.subject_changed becomes `updated` with the new subject (``event.current``) and the
    ticket's other context."""
    event = one(fixture("subject_changed"))
    assert (event.type, event.subject) == (
        EventType.UPDATED,
        "VPN drops every 10 minutes on the Madrid office Wi-Fi",
    )
    assert (event.group, event.assignee, event.ticket_type, event.requester_id) == (
        "3300445566",
        "3300112233",
        "incident",
        "3300998877",
    )


def test_a_new_subject_with_a_newline_is_cleaned_not_refused() -> None:
    """A subject edited with a pasted newline and tab is one line, not a 422."""
    payload = fixture("subject_changed")
    payload["event"]["current"] = "VPN drops\n\tagain "
    payload["detail"]["subject"] = "VPN drops\n\tagain "
    assert one(payload).subject == "VPN drops again"


def test_type_changed_is_an_update_carrying_the_new_type_in_lower_case() -> None:
    """ticket.type_changed becomes `updated` with the new ticket type, lower case like the
    context's."""
    event = one(fixture("type_changed"))
    assert (event.type, event.ticket_type, event.event_id) == (
        EventType.UPDATED,
        "problem",
        "8a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
    )


def test_requester_changed_is_an_update_naming_the_new_requester() -> None:
    """ticket.requester_changed (an agent who opened a ticket for a caller hands it to the
    caller) becomes `updated` with the new requester's id."""
    event = one(fixture("requester_changed"))
    assert (event.type, event.requester_id) == (EventType.UPDATED, "3300998800")


def test_context_updates_move_no_clock() -> None:
    """Tags, subject, type and requester changes leave every SLA clock as it was."""
    created = one(fixture("ticket_created"))
    updates = [
        one(fixture(name))
        for name in ("tags_changed", "subject_changed", "type_changed", "requester_changed")
    ]
    alone = evaluate(CONTRACT, [created], TUESDAY_NOON)
    updated = evaluate(CONTRACT, [created, *updates], TUESDAY_NOON)
    assert (updated.metrics, updated.checkpoints) == (alone.metrics, alone.checkpoints)
    assert (updated.status, updated.priority, updated.tier) == (
        alone.status,
        alone.priority,
        alone.tier,
    )


@pytest.mark.parametrize(
    "name", ["tags_changed", "subject_changed", "type_changed", "requester_changed"]
)
def test_a_retried_context_update_is_the_same_event(name: str) -> None:
    """Zendesk retries an update with the same event ``id``, under a new invocation or not."""
    first = events(fixture(name), headers={"x-zendesk-webhook-invocation-id": "01HQ7ZK3V9"})
    again = events(fixture(name), headers={"x-zendesk-webhook-invocation-id": "01HQ7ZM8QX"})
    assert first == again


# --- ticket context --------------------------------------------------------------------------------


def test_every_event_carries_the_ticket_context_detail_shows() -> None:
    """A comment event tells the subject, group, assignee, tags, type and channel too."""
    event = one(fixture("comment_added_public_agent"))
    assert (event.subject, event.group, event.assignee) == (
        "VPN drops every 10 minutes",
        "3300445566",
        "3300112233",
    )
    assert (event.tags, event.ticket_type, event.channel) == (
        ("plan_gold", "vpn"),
        "incident",
        "web",
    )


def test_control_characters_in_portal_text_become_spaces_not_refusals() -> None:
    """A subject pasted with a newline and a tab, or a tag with a NUL, is cleaned, not a 422."""
    payload = fixture("ticket_created")
    payload["detail"]["subject"] = "  VPN drops\n\tevery 10 minutes\r\n"
    payload["detail"]["tags"] = ["vpn\x00", "vpn", "", "plan_gold"]
    event = one(payload)
    assert event.subject == "VPN drops every 10 minutes"
    assert event.tags == ("vpn", "plan_gold")


def test_a_subject_longer_than_the_event_holds_is_cut() -> None:
    """Zendesk allows long subjects; the event keeps the first 1000 characters."""
    payload = fixture("ticket_created")
    payload["detail"]["subject"] = "x" * 5000
    assert one(payload).subject == "x" * 1000


def test_a_ticket_whose_tags_were_all_removed_says_so() -> None:
    """An empty tag list is the ticket's tags now (none), not an absent field."""
    payload = fixture("comment_added_public_agent")
    payload["detail"]["tags"] = []
    assert one(payload).tags == ()


@pytest.mark.parametrize(
    ("via", "channel"),
    [
        ("mail", "email"),
        ("web_form", "web"),
        ("web_widget", "web"),
        ("web_service", "api"),
        ("voicemail", "phone"),
        ("phone_call_inbound", "phone"),
        ("chat", "chat"),
        ("native_messaging", "chat"),
        ("mobile_sdk", "mobile"),
        ("whatsapp", "social"),
        ("text_message", "sms"),
        (4, "email"),
        ("rule", "rule"),
        ("closed_ticket", "closed_ticket"),
    ],
)
def test_via_channels_are_named_as_a_support_lead_would(via: object, channel: str) -> None:
    """Zendesk's via types ([Z-via] in SOURCES.md) become email, web, api, phone, chat...; a via
    type with no such name (a trigger's ``rule``) passes through."""
    payload = fixture("ticket_created")
    payload["detail"]["via"] = {"channel": via}
    assert one(payload).channel == channel


# --- refusals --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind",
    [
        "ticket.organization_changed",
        "ticket.brand_changed",
        "ticket.form_changed",
        "ticket.custom_field_changed",
        "ticket.comment_made_private",
        "ticket.merged",
        "ticket.soft_deleted",
        "ticket.marked_as_spam",
    ],
)
def test_an_event_type_not_about_context_is_refused_listing_known_ones(kind: str) -> None:
    """Ticket event types of Zendesk's reference ([Z-events] in SOURCES.md) that change what the
    SLA may read (the organization is the customer) or that the event cannot hold are refused
    (422), never dropped; the answer lists the types to subscribe to."""
    payload = fixture("priority_changed")
    payload["type"] = "zen:event-type:" + kind
    error = refused(payload)
    assert error.field == "type"
    assert kind in error.reason
    assert "zen:event-type:ticket.comment_added" in error.reason
    assert "zen:event-type:ticket.tags_changed" in error.reason


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


# --- delivery identity -----------------------------------------------------------------------------


@pytest.mark.parametrize("second_invocation", ["01HQ7ZK3V9", "01HQ7ZM8QX"])
def test_a_redelivery_of_one_event_is_the_same_event(second_invocation: str) -> None:
    """Zendesk retries an event with the same body (its top-level ``id``) under the same
    invocation id; the same action may also invoke the webhook twice. Either way: one event."""
    first = events(
        fixture("comment_added_public_agent"),
        headers={"x-zendesk-webhook-invocation-id": "01HQ7ZK3V9"},
    )
    again = events(
        fixture("comment_added_public_agent"),
        headers={"x-zendesk-webhook-invocation-id": second_invocation},
    )
    assert first == again
    assert first[0].key == ("zendesk", "6b1f0c2e-3a41-4f7e-9a2d-1c0f5e7b8a90")


def test_two_changes_with_otherwise_identical_bodies_are_two_events() -> None:
    """Pending, open, pending again within the same second: Zendesk gives each change its own
    event ``id``, so the second move to pending is not taken for a retry of the first."""
    to_pending, back = status_change("OPEN", "PENDING"), status_change("OPEN", "PENDING")
    back["id"] = "a8b9c1d2-3e4f-5a6b-7c8d-9e0f1a2b3c4e"
    first, second = one(to_pending), one(back)
    assert first.model_dump(exclude={"event_id"}) == second.model_dump(exclude={"event_id"})
    assert first.key != second.key


def test_event_id_falls_back_to_the_invocation_id() -> None:
    """Without an event `id`, the invocation id header (same across retries) is the id."""
    payload = fixture("priority_changed")
    del payload["id"]
    event = events(payload, headers={"x-zendesk-webhook-invocation-id": "01HQ7ZK3V9"})[0]
    assert event.event_id == "01HQ7ZK3V9"
    assert refused(copy.deepcopy(payload)).field == "id"
