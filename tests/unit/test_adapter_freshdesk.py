"""The Freshdesk adapter: automation-rule webhooks with a shared secret, to canonical events.

Where the shapes come from. Freshdesk sends the body a rule's author writes (the keys are ours:
worker/adapters/freshdesk.py documents the body, docs/portals/freshdesk.md the rules); the values
are Freshdesk's placeholders as it renders them. ``{{triggered_event}}`` renders without JSON
quotes, as in real deliveries captured by Zulip's integration (github.com/zulip/zulip,
zerver/webhooks/freshdesk/fixtures/status_changed.json, ticket_created.json, public_note.json);
a reply renders as ``{reply_sent:sent}`` and a group change as ``{group_id:{from:F,to:T}}``
(Freshdesk's own source, github.com/Ramesh-Veeriaperumal/freshconsult: app/models/helpdesk/note/
callbacks.rb ``update_observer_events``, lib/va/observer/constants.rb ``TICKET_EVENTS``).
``{{ticket.modified_on}}``, ``{{ticket.requester.id}}``, ``{{ticket.tags}}`` (names joined by
``, ``) and ``{{ticket.source}}`` are ``Helpdesk::TicketDrop`` (app/drops/helpdesk/ticket_drop.rb)
and ``UserDrop`` methods there; ``{{event_performer.*}}`` is the performer lib/va/webhook/util.rb
adds to every rule webhook. The older fixtures (ticket_created.json, status_*.json, reply_sent
.json...) are the rule bodies Escalera documented before, kept to prove they still work; their
values follow the example rendered body of /work/shared/research/webhooks.md §2.5.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shared.events import AuthorRole, EventType, Status
from tests.unit.adapter_support import Fixtures, Runner, json_body
from worker.adapters import freshdesk
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
    """{ticket_action:created} becomes `created` with the priority name, e-mail and company;
    a body written before the context keys still carries what it has (subject, type, source)."""
    event = one(fixture("ticket_created"))
    assert event.model_dump(exclude_defaults=True, exclude={"event_id"}) == {
        "source": "freshdesk",
        "ticket_id": "10542",
        "type": EventType.CREATED,
        "occurred_at": datetime(2025, 3, 4, 8, 12, 40, tzinfo=UTC),
        "priority": "High",
        "customer": "Fabrikam",
        "requester": "j.doe@fabrikam.example",
        "requester_id": "j.doe@fabrikam.example",
        "subject": "Printer queue stuck on floor 3",
        "group": "L1 Service Desk",
        "ticket_type": "incident",
        "channel": "email",
    }


def test_ticket_created_takes_its_tier_from_the_group_name() -> None:
    """A tier configured for the group's name (case-insensitively) is carried by `created`."""
    assert one(fixture("ticket_created"), FreshdeskAdapter(tiers={"l1 service desk": 1})).tier == 1


def test_ticket_created_without_priority_takes_the_default_or_leaves_it_to_the_policy() -> None:
    """An empty priority placeholder gets default_priority; without one the created event
    carries no priority, and the policy's default_priority (or matrix) gives it one."""
    payload = {**fixture("ticket_created"), "priority": ""}
    assert one(payload, FreshdeskAdapter(default_priority="Low")).priority == "Low"
    assert one(payload).priority is None


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
    payload = fixture("status_pending")
    reordered = dict(reversed(list(payload.items())))
    first, again = one(payload), one(reordered)
    assert first.event_id == again.event_id
    assert re.fullmatch(r"10542:[0-9a-f]{32}", first.event_id)


def test_different_deliveries_get_different_event_ids() -> None:
    """Two replies differing only in their latest comment are two events."""
    payload = fixture("reply_sent")
    second = {**payload, "latest_public_comment": "Any news on your side?"}
    assert one(payload).event_id != one(second).event_id


# --- the ticket's context ------------------------------------------------------------------------


def test_created_with_the_documented_body_carries_the_tickets_context() -> None:
    """Subject, group, tags, type, channel and the requester's id travel with the event; the
    change is dated by {{ticket.modified_on}}, not by when the webhook arrived."""
    event = one(fixture("created_with_context"))
    assert event.model_dump(include=CONTEXT) == {
        "subject": "Printer queue stuck on floor 3",
        "group": "L1 Service Desk",
        "assignee": None,
        "tags": ("printer", "floor-3", "plan_gold"),
        "ticket_type": "incident",
        "channel": "email",
        "requester_id": "80012345678",
    }
    assert event.occurred_at == datetime(2025, 3, 4, 8, 12, 40, tzinfo=UTC)


CONTEXT = {"subject", "group", "assignee", "tags", "ticket_type", "channel", "requester_id"}


def test_every_event_carries_the_context_and_the_assignee() -> None:
    """A status change carries the context too; the assignee is the agent's name."""
    event = one(fixture("status_pending"))
    assert (event.assignee, event.group, event.subject) == (
        "Kim Lee",
        "L1 Service Desk",
        "Printer queue stuck on floor 3",
    )
    assert one({**fixture("status_pending"), "agent": ""}).assignee == "k.lee@ourdesk.example"


def test_portal_text_is_put_on_one_line_and_cut_to_the_events_limits() -> None:
    """A subject with a newline and tabs is one line (never a 422); long text is cut."""
    payload = {
        **fixture("created_with_context"),
        "subject": "Printer\r\nqueue\t\tstuck\u0000 ",
        "tags": "a\nb, " + "t" * 300,
        "group": "x" * 400,
        "type": "Feature Request",
    }
    event = one(payload)
    assert (event.subject, event.ticket_type) == ("Printer queue stuck", "feature request")
    assert event.tags == ("a b", "t" * 128)
    assert event.group == "x" * 256
    long = one({**fixture("created_with_context"), "subject": "s" * 1500})
    assert long.subject == "s" * 1000


def test_an_empty_tags_placeholder_means_no_tags_and_a_missing_key_means_unknown() -> None:
    """{{ticket.tags}} renders "" for a ticket without tags; older bodies have no `tags`."""
    assert one({**fixture("status_pending"), "tags": ""}).tags == ()
    assert one(fixture("status_resolved")).tags is None


def test_repeated_tags_are_kept_once_in_their_order() -> None:
    """A tag listed twice, and an empty item, do not make two tags."""
    assert one({**fixture("status_pending"), "tags": "b, a, b, , a"}).tags == ("b", "a")


@pytest.mark.parametrize(
    ("source", "channel"),
    [
        ("Email", "email"),
        ("Portal", "web"),
        ("Phone", "phone"),
        ("Chat", "chat"),
        ("Feedback Widget", "web"),
        ("Outbound Email", "outbound_email"),
        ("WhatsApp", "social"),
        ("MobiHelp", "mobile"),
        ("7", "chat"),
        ("Some New Source", "some_new_source"),
    ],
)
def test_ticket_sources_are_normalised_to_channels(source: str, channel: str) -> None:
    """{{ticket.source}} names (or the REST API's codes) become Escalera's channels."""
    assert one({**fixture("status_pending"), "source_channel": source}).channel == channel


def test_a_body_without_context_keys_maps_as_before() -> None:
    """A body written before (no subject, tags, agent, requester id) leaves them out."""
    event = one(fixture("status_resolved"))
    assert (event.subject, event.assignee, event.tags, event.channel) == (None,) * 4
    assert event.requester_id == "j.doe@fabrikam.example"


# --- who answered --------------------------------------------------------------------------------


def test_an_agents_reply_is_a_response_with_its_author() -> None:
    """The "Reply is sent" rule performed by an agent: `agent_replied`, role agent, author the
    performer's id, and the requester's id for the SLA core to compare."""
    event = one(fixture("reply_by_agent"))
    assert (event.type, event.author, event.author_role, event.requester_id) == (
        EventType.AGENT_REPLIED,
        "80000000017",
        AuthorRole.AGENT,
        "80012345678",
    )
    assert event.counts_as_response


def test_the_requesters_reply_is_never_a_response() -> None:
    """The rule performed by the requester: `customer_replied`, role requester."""
    event = one(fixture("reply_by_requester"))
    assert (event.type, event.author_role, event.counts_as_response) == (
        EventType.CUSTOMER_REPLIED,
        AuthorRole.REQUESTER,
        False,
    )


def test_an_agent_who_is_the_requester_does_not_answer_their_own_ticket() -> None:
    """An agent's rule fires for an agent who raised the ticket: the performer is the requester,
    so the reply is the requester's, whatever the rule claims."""
    payload = {**fixture("reply_by_agent"), "performer_id": "80012345678"}
    event = one(payload)
    assert (event.type, event.author_role) == (EventType.CUSTOMER_REPLIED, AuthorRole.REQUESTER)


def test_the_requester_is_recognised_by_e_mail_in_any_case() -> None:
    """Without ids, the performer's and the requester's e-mails are compared, case ignored."""
    payload = {**fixture("reply_by_agent"), "performer_id": "", "requester_id": ""}
    payload["performer_email"] = "j.doe@FABRIKAM.example"
    event = one(payload)
    assert (event.author_role, event.author, event.requester_id) == (
        AuthorRole.REQUESTER,
        "j.doe@fabrikam.example",
        "j.doe@fabrikam.example",
    )


@pytest.mark.parametrize(
    ("performer", "is_agent", "kind", "role"),
    [
        ("80012345678", "", EventType.CUSTOMER_REPLIED, AuthorRole.REQUESTER),
        ("80000000017", "true", EventType.AGENT_REPLIED, AuthorRole.AGENT),
        ("80055500000", "false", EventType.CUSTOMER_REPLIED, AuthorRole.CUSTOMER),
    ],
    ids=["requester", "agent", "cc-customer"],
)
def test_an_unclaimed_reply_is_decided_by_its_performer(
    performer: str, is_agent: str, kind: EventType, role: AuthorRole
) -> None:
    """{reply_sent:sent} without a literal "event": the performer decides (requester by id,
    else {{event_performer.is_agent}})."""
    payload = {**fixture("reply_by_agent"), "performer_id": performer}
    del payload["event"]
    payload["performer_is_agent"] = is_agent
    event = one(payload)
    assert (event.type, event.author_role) == (kind, role)


def test_an_unclaimed_reply_nobody_can_place_is_refused() -> None:
    """{reply_sent:sent} renders alike for both sides: without a literal or the performer it is
    refused naming triggered_event, rather than taken for an agent's response."""
    payload = {**fixture("reply_by_agent"), "performer_id": "", "performer_email": ""}
    del payload["event"]
    error = refused(payload)
    assert error.field == "triggered_event" and "agent_replied" in error.reason


def test_a_note_is_an_agents_with_its_author() -> None:
    """{note_type:public} by an agent: a public `agent_replied` (a response), author kept."""
    payload = {
        **fixture("status_pending"),
        "triggered_event": "{note_type:public}",
        "latest_public_comment": "A technician is on the way.",
    }
    event = one(payload)
    assert (event.type, event.public, event.author, event.counts_as_response) == (
        EventType.AGENT_REPLIED,
        True,
        "80000000017",
        True,
    )


# --- assignment ----------------------------------------------------------------------------------


def test_a_group_change_is_an_assignment_with_the_groups_tier() -> None:
    """{group_id:{from:F,to:T}}: `assigned`, tier of the new group's name, else of its id."""
    by_name = FreshdeskAdapter(tiers={"L2 Field Services": 2})
    by_id = FreshdeskAdapter(tiers={"80000123999": 3})
    event = one(fixture("group_changed"), by_name)
    assert (event.type, event.tier) == (EventType.ASSIGNED, 2)
    assert one(fixture("group_changed"), by_id).tier == 3
    assert one(fixture("group_changed")).tier is None


def test_an_agent_change_is_an_assignment_naming_the_agent() -> None:
    """{responder_id:{from:F,to:T}}: `assigned`, the assignee in the context."""
    payload = {
        **fixture("status_pending"),
        "triggered_event": "{responder_id:{from:,to:80000000017}}",
    }
    event = one(payload)
    assert (event.type, event.assignee, event.tier) == (EventType.ASSIGNED, "Kim Lee", None)


def test_a_triggered_event_rendered_with_json_quotes_reads_the_same() -> None:
    """Should Freshdesk quote the keys as JSON does, the change reads the same."""
    payload = {**fixture("status_pending"), "triggered_event": '{"status":{"from":2,"to":3}}'}
    assert one(payload).status is Status.PENDING


# --- the documented body ---------------------------------------------------------------------------

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "portals" / "freshdesk.md"
RENDERED = {  # how Freshdesk renders each placeholder of the body (module docstring's sources)
    "{{ticket.id}}": "10542",
    "{{triggered_event}}": "{status:{from:2,to:3}}",
    "{{ticket.modified_on}}": "2025-03-04 09:00:12 UTC",
    "{{ticket.status}}": "Pending",
    "{{ticket.priority}}": "High",
    "{{ticket.subject}}": "Printer queue stuck on floor 3",
    "{{ticket.ticket_type}}": "Incident",
    "{{ticket.source}}": "Portal",
    "{{ticket.tags}}": "printer, plan_gold",
    "{{ticket.group.name}}": "L1 Service Desk",
    "{{ticket.agent.name}}": "Kim Lee",
    "{{ticket.agent.email}}": "k.lee@ourdesk.example",
    "{{ticket.requester.id}}": "80012345678",
    "{{ticket.requester.email}}": "j.doe@fabrikam.example",
    "{{event_performer.id}}": "80000000017",
    "{{event_performer.email}}": "k.lee@ourdesk.example",
    "{{ticket.company.name}}": "Fabrikam",
    "{{ticket.latest_public_comment}}": "",
    "{{ticket.latest_private_comment}}": "",
}


def documented_body() -> str:
    found = re.search(r"```json\n(.*?)```", GUIDE.read_text(), re.S)
    assert found is not None
    return found.group(1)


def test_the_guides_body_is_the_adapters_and_maps_every_key() -> None:
    """The body docs/portals/freshdesk.md tells admins to paste is the one the adapter's
    docstring documents, and once rendered it gives a status change with the whole context."""
    docstring = freshdesk.__doc__ or ""
    assert " ".join(documented_body().split()) in " ".join(docstring.split())
    text = documented_body()
    for placeholder, value in RENDERED.items():
        text = text.replace(placeholder, value)
    assert "{{" not in text
    event = one(json.loads(text))
    assert (event.type, event.status, event.occurred_at) == (
        EventType.STATUS_CHANGED,
        Status.PENDING,
        datetime(2025, 3, 4, 9, 0, 12, tzinfo=UTC),
    )
    assert event.model_dump(include=CONTEXT) == {
        "subject": "Printer queue stuck on floor 3",
        "group": "L1 Service Desk",
        "assignee": "Kim Lee",
        "tags": ("printer", "plan_gold"),
        "ticket_type": "incident",
        "channel": "web",
        "requester_id": "80012345678",
    }
