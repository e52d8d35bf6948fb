"""Jira Cloud as it really sends: who answered, the ticket's context, delivery identity, settings.

Where the payloads' shapes come from (tests/fixtures/webhooks/jira/SOURCES.md says the same):

- ``cloud_issue_created`` and ``cloud_issue_updated_group``: a real Jira Cloud
  ``jira:issue_created`` / ``jira:issue_updated`` delivery, github.com/sirajju/skill-sync
  ``webhook/JIRA.js`` (changelog items with ``fieldId``, ``"field": "Status"``, times like
  ``2024-12-29T08:41:23.303+0530``), and Atlassian's issue payload
  (developer.atlassian.com/cloud/jira/platform/webhooks/). The JSM fields (organizations as a
  list of ``{id, name, _links}``, the request type) follow the JSM REST API's request
  representation; a custom field's changelog item is Jira's ``ChangeDetails`` (``field`` is the
  field's name, ``fieldtype`` ``custom``, ``fieldId`` ``customfield_<n>``).
- ``cloud_comment_created_*``: a real Jira Cloud ``comment_created`` delivery,
  github.com/zulip/zulip ``zerver/webhooks/jira/fixtures/comment_created_with_account_mention.json``
  (2024): the ``issue`` is reduced to summary, issuetype, project, assignee, priority and status:
  no ``reporter``, no ``labels``.
- ``jsdPublic``: "Whether the comment is visible in Jira Service Desk. Defaults to true when
  comments are created in the Jira Cloud Platform" (Jira Cloud REST ``Comment``); ``accountType``
  ``atlassian``, ``app`` or ``customer`` (Jira Cloud REST ``User``).
- Changelog items of ``jira:issue_updated`` (one per field changed: ``field``, ``fieldtype``,
  ``fieldId``, ``from``/``to`` ids, ``fromString``/``toString``): ``summary`` and ``reporter``
  (with ``tmpToAccountId``) and a description-only update as in github.com/sirajju/skill-sync
  ``webhook/JIRA.js`` (real Cloud deliveries, 2024); ``issuetype`` as in
  github.com/mobitel-ltd/jira-to-matrix ``test/fixtures/webhooks/issue/updated/move-issue.json``;
  a ``Rank`` change as in that repository's ``issue/updated/rank-changed.json``; a status item
  whose ``field`` is the site's language (``"Статус"``, ``fieldId`` ``status``) as in its
  ``webhooks/epic/created.json``; ``labels`` and a custom group field as in
  ``cloud_issue_updated_group`` (SOURCES.md).
- ``X-Atlassian-Webhook-Identifier`` (unique within the site, unchanged across retries) and
  ``X-Atlassian-Webhook-Retry``: Atlassian's retry policy announcement
  (community.developer.atlassian.com/t/new-jira-cloud-webhook-retry-policy/30554) and
  github.com/MrRefactoring/jira.js ``src/webhooks/headers.ts`` (a capture from a real site).

The evaluation uses the CONTRACTS.md example policy: P1 first response in 1 h, Madrid office hours.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from scheduler.clock import State
from scheduler.evaluate import evaluate
from shared.events import AuthorRole, Event, EventType, Status
from shared.integrations import Jira, parse_integrations
from shared.policy import Policy
from shared.policy_file import load_policy
from tests.support import ROOT
from tests.unit.adapter_support import Fixtures, json_body
from worker.adapters.base import WebhookRequest
from worker.adapters.jira import JiraAdapter
from worker.adapters.signatures import sign_jira

FIXTURES = Fixtures("jira")
SECRET = "jira-webhook-secret"
REQUESTER = "712020:5c3e1f0a-8d4b-4a61-9f2e-2b7d9c0e4a11"
AGENT = "5b10ac8d82e05b22cc7d4ef5"
HALF_PAST_TEN_MADRID = datetime(2025, 3, 4, 9, 30, tzinfo=UTC)  # first response was due 10:02
P1 = JiraAdapter(priorities={"Highest": "P1"})


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(ROOT / "tests" / "fixtures" / "contract-example.yaml")


def fixture(name: str) -> dict[str, Any]:
    return FIXTURES.load(name)


def events(
    payload: dict[str, Any],
    adapter: JiraAdapter = P1,
    identifier: str = "b1f0c6a2-1e4d-4c55-9a1e-6f2d7c3b8a90",
    headers: dict[str, str] | None = None,
) -> list[Event]:
    """What ``adapter`` makes of ``payload`` delivered by Jira (a test helper, not a test)."""
    body = json_body(payload)
    request = WebhookRequest(
        body,
        {
            **sign_jira(body, SECRET),
            "x-atlassian-webhook-identifier": identifier,
            **(headers or {}),
        },
        datetime.fromtimestamp(payload["timestamp"] / 1000, UTC) + timedelta(seconds=1),
    )
    adapter.verify(request, SECRET)
    return adapter.to_events(payload, request)


def one(payload: dict[str, Any], adapter: JiraAdapter = P1) -> Event:
    [event] = events(payload, adapter)
    return event


def settings(yaml: str) -> JiraAdapter:
    """The adapter an integration settings file's ``jira:`` section describes."""
    section = parse_integrations(yaml).jira
    assert isinstance(section, Jira)
    return JiraAdapter.from_settings(section)


# --- story 2: a requester's own comment is not a response -----------------------------------------


def test_requesters_own_comment_on_an_internal_desk_does_not_meet_first_response(
    policy: Policy,
) -> None:
    """Story 2. On an internal service desk the requester has an Atlassian account like the
    agents, and Jira Cloud's comment_created carries no ``fields.reporter``: her own comment at
    09:20 must leave first response unmet, and breached at 10:30 (due 10:02)."""
    created = one(fixture("cloud_issue_created"))
    by_requester = one(fixture("cloud_comment_created_requester"))
    sla = evaluate(policy, [created, by_requester], HALF_PAST_TEN_MADRID)
    assert sla.metrics["first_response"].state is State.BREACHED


def test_an_agents_comment_on_the_same_desk_meets_first_response(policy: Policy) -> None:
    """The agent's public comment at 09:45 (same payload shape, another account) is the response."""
    created = one(fixture("cloud_issue_created"))
    thread = [
        one(fixture(name))
        for name in ("cloud_comment_created_requester", "cloud_comment_created_agent")
    ]
    sla = evaluate(policy, [created, *thread], HALF_PAST_TEN_MADRID)
    assert sla.metrics["first_response"].state is State.MET
    assert sla.metrics["first_response"].completed_at == datetime(
        2025, 3, 4, 8, 45, 30, 250000, UTC
    )


def test_every_comment_names_its_author_and_the_creation_names_the_requester() -> None:
    """The reduced issue cannot say who asked: the comment carries its author's account id, and
    the created event the reporter's, which the core compares."""
    created = one(fixture("cloud_issue_created"))
    comment = one(fixture("cloud_comment_created_requester"))
    assert (created.requester_id, created.requester) == (REQUESTER, REQUESTER)
    assert (comment.author, comment.requester_id) == (REQUESTER, None)


def test_a_comment_whose_payload_names_the_reporter_is_the_requesters_reply() -> None:
    """Inside jira:issue_updated (full issue, reporter included) her comment is customer_replied."""
    payload = fixture("cloud_issue_created")
    payload.update(
        webhookEvent="jira:issue_updated",
        issue_event_type_name="issue_commented",
        comment=fixture("cloud_comment_created_requester")["comment"],
    )
    del payload["changelog"]
    event = one(payload)
    assert (event.type, event.author, event.author_role, event.requester_id) == (
        EventType.CUSTOMER_REPLIED,
        REQUESTER,
        AuthorRole.REQUESTER,
        REQUESTER,
    )


# --- who answered ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("account_type", "kind", "role", "automatic"),
    [
        ("customer", EventType.CUSTOMER_REPLIED, AuthorRole.CUSTOMER, False),
        ("app", EventType.AGENT_REPLIED, AuthorRole.SYSTEM, True),
        ("atlassian", EventType.AGENT_REPLIED, None, False),
    ],
)
def test_the_authors_account_type_says_who_answered(
    account_type: str, kind: EventType, role: AuthorRole | None, automatic: bool
) -> None:
    """A portal-only customer (``customer``) is the customer's side, an ``app`` (automation) is
    the system; an Atlassian account that is not the reporter is left to the core."""
    payload = fixture("cloud_comment_created_agent")
    payload["comment"]["author"]["accountType"] = account_type
    event = one(payload)
    assert (event.type, event.author_role, event.automatic, event.author) == (
        kind,
        role,
        automatic,
        AGENT,
    )


NO_FLAG, SHARED, INTERNAL = None, True, False
RESTRICTED = {"type": "role", "value": "Service Desk Team"}


@pytest.mark.parametrize(
    ("setting", "jsd_public", "visibility", "public"),
    [
        ("jsd_public", SHARED, None, True),
        ("jsd_public", INTERNAL, None, False),
        ("jsd_public", NO_FLAG, None, True),
        ("jsd_public", NO_FLAG, RESTRICTED, False),
        ("unrestricted", INTERNAL, None, True),
        ("unrestricted", SHARED, RESTRICTED, False),
        ("all", INTERNAL, RESTRICTED, True),
    ],
)
def test_public_comments_setting_decides_which_comments_are_public(
    setting: str, jsd_public: bool | None, visibility: dict[str, str] | None, public: bool
) -> None:
    """jsd_public: JSM's flag (absent: no visibility restriction); unrestricted: no
    ``visibility`` restriction, whatever the flag; all: every comment."""
    payload = fixture("cloud_comment_created_agent")
    del payload["comment"]["jsdPublic"]
    if jsd_public is not None:
        payload["comment"]["jsdPublic"] = jsd_public
    if visibility is not None:
        payload["comment"]["visibility"] = visibility
    adapter = settings(f"jira:\n  public_comments: {setting}\n  priorities: {{Highest: P1}}\n")
    assert one(payload, adapter).public is public


@pytest.mark.parametrize("kind", ["issue_comment_edited", "issue_comment_deleted"])
def test_an_edited_or_deleted_comment_inside_an_update_is_not_a_reply(kind: str) -> None:
    """jira:issue_updated also carries the comment when it is edited (issue_event_type_name
    ``issue_comment_edited``, zulip ``comment_edited_v2.json``): not a new reply."""
    payload = fixture("cloud_issue_created")
    payload.update(
        webhookEvent="jira:issue_updated",
        issue_event_type_name=kind,
        comment=fixture("cloud_comment_created_agent")["comment"],
    )
    del payload["changelog"]
    assert events(payload) == []


# --- the ticket's context -------------------------------------------------------------------------


def test_issue_created_carries_the_tickets_context_cleaned() -> None:
    """Summary (its newline made a space), issue type and labels; no assignee yet; no channel
    (Jira's request channel is not an issue field); no group without `group_field`."""
    event = one(fixture("cloud_issue_created"))
    assert event.model_dump(include={"subject", "ticket_type", "tags", "assignee", "group"}) == {
        "subject": "VPN drops every 10 minutes (Madrid office)",
        "ticket_type": "[System] Incident",
        "tags": ("vpn", "plan_gold", "tz_Europe/Madrid"),
        "assignee": None,
        "group": None,
    }
    assert event.channel is None


def test_issue_created_starts_in_its_mapped_status_and_never_refuses_an_unknown_one() -> None:
    """JSM creates a request in "Waiting for support": the ticket starts open. A status no map
    knows leaves the creation's status to the core (new), rather than losing the ticket."""
    payload = fixture("cloud_issue_created")
    assert one(payload).status is Status.OPEN
    payload["issue"]["fields"]["status"].update(name="Triage", id="10077")
    payload["issue"]["fields"]["status"]["statusCategory"]["key"] = "new"
    assert one(payload).status is None


def test_a_comment_carries_what_the_reduced_issue_holds() -> None:
    """comment_created's issue has summary, type and assignee, but no labels: tags stay unknown."""
    event = one(fixture("cloud_comment_created_agent"))
    assert (event.subject, event.ticket_type, event.assignee, event.tags) == (
        "VPN drops every 10 minutes (Madrid office)",
        "[System] Incident",
        "Luis Moreno",
        None,
    )


def test_a_label_change_gives_the_tags_added_and_removed() -> None:
    """The labels item's fromString and toString (space separated) give what was added and
    removed; the issue's labels give the full list."""
    payload = fixture("cloud_issue_updated_group")
    payload["changelog"]["items"][2]["toString"] = "network plan_gold vpn"
    payload["issue"]["fields"]["labels"] = ["vpn", "plan_gold", "network"]
    assigned = events(payload)[0]
    assert (assigned.tags, assigned.tags_added, assigned.tags_removed) == (
        ("vpn", "plan_gold", "network"),
        ("network",),
        ("tz_Europe/Madrid",),
    )


def test_control_characters_and_lengths_never_refuse_a_delivery() -> None:
    """A NUL, tabs and newlines in a summary or a name become single spaces; an overlong
    summary is cut to the event's 1000 characters: the delivery is accepted, not a 422."""
    payload = fixture("cloud_comment_created_agent")
    payload["issue"]["fields"]["summary"] = "VPN\x00 down\t\r\n again " + "x" * 2000
    payload["issue"]["fields"]["assignee"]["displayName"] = "Luis\nMoreno"
    payload["issue"]["fields"]["issuetype"]["name"] = "Incident\x1b[31m"
    event = one(payload)
    assert event.subject is not None and event.subject.startswith("VPN down again xxx")
    assert len(event.subject) == 1000
    assert (event.assignee, event.ticket_type) == ("Luis Moreno", "Incident [31m")


def test_an_assignee_without_a_display_name_is_named_by_account_id() -> None:
    payload = fixture("cloud_comment_created_agent")
    del payload["issue"]["fields"]["assignee"]["displayName"]
    assert one(payload).assignee == AGENT


# --- updates that change only the ticket's context ----------------------------------------------

SUMMARY = {
    "field": "summary",
    "fieldtype": "jira",
    "fieldId": "summary",
    "from": None,
    "fromString": "VPN drops every 10 minutes\n(Madrid office)",
    "to": None,
    "toString": "VPN drops every 10 minutes (Madrid and Bilbao offices)",
}
ISSUE_TYPE = {
    "field": "issuetype",
    "fieldtype": "jira",
    "fieldId": "issuetype",
    "from": "10008",
    "fromString": "[System] Incident",
    "to": "10009",
    "toString": "[System] Service request",
}
DESCRIPTION = {
    "field": "description",
    "fieldtype": "jira",
    "fieldId": "description",
    "from": None,
    "fromString": "Since this morning the VPN drops every ten minutes.",
    "to": None,
    "toString": "Since this morning the VPN drops every ten minutes.\n\nBilbao too.",
}
RANK = {
    "field": "Rank",
    "fieldtype": "custom",
    "fieldId": "customfield_10019",
    "from": "",
    "fromString": "",
    "to": "",
    "toString": "Ranked lower",
}
COLLEAGUE = "5d53f3cbc6b9320d9ea5bdc2"


def reporter_change() -> dict[str, Any]:
    return {
        "field": "reporter",
        "fieldtype": "jira",
        "fieldId": "reporter",
        "from": REQUESTER,
        "fromString": "Ana Ruiz",
        "to": COLLEAGUE,
        "toString": "Marta Gil",
        "tmpFromAccountId": REQUESTER,
        "tmpToAccountId": COLLEAGUE,
    }


def updated(*items: dict[str, Any]) -> dict[str, Any]:
    """A real Cloud ``jira:issue_updated`` (cloud_issue_updated_group) whose changelog holds
    ``items``, its issue as Jira sends it: already changed (a test helper, not a test)."""
    payload = fixture("cloud_issue_updated_group")
    payload["issue_event_type_name"] = "issue_updated"
    payload["changelog"] = {"id": "30931", "items": list(items)}
    fields = payload["issue"]["fields"]
    for item in items:
        if item["fieldId"] == "summary":
            fields["summary"] = item["toString"]
        if item["fieldId"] == "issuetype":
            fields["issuetype"].update(id=item["to"], name=item["toString"])
        if item["fieldId"] == "reporter":
            fields["reporter"].update(accountId=item["to"], displayName=item["toString"])
    return payload


def tier2_only() -> JiraAdapter:
    """`groups` maps it-tier2 to tier 2; it-tier3 has no tier."""
    return settings(f"{CONTEXT}  groups: {{it-tier2: 2}}\n")


def test_a_summary_edit_gives_one_updated_event_with_the_new_subject() -> None:
    """Only the summary changed: one `updated` event (none before), its id the changelog's,
    at the delivery's time, with the new subject and the rest of the ticket's context."""
    event = one(updated(SUMMARY))
    assert event.model_dump(exclude_defaults=True) == {
        "event_id": "changelog:30931:updated",
        "source": "jira",
        "ticket_id": "IT-1042",
        "type": EventType.UPDATED,
        "occurred_at": datetime(2025, 3, 4, 9, 10, 0, 500000, UTC),
        "subject": "VPN drops every 10 minutes (Madrid and Bilbao offices)",
        "ticket_type": "[System] Incident",
        "assignee": "Luis Moreno",
        "tags": ("vpn", "plan_gold", "tz_Europe/Madrid", "network"),
        "requester_id": REQUESTER,
    }


def test_an_issue_type_change_gives_the_new_ticket_type() -> None:
    event = one(updated(ISSUE_TYPE))
    assert (event.type, event.ticket_type) == (EventType.UPDATED, "[System] Service request")


def test_a_label_change_alone_gives_the_tags_added_and_removed() -> None:
    labels = fixture("cloud_issue_updated_group")["changelog"]["items"][2]
    labels["toString"] = "network plan_gold vpn"
    payload = updated(labels)
    payload["issue"]["fields"]["labels"] = ["vpn", "plan_gold", "network"]
    event = one(payload)
    assert (event.type, event.tags, event.tags_added, event.tags_removed) == (
        EventType.UPDATED,
        ("vpn", "plan_gold", "network"),
        ("network",),
        ("tz_Europe/Madrid",),
    )


def test_a_move_to_a_group_without_a_tier_is_an_update_and_with_a_tier_an_assignment() -> None:
    """`groups` maps it-tier2 only: a move to it-tier3 changes the ticket's group, not its tier
    (`updated`); a move to it-tier2 is `assigned` at tier 2."""
    group = fixture("cloud_issue_updated_group")["changelog"]["items"][0]
    moved = one(updated(group), tier2_only())
    assert (moved.type, moved.group, moved.tier) == (EventType.UPDATED, "it-tier3", None)
    back = {**group, "to": group["from"], "toString": "it-tier2"}
    payload = updated(back)
    payload["issue"]["fields"]["customfield_10060"]["name"] = "it-tier2"
    assigned = one(payload, tier2_only())
    assert (assigned.type, assigned.group, assigned.tier) == (EventType.ASSIGNED, "it-tier2", 2)


def test_a_reporter_change_gives_the_new_requester_id() -> None:
    """The core compares a comment's author with the last requester_id: the new reporter's."""
    event = one(updated(reporter_change()))
    assert (event.type, event.requester_id) == (EventType.UPDATED, COLLEAGUE)


def test_several_context_changes_in_one_delivery_are_one_updated_event() -> None:
    labels = fixture("cloud_issue_updated_group")["changelog"]["items"][2]
    [event] = events(updated(SUMMARY, labels, ISSUE_TYPE))
    assert (event.type, event.subject, event.ticket_type, event.tags_added) == (
        EventType.UPDATED,
        "VPN drops every 10 minutes (Madrid and Bilbao offices)",
        "[System] Service request",
        ("network",),
    )


def test_a_context_change_with_a_state_change_gives_only_the_state_event() -> None:
    """The assignment already carries the new summary: no `updated` beside it."""
    assignee = fixture("cloud_issue_updated_group")["changelog"]["items"][1]
    [event] = events(updated(SUMMARY, assignee))
    assert (event.type, event.subject, event.event_id) == (
        EventType.ASSIGNED,
        "VPN drops every 10 minutes (Madrid and Bilbao offices)",
        "changelog:30931:1",
    )


@pytest.mark.parametrize("item", [DESCRIPTION, RANK], ids=["description", "rank"])
def test_a_change_no_event_holds_still_gives_nothing(item: dict[str, Any]) -> None:
    """The description and the rank are not part of the ticket's context: no event."""
    assert events(updated(item)) == []


def test_an_updated_event_moves_no_clock(policy: Policy) -> None:
    """Editing the summary before anyone answers leaves every SLA metric as it was."""
    created = one(fixture("cloud_issue_created"))
    edited = one(updated(SUMMARY))
    assert evaluate(policy, [created, edited], HALF_PAST_TEN_MADRID) == evaluate(
        policy, [created], HALF_PAST_TEN_MADRID
    )


def test_a_field_named_in_the_sites_language_is_found_by_its_id() -> None:
    """On a site in Russian the status item's ``field`` is "Статус"; its ``fieldId`` is status."""
    status = {
        "field": "Статус",
        "fieldtype": "jira",
        "fieldId": "status",
        "from": "10010",
        "fromString": "Waiting for support",
        "to": "10011",
        "toString": "Waiting for customer",
    }
    event = one(updated(status))
    assert (event.type, event.status) == (EventType.STATUS_CHANGED, Status.PENDING)


def test_a_retried_context_update_is_the_same_event() -> None:
    """Same body, same identifier, X-Atlassian-Webhook-Retry: identical, so stored once."""
    payload = updated(SUMMARY)
    first = events(payload)
    assert first == events(payload, headers={"x-atlassian-webhook-retry": "2"})
    assert [e.type for e in first] == [EventType.UPDATED]


# --- delivery identity ----------------------------------------------------------------------------


def test_a_retry_counts_once() -> None:
    """Jira retries with the same body and the same X-Atlassian-Webhook-Identifier (and an
    X-Atlassian-Webhook-Retry count): the events are identical, so the store keeps one."""
    payload = fixture("cloud_issue_updated_group")
    first = events(payload)
    retried = events(payload, headers={"x-atlassian-webhook-retry": "1"})
    assert first == retried and [e.type for e in first] == [EventType.ASSIGNED]


def test_pending_open_pending_are_three_distinct_changes() -> None:
    """Waiting for customer -> In Progress -> Waiting for customer: the two moves to the same
    status are distinct changes (their changelog ids differ), never taken for a retry."""
    moves = []
    for changelog, (before, after) in enumerate(
        [
            ("In Progress", "Waiting for customer"),
            ("Waiting for customer", "In Progress"),
            ("In Progress", "Waiting for customer"),
        ],
        start=30900,
    ):
        payload = fixture("cloud_issue_updated_group")
        payload["changelog"] = {
            "id": str(changelog),
            "items": [
                {
                    "field": "Status",
                    "fieldtype": "jira",
                    "fieldId": "status",
                    "fromString": before,
                    "toString": after,
                }
            ],
        }
        moves.extend(events(payload, identifier=f"delivery-{changelog}"))
    assert [e.status for e in moves] == [Status.PENDING, Status.OPEN, Status.PENDING]
    assert len({e.event_id for e in moves}) == 3


def test_identical_bodies_without_content_ids_are_told_apart_by_the_delivery_identifier() -> None:
    """A body Jira sends without a changelog id (so no content id) is identified by its
    delivery: two deliveries with byte-identical bodies but different identifiers are two
    events; the same identifier (a retry) is one."""
    payload = fixture("cloud_issue_updated_group")
    del payload["changelog"]["id"]
    first = events(payload, identifier="delivery-a")
    second = events(payload, identifier="delivery-b")
    retry = events(payload, identifier="delivery-a")
    assert {e.event_id for e in first}.isdisjoint(e.event_id for e in second)
    assert first == retry


# --- settings -------------------------------------------------------------------------------------

CONTEXT = """
jira:
  organization_field: customfield_10002
  group_field: customfield_10060
  priorities: {Highest: P1}
"""


@pytest.mark.parametrize(
    ("lookup", "customer"),
    [
        ("{from: organization}", "Acme Madrid"),
        ("{from: field, field: customfield_10050}", "Gold"),
        ("{from: tag, prefix: plan_}", "gold"),
    ],
)
def test_the_customer_lookup_reads_organization_field_or_tag(lookup: str, customer: str) -> None:
    adapter = settings(f"{CONTEXT}  customer: {lookup}\n")
    assert one(fixture("cloud_issue_created"), adapter).customer == customer


def test_organization_field_alone_gives_the_customer() -> None:
    """Without a `customer` lookup, the first JSM organization is the customer, as before."""
    assert one(fixture("cloud_issue_created"), settings(CONTEXT)).customer == "Acme Madrid"


def test_plan_and_timezone_lookups_are_honoured() -> None:
    adapter = settings(
        f"{CONTEXT}  plan: {{from: field, field: customfield_10050}}\n"
        "  timezone: {from: tag, prefix: tz_}\n"
    )
    event = one(fixture("cloud_issue_created"), adapter)
    assert (event.plan, event.customer_timezone) == ("Gold", "Europe/Madrid")


def test_groups_give_the_tier_on_creation_and_on_a_group_change() -> None:
    """`group_field` names the assignment group (a group picker here); `groups` maps a group's
    name or id to a tier: created in it-tier2 is tier 2, moved to it-tier3 (by id) is tier 3."""
    adapter = settings(
        f"{CONTEXT}  groups: {{it-tier2: 2, 0c5d7e9f-1a2b-4c3d-8e4f-5a6b7c8d9e0f: 3}}\n"
    )
    created = one(fixture("cloud_issue_created"), adapter)
    moved, assigned = events(fixture("cloud_issue_updated_group"), adapter)
    assert (created.group, created.tier) == ("it-tier2", 2)
    assert (moved.type, moved.group, moved.tier) == (EventType.ASSIGNED, "it-tier3", 3)
    assert (assigned.type, assigned.assignee, assigned.tier) == (
        EventType.ASSIGNED,
        "Luis Moreno",
        3,
    )


@pytest.mark.parametrize("key", ["Waiting for vendor", "10042"])
def test_a_custom_workflow_status_maps_by_name_or_id(key: str) -> None:
    payload = fixture("cloud_issue_updated_group")
    payload["changelog"]["items"] = [
        {
            "field": "Status",
            "fieldtype": "jira",
            "fieldId": "status",
            "from": "10011",
            "fromString": "In Progress",
            "to": "10042",
            "toString": "Waiting for vendor",
        }
    ]
    adapter = settings(f"{CONTEXT}  statuses: {{'{key}': on_hold}}\n")
    event = one(payload, adapter)
    assert (event.type, event.status) == (EventType.STATUS_CHANGED, Status.ON_HOLD)


@pytest.mark.parametrize("key", ["Highest", "highest", "1"])
def test_priorities_map_by_name_or_id(key: str) -> None:
    adapter = settings(f"jira:\n  priorities: {{'{key}': P1}}\n")
    assert one(fixture("cloud_issue_created"), adapter).priority == "P1"


def test_an_issue_without_priority_takes_default_priority_or_the_policys() -> None:
    """Priority hidden on the request type: default_priority from the settings, else no
    priority at all, for the policy's default_priority (never a 422)."""
    payload = fixture("cloud_issue_created")
    del payload["issue"]["fields"]["priority"]
    assert one(payload, settings("jira:\n  default_priority: P2\n")).priority == "P2"
    assert one(payload, JiraAdapter()).priority is None


def test_no_settings_is_the_defaults() -> None:
    """A file without a jira section builds the adapter with its defaults."""
    adapter = JiraAdapter.from_settings(None)
    event = one(fixture("cloud_issue_created"), adapter)
    assert (event.priority, event.customer, event.group, event.tier) == (
        "Highest",
        None,
        None,
        None,
    )


def test_the_setup_guides_example_is_valid_and_every_setting_reaches_the_adapter() -> None:
    """docs/portals/jira.md's full `jira:` section validates and maps the Cloud payloads."""
    guide = (ROOT / "docs" / "portals" / "jira.md").read_text()
    example = guide.split("```yaml\n", 1)[1].split("```", 1)[0]
    adapter = settings(example)
    created = one(fixture("cloud_issue_created"), adapter)
    assert created.model_dump(
        include={"priority", "customer", "plan", "customer_timezone", "group", "tier"}
    ) == {
        "priority": "P1",
        "customer": "Acme Madrid",
        "plan": "Gold",
        "customer_timezone": "Europe/Madrid",
        "group": "it-tier2",
        "tier": 2,
    }
    assert (adapter.public_comments, adapter.default_priority) == ("jsd_public", "P3")
    assert adapter.statuses["10042"] is Status.PENDING
