"""The Jira adapter: signed Jira Service Management webhooks in, canonical events out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.events import EventType, Status
from tests.unit.adapter_support import Fixtures, Runner, json_body
from worker.adapters.base import Adapter, RejectedRequest, Unauthorized, Unmappable, WebhookRequest
from worker.adapters.jira import JiraAdapter
from worker.adapters.signatures import sign_jira

FIXTURES = Fixtures("jira")
SECRET = "jira-webhook-secret"
DELIVERY = "a3c1f2d4-5b6e-4f70-8a9b-0c1d2e3f4a5b"
ADAPTER = JiraAdapter()


def sent_at(payload: dict[str, Any]) -> datetime:
    """When Jira raised ``payload`` (a test helper, not a test)."""
    return datetime.fromtimestamp(payload["timestamp"] / 1000, UTC)


def delivery(
    payload: Any, delay: timedelta = timedelta(seconds=2), headers: dict[str, str] | None = None
) -> WebhookRequest:
    """``payload`` as Jira delivers it, ``delay`` after raising it (a test helper, not a test)."""
    body = json_body(payload)
    base = {**sign_jira(body, SECRET), "x-atlassian-webhook-identifier": DELIVERY}
    return WebhookRequest(body, headers if headers is not None else base, sent_at(payload) + delay)


RUN = Runner(ADAPTER, delivery)
fixture, events, one, refused = FIXTURES.load, RUN.events, RUN.one, RUN.refused


def transition(before: str, after: str, category: str | None = None) -> dict[str, Any]:
    """The resolved fixture rewritten as a move from ``before`` to ``after`` (a test helper)."""
    payload = fixture("issue_updated_resolved")
    payload["changelog"]["items"] = [{"field": "status", "fromString": before, "toString": after}]
    payload["issue"]["fields"]["status"] = {"name": after, "statusCategory": {"key": category}}
    return payload


# --- verification ----------------------------------------------------------------------------------


def test_adapter_follows_the_protocol() -> None:
    """JiraAdapter is an `Adapter` whose source is `jira`."""
    adapter: Adapter = JiraAdapter()
    assert adapter.source == "jira"


def test_verify_accepts_a_signed_recent_delivery() -> None:
    """A raw fixture body signed with the secret, arriving a minute late, is accepted."""
    body = FIXTURES.raw("issue_updated_priority")
    received = sent_at(fixture("issue_updated_priority")) + timedelta(minutes=1)
    ADAPTER.verify(WebhookRequest(body, sign_jira(body, SECRET), received), SECRET)


@pytest.mark.parametrize(
    "headers", [{}, {"x-hub-signature": "sha256=00"}], ids=["unsigned", "forged"]
)
def test_verify_refuses_an_unsigned_or_forged_delivery(headers: dict[str, str]) -> None:
    """Without a valid X-Hub-Signature the delivery is refused with 401."""
    request = delivery(fixture("issue_updated_priority"), headers=headers)
    with pytest.raises(Unauthorized) as caught:
        ADAPTER.verify(request, SECRET)
    assert caught.value.field == "x-hub-signature"


def test_verify_refuses_a_delivery_older_than_forty_minutes() -> None:
    """A validly signed body raised more than 40 minutes ago is refused (replay limit).

    Jira retries a failed delivery for up to about 30 minutes, so the default limit is 40: at
    exactly 30, a legitimate retry arriving a little late would be refused and its event lost.
    """
    late = delivery(fixture("comment_created"), delay=timedelta(minutes=40, seconds=1))
    with pytest.raises(Unauthorized, match="stale") as caught:
        ADAPTER.verify(late, SECRET)
    assert caught.value.field == "timestamp"
    ADAPTER.verify(delivery(fixture("comment_created"), delay=timedelta(minutes=31)), SECRET)
    ADAPTER.verify(delivery(fixture("comment_created"), delay=timedelta(minutes=39)), SECRET)


def test_max_age_is_configurable() -> None:
    """A shorter max_age refuses what the default allows."""
    request = delivery(fixture("comment_created"), delay=timedelta(minutes=10))
    with pytest.raises(Unauthorized):
        JiraAdapter(max_age=timedelta(minutes=5)).verify(request, SECRET)


def test_verify_refuses_a_timestamp_from_the_future() -> None:
    """A body dated more than five minutes ahead of the clock is refused."""
    with pytest.raises(Unauthorized, match="future"):
        ADAPTER.verify(delivery(fixture("comment_created"), delay=timedelta(minutes=-6)), SECRET)


@pytest.mark.parametrize("stamp", [None, "1741079862001", 1741079862.5, True])
def test_verify_refuses_a_body_without_usable_timestamp(stamp: object) -> None:
    """Without epoch milliseconds the delivery's age is unknown: refused naming `timestamp`."""
    payload = fixture("comment_created")
    body = json_body({**payload, "timestamp": stamp})
    request = WebhookRequest(body, sign_jira(body, SECRET), sent_at(payload))
    with pytest.raises(Unauthorized) as caught:
        ADAPTER.verify(request, SECRET)
    assert caught.value.field == "timestamp"


def test_verify_refuses_a_signed_body_that_is_not_json() -> None:
    """A correctly signed body that is not JSON is a bad request (400), not a delivery."""
    body = b"timestamp=1741079862001"
    request = WebhookRequest(body, sign_jira(body, SECRET), datetime(2025, 3, 4, tzinfo=UTC))
    with pytest.raises(RejectedRequest) as caught:
        ADAPTER.verify(request, SECRET)
    assert caught.value.status == 400


# --- issues ----------------------------------------------------------------------------------------


def test_issue_created_maps_priority_reporter_and_creation_time() -> None:
    """jira:issue_created becomes `created` with the priority name, its status ("Waiting for
    support": open), the reporter's e-mail and account id, and the summary as the subject."""
    event = one(fixture("issue_created"))
    assert event.model_dump(exclude_defaults=True) == {
        "event_id": "issue:10931:created",
        "source": "jira",
        "ticket_id": "ITSD-482",
        "type": EventType.CREATED,
        "occurred_at": datetime(2025, 3, 4, 8, 2, 11, 402000, tzinfo=UTC),
        "priority": "Medium",
        "status": Status.OPEN,
        "requester": "jo@contoso.example",
        "requester_id": "qm:0b7c1d2e-aaaa-bbbb-cccc-1234567890ab",
        "subject": "VPN drops every 10 minutes",
    }


def test_issue_created_reads_the_configured_organization_field() -> None:
    """With organization_field set, the first JSM organization is the customer."""
    adapter = JiraAdapter(organization_field="customfield_10002")
    assert one(fixture("issue_created"), adapter).customer == "Contoso Ltd"


def test_issue_created_without_priority_is_accepted_for_a_default() -> None:
    """An issue without priority gets default_priority, else none: the policy's default_priority
    (or matrix) gives it one, and a policy with neither refuses it on arrival."""
    payload = fixture("issue_created")
    del payload["issue"]["fields"]["priority"]
    assert one(payload).priority is None
    assert one(payload, JiraAdapter(default_priority="Medium")).priority == "Medium"


def test_priority_change_passes_the_portal_name_through() -> None:
    """A priority changelog item becomes `priority_changed` to its toString, at `timestamp`."""
    event = one(fixture("issue_updated_priority"))
    assert (event.type, event.priority, event.event_id, event.occurred_at) == (
        EventType.PRIORITY_CHANGED,
        "High",
        "changelog:55120:0",
        datetime(2025, 3, 4, 9, 30, 5, 123000, tzinfo=UTC),
    )


def test_resolution_transition_resolves_and_ignores_the_resolution_field() -> None:
    """Moving to "Resolved" is `resolved`; the accompanying resolution item adds nothing."""
    event = one(fixture("issue_updated_resolved"))
    assert (event.type, event.status, event.event_id) == (
        EventType.RESOLVED,
        Status.SOLVED,
        "changelog:55190:1",
    )


def test_move_out_of_resolved_is_a_reopening() -> None:
    """Resolved -> Reopened is `reopened`."""
    event = one(fixture("issue_updated_reopened"))
    assert (event.type, event.status) == (EventType.REOPENED, Status.OPEN)


def test_one_update_with_several_changes_gives_several_events() -> None:
    """Status, priority and assignee changes in one delivery are three events, suffixed by item."""
    found = events(fixture("issue_updated_transition"))
    assert [(e.type, e.status, e.priority, e.event_id) for e in found] == [
        (EventType.STATUS_CHANGED, Status.PENDING, None, "changelog:55141:0"),
        (EventType.PRIORITY_CHANGED, None, "Highest", "changelog:55141:1"),
        (EventType.ASSIGNED, None, None, "changelog:55141:2"),
    ]


def test_summary_edit_gives_one_updated_event_with_the_new_subject() -> None:
    """A summary edit changes nothing an SLA clock reads: one `updated` event, named after the
    changelog, carrying the new subject, with no status, priority or tier."""
    event = one(fixture("issue_updated_summary"))
    assert event.model_dump(exclude_defaults=True) == {
        "event_id": "changelog:55131:updated",
        "source": "jira",
        "ticket_id": "ITSD-482",
        "type": EventType.UPDATED,
        "occurred_at": datetime(2025, 3, 4, 9, 36, 40, 777000, tzinfo=UTC),
        "subject": "VPN drops every 10 minutes (Windows 11 only)",
    }


def test_update_that_changes_nothing_an_event_holds_gives_no_events() -> None:
    """A field that is neither state nor context gives no events: a custom "Story Points" item
    as a real delivery shows it (github.com/crystalvjohnston/jira-slack-webhook
    ``mockdata/updatedIssue1.json``)."""
    payload = fixture("issue_updated_summary")
    payload["changelog"]["items"] = [
        {"field": "Story Points", "fieldtype": "custom", "fromString": "2", "toString": "1"}
    ]
    assert events(payload) == []


@pytest.mark.parametrize(
    ("before", "after", "kind", "status"),
    [
        ("Waiting for support", "In Progress", EventType.STATUS_CHANGED, Status.OPEN),
        ("In Progress", "Waiting for customer", EventType.STATUS_CHANGED, Status.PENDING),
        ("Waiting for customer", "Done", EventType.RESOLVED, Status.SOLVED),
        ("Resolved", "Closed", EventType.CLOSED, Status.CLOSED),
        ("Done", "In Progress", EventType.REOPENED, Status.OPEN),
        ("Closed", "Open", EventType.REOPENED, Status.OPEN),
        ("In Progress", "Canceled", EventType.CLOSED, Status.CLOSED),
        ("In progress", "ON HOLD", EventType.STATUS_CHANGED, Status.ON_HOLD),
    ],
)
def test_status_names_map_to_canonical_events(
    before: str, after: str, kind: EventType, status: Status
) -> None:
    """JSM's usual status names map case-insensitively; leaving done for open reopens."""
    event = one(transition(before, after))
    assert (event.type, event.status) == (kind, status)


def test_unmapped_status_is_refused_naming_item_value_and_known_ones() -> None:
    """A status name outside the map (in a category not mapped) is refused with the known ones."""
    error = refused(transition("In Progress", "Waiting for vendor", "indeterminate"))
    assert error.field == "changelog.items[0].toString"
    assert "'Waiting for vendor'" in error.reason and "waiting_for_customer" in error.reason


def test_done_category_resolves_an_unknown_status_name() -> None:
    """An unknown current status in the `done` category is solved."""
    event = one(transition("In Progress", "Shipped", "done"))
    assert (event.type, event.status) == (EventType.RESOLVED, Status.SOLVED)


def test_status_and_category_maps_can_be_extended() -> None:
    """Statuses map by name, categories by key, each added to the defaults."""
    by_name = JiraAdapter(statuses={"Waiting for vendor": "on_hold"})
    by_category = JiraAdapter(categories={"indeterminate": "open"})
    payload = transition("In Progress", "Waiting for vendor", "indeterminate")
    assert (one(payload, by_name).status, one(payload, by_category).status) == (
        Status.ON_HOLD,
        Status.OPEN,
    )


# --- comments --------------------------------------------------------------------------------------


def test_public_agent_comment_is_a_response() -> None:
    """A comment shared with the customer by an agent is a public `agent_replied`."""
    event = one(fixture("comment_created"))
    assert (event.type, event.public, event.event_id, event.occurred_at) == (
        EventType.AGENT_REPLIED,
        True,
        "comment:40211",
        datetime(2025, 3, 4, 9, 17, 42, 1000, tzinfo=UTC),
    )
    assert event.counts_as_response


def test_internal_comment_is_not_a_response() -> None:
    """A comment with jsdPublic false is a private `agent_replied`."""
    event = one(fixture("comment_created_internal"))
    assert (event.type, event.public, event.counts_as_response) == (
        EventType.AGENT_REPLIED,
        False,
        False,
    )


def test_portal_customer_comment_is_a_customer_reply() -> None:
    """A comment by a portal customer account is `customer_replied`."""
    assert one(fixture("comment_created_customer")).type is EventType.CUSTOMER_REPLIED


def test_reporters_own_comment_is_a_customer_reply() -> None:
    """A comment by the issue's reporter, even with an Atlassian account, is `customer_replied`."""
    payload = fixture("comment_created_customer")
    reporter = payload["issue"]["fields"]["reporter"]
    reporter["accountType"] = payload["comment"]["author"]["accountType"] = "atlassian"
    assert one(payload).type is EventType.CUSTOMER_REPLIED


def test_app_comment_is_an_automatic_reply() -> None:
    """A comment by an app (automation, bot) is an automatic reply: not a response."""
    payload = fixture("comment_created")
    payload["comment"]["author"]["accountType"] = "app"
    event = one(payload)
    assert (event.type, event.automatic, event.counts_as_response) == (
        EventType.AGENT_REPLIED,
        True,
        False,
    )


@pytest.mark.parametrize(
    ("visibility", "public"), [(None, True), ({"type": "role", "value": "Developers"}, False)]
)
def test_comment_visibility_decides_without_jsd_public(visibility: object, public: bool) -> None:
    """Without jsdPublic (plain Jira), a comment restricted by `visibility` is private."""
    payload = fixture("comment_created")
    del payload["comment"]["jsdPublic"]
    if visibility is not None:
        payload["comment"]["visibility"] = visibility
    assert one(payload).public is public


def test_same_comment_via_issue_updated_has_the_same_event_id() -> None:
    """A comment arriving as comment_created and inside jira:issue_updated is one event."""
    direct = one(fixture("comment_created"))
    via_update = events(fixture("issue_updated_commented"), headers={})
    assert via_update == [direct]


@pytest.mark.parametrize("kind", ["comment_updated", "comment_deleted"])
def test_comment_edits_and_deletions_give_no_events(kind: str) -> None:
    """An edited or deleted comment is known but changes no SLA: no events."""
    assert events({**fixture("comment_created"), "webhookEvent": kind}) == []


def test_comment_without_issue_is_refused() -> None:
    """An old Server comment payload without `issue` names no ticket: refused."""
    payload = fixture("comment_created")
    del payload["issue"]
    assert refused(payload).field == "issue.key"


# --- refusals and ids ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["jira:issue_deleted", None])
def test_unknown_or_missing_webhook_event_is_refused(kind: str | None) -> None:
    """A webhookEvent the adapter does not map is refused listing the known ones."""
    payload = {**fixture("issue_deleted"), "webhookEvent": kind}
    error = refused(payload)
    assert error.field == "webhookEvent"
    assert "comment_created" in error.reason


def test_body_that_is_not_an_object_is_refused() -> None:
    """A JSON array is not a Jira webhook."""
    with pytest.raises(Unmappable):
        ADAPTER.to_events([], delivery({"timestamp": 1741079862001}))


def test_change_without_timestamp_is_refused() -> None:
    """A changelog event has no time of its own: without `timestamp` it is refused."""
    payload = fixture("issue_updated_priority")
    request = delivery(payload)
    del payload["timestamp"]
    with pytest.raises(Unmappable) as caught:
        ADAPTER.to_events(payload, request)
    assert caught.value.field == "timestamp"


def test_duplicate_delivery_yields_identical_event_ids() -> None:
    """A retry of a delivery (same body, same identifier) gives identical events."""
    payload = fixture("issue_updated_transition")
    assert events(payload) == events(payload, delay=timedelta(minutes=20))


def test_without_content_ids_the_delivery_identifier_and_index_are_used() -> None:
    """A changelog without id falls back to X-Atlassian-Webhook-Identifier and the index."""
    payload = fixture("issue_updated_transition")
    del payload["changelog"]["id"]
    assert [e.event_id for e in events(payload)] == [f"{DELIVERY}:{i}" for i in range(3)]


def test_without_any_id_a_hash_of_the_body_is_used() -> None:
    """Without content ids or identifier header, ids hash the body: stable across retries."""
    payload = fixture("issue_updated_transition")
    del payload["changelog"]["id"]
    first = [e.event_id for e in events(payload, headers={})]
    assert first == [e.event_id for e in events(payload, headers={})]
    assert first[0].endswith(":0") and len(first[0]) == 34
