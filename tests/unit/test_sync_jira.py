"""Pulling Jira Cloud's missed changes: the REST API's answers become the webhooks' own events.

The API's answers are in the shapes of Atlassian's OpenAPI document of the Jira Cloud REST API v3
(`GET /rest/api/3/search/jql`, `…/issue/{key}/changelog`, `…/issue/{key}/comment`,
`/rest/api/3/myself`, `/rest/api/3/status`): tests/fixtures/api/jira/SOURCES.md says where each
comes from. The webhooks they are compared with are real Jira Cloud delivery shapes
(tests/fixtures/webhooks/jira/cloud_*.json, SOURCES.md there), and the same changes delivered as
``jira:issue_updated`` (the issue as it was then, the changelog entry or the new comment).

The day: 2025-03-04 in Madrid. IT-1042 is raised by Ana Ruiz on an internal desk (09:02), she asks
for news (09:20), Luis Moreno answers (09:45), sets it Waiting for customer, sets it back (10:05),
moves it to tier 3 and adds a label (10:10). IT-1043, raised the day before, gets a higher priority
and a label, and an internal note (09:30); its summary is edited the next morning.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from shared.errors import EscaleraError
from shared.events import AuthorRole, Event, EventType, Status
from shared.integrations import Jira, parse_integrations
from tests.portal_server import Answer, PortalServer, portal_server
from tests.unit.adapter_support import Fixtures, json_body
from worker.adapters.base import WebhookRequest
from worker.adapters.jira import JiraAdapter
from worker.sync.jira import SEARCH, make_puller

API = Path(__file__).resolve().parent.parent / "fixtures" / "api" / "jira"
HOOKS = Fixtures("jira")
SITE = "https://acme-it.atlassian.net"
SINCE = datetime(2025, 3, 3, 23, tzinfo=UTC)  # midnight in Madrid
UNTIL = SINCE + timedelta(days=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
USER, TOKEN = "escalera-sync@acme.example", "ATATT3xFfGF0-jira-api-token-for-tests"
ENV = {"JIRA_API_USER": USER, "JIRA_API_TOKEN": TOKEN}
SETTINGS = f"""
jira:
  base_url: {SITE}
  api_user_env: JIRA_API_USER
  api_token_env: JIRA_API_TOKEN
  organization_field: customfield_10002
  group_field: customfield_10060
  priorities: {{Highest: P1, High: P2, Medium: P3, Low: P3, Lowest: P3}}
  groups: {{it-tier2: 2, it-tier3: 3}}
  customer: {{from: organization}}
  plan: {{from: field, field: customfield_10050}}
  timezone: {{from: tag, prefix: tz_}}
"""


def section(base_url: str = SITE) -> Jira:
    """The desk's ``jira:`` settings, pointed at ``base_url`` (a test helper, not a test)."""
    found = parse_integrations(SETTINGS.replace(SITE, base_url)).jira
    assert isinstance(found, Jira)
    return found


ADAPTER = JiraAdapter.from_settings(section())


def api(name: str) -> Any:
    """One of Jira's REST answers, a fresh copy (a test helper, not a test)."""
    return json.loads((API / f"{name}.json").read_text(encoding="utf-8"))


def answer_the_day(server: PortalServer, *first_page: Any) -> None:
    """Jira's answers for the day; ``first_page`` answers the first search in turn (a test
    helper, not a test)."""
    server.answer("GET", "/rest/api/3/myself", api("myself"))
    server.answer("GET", SEARCH, *(first_page or [api("search_page_1")]))
    server.answer("GET", SEARCH, api("search_page_2"), query={"nextPageToken": "CAEaAggD"})
    for start in ("0", "2"):
        path = "/rest/api/3/issue/IT-1043/changelog"
        server.answer(
            "GET", path, api(f"changelog_IT-1043_startAt_{start}"), query={"startAt": start}
        )
    for key in ("IT-1042", "IT-1043"):
        server.answer("GET", f"/rest/api/3/issue/{key}/comment", api(f"comments_{key}"))
    server.answer("GET", "/rest/api/3/status", api("statuses"))


def never(seconds: float) -> None:
    """The sleep of a pull that must not wait (a test helper, not a test)."""
    raise AssertionError(f"asked to wait {seconds} s")


def pull(server: PortalServer, sleep: Callable[[float], None] = never) -> list[Event]:
    """Every event of the day, page after page (a test helper, not a test)."""
    puller = make_puller(section(server.url), ENV, sleep=sleep)
    events: list[Event] = []
    cursor: str | None = None
    for _ in range(5):  # the day has two pages
        page = puller.page(SINCE, UNTIL, cursor)
        events += page.events
        if page.cursor is None:
            return events
        cursor = page.cursor
    raise AssertionError("the pages never end")


def pulled(first_page: Any = None) -> dict[str, Event]:
    """The day's pulled events by id (a test helper, not a test)."""
    with portal_server() as server:
        answer_the_day(server, *([first_page] if first_page is not None else []))
        events = pull(server)
    by_id = {event.event_id: event for event in events}
    assert len(by_id) == len(events), "an event pulled twice"
    return by_id


# --- the webhooks of the same changes -------------------------------------------------------------


def delivered(payload: dict[str, Any]) -> list[Event]:
    """What the webhook adapter makes of ``payload`` (a test helper, not a test)."""
    request = WebhookRequest(
        json_body(payload),
        {"x-atlassian-webhook-identifier": "0d4c2b1a-9e8f-4a7b-8c6d-5e4f3a2b1c0d"},
        datetime.fromtimestamp(payload["timestamp"] / 1000, UTC) + timedelta(seconds=1),
    )
    return ADAPTER.to_events(payload, request)


def history(ident: str) -> dict[str, Any]:
    """A changelog entry as the API gives it; its webhook carries the same (a test helper)."""
    found = [
        h
        for n in (1, 2)
        for i in api(f"search_page_{n}")["issues"]
        for h in i["changelog"]["histories"]
    ]
    found += [h for s in (0, 2) for h in api(f"changelog_IT-1043_startAt_{s}")["values"]]
    return next(h for h in found if h["id"] == ident)


def updated(issue: dict[str, Any], at: str, *, changelog: str = "", comment: Any = None) -> Any:
    """A ``jira:issue_updated`` delivery: the issue as it was at ``at``, what changed."""
    body: dict[str, Any] = {
        "timestamp": (datetime.fromisoformat(at) - EPOCH) // timedelta(milliseconds=1),
        "webhookEvent": "jira:issue_updated",
        "issue_event_type_name": "issue_commented" if comment else "issue_generic",
        "issue": issue,
    }
    if changelog:
        body["changelog"] = {"id": changelog, "items": history(changelog)["items"]}
    if comment is not None:
        body["comment"] = comment
    return body


def it1042(**fields: Any) -> dict[str, Any]:
    """IT-1042 as the 10:10 delivery shows it, with ``fields`` as they were earlier."""
    issue: dict[str, Any] = HOOKS.load("cloud_issue_updated_group")["issue"]
    issue["fields"].update(fields)
    return issue


def it1043(**fields: Any) -> dict[str, Any]:
    """IT-1043 as the search shows it (a webhook's issue is the same representation), with its
    summary before the next morning's edit and ``fields`` as they were then."""
    issue: dict[str, Any] = api("search_page_2")["issues"][0]
    del issue["changelog"]
    issue["fields"].update(summary="Printer on the 3rd floor jams every morning", **fields)
    return issue


BEFORE_TEN_TEN = {  # IT-1042 before 30877 moved it to tier 3 and assigned it
    "customfield_10060": HOOKS.load("cloud_issue_created")["issue"]["fields"]["customfield_10060"],
    "assignee": None,
    "labels": ["vpn", "plan_gold", "tz_Europe/Madrid"],
}
WAITING_FOR_CUSTOMER = {
    "self": f"{SITE}/rest/api/2/status/10011",
    "name": "Waiting for customer",
    "id": "10011",
    "statusCategory": {"id": 4, "key": "indeterminate", "name": "In Progress"},
}


def comment(fixture: str) -> Any:
    return HOOKS.load(fixture)["comment"]


def the_days_webhooks() -> list[Any]:
    """Every delivery Jira would have made that day for the two requests."""
    note = api("comments_IT-1043")["comments"][1]
    printer = ["printer"]
    return [
        HOOKS.load("cloud_issue_created"),
        updated(
            it1042(**BEFORE_TEN_TEN),
            "2025-03-04T09:20:05.118+01:00",
            comment=comment("cloud_comment_created_requester"),
        ),
        updated(
            it1042(**BEFORE_TEN_TEN),
            "2025-03-04T09:45:30.250+01:00",
            comment=comment("cloud_comment_created_agent"),
        ),
        updated(
            it1042(**BEFORE_TEN_TEN, status=WAITING_FOR_CUSTOMER),
            "2025-03-04T09:45:31.004+01:00",
            changelog="30840",
        ),
        updated(it1042(**BEFORE_TEN_TEN), "2025-03-04T10:05:12.730+01:00", changelog="30849"),
        HOOKS.load("cloud_issue_updated_group"),
        updated(it1043(labels=[]), "2025-03-04T09:30:12.300+01:00", changelog="30866"),
        updated(it1043(labels=printer), "2025-03-04T09:31:40.021+01:00", changelog="30871"),
        updated(it1043(labels=printer), "2025-03-04T09:32:05.000+01:00", comment=note),
    ]


# --- a day recovered ------------------------------------------------------------------------------


def test_a_days_changes_become_exactly_the_events_their_webhooks_give() -> None:
    """Every change of the day, pulled, is the event its webhook gives: same id, type, status,
    priority, tier, time and context (subject, group, assignee, tags, requester)."""
    hooks = [event for payload in the_days_webhooks() for event in delivered(payload)]
    assert pulled() == {event.event_id: event for event in hooks}
    assert len(hooks) == 10


def test_the_days_story_as_the_desk_sees_it() -> None:
    """Created at tier 2 as P1; the requester's question is no response, the agent's reply is;
    waiting for customer and back; tier 3 with the new label; P2 and an internal note on the
    other request."""
    events = pulled()
    created = events["issue:20417:created"]
    assert (created.type, created.priority, created.tier) == (EventType.CREATED, "P1", 2)
    assert (created.customer, created.plan, created.customer_timezone) == (
        "Acme Madrid",
        "Gold",
        "Europe/Madrid",
    )
    question, reply = events["comment:51230"], events["comment:51238"]
    assert (question.type, question.author_role) == (
        EventType.CUSTOMER_REPLIED,
        AuthorRole.REQUESTER,
    )
    assert (reply.type, reply.public) == (EventType.AGENT_REPLIED, True)
    assert [events[f"changelog:{c}:0"].status for c in ("30840", "30849")] == [
        Status.PENDING,
        Status.OPEN,
    ]
    moved = events["changelog:30877:0"]
    assert (moved.type, moved.tier, moved.group, moved.tags_added) == (
        EventType.ASSIGNED,
        3,
        "it-tier3",
        ("network",),
    )
    assert events["changelog:30866:0"].priority == "P2"
    assert events["changelog:30871:updated"].tags_added == ("printer",)
    note = events["comment:51235"]
    assert (note.type, note.public) == (EventType.AGENT_REPLIED, False)


def test_a_comment_keeps_the_id_of_its_comment_created_delivery() -> None:
    """A comment stored from Jira Cloud's ``comment_created`` is known again when pulled."""
    events = pulled()
    for fixture in ("cloud_comment_created_requester", "cloud_comment_created_agent"):
        [hook] = delivered(HOOKS.load(fixture))
        assert hook.event_id in events
        assert events[hook.event_id].occurred_at == hook.occurred_at


def test_only_the_changes_inside_the_window_are_pulled() -> None:
    """Changes of the day before and of the next morning are left out, and the day's events carry
    the summary as it was then, not as the next morning's edit left it."""
    events = pulled()
    left_out = {"issue:20426:created", "changelog:30790:0", "comment:51104", "comment:51402"}
    assert not left_out & set(events)
    assert not any(key.startswith("changelog:30990") for key in events)
    assert events["changelog:30866:0"].subject == "Printer on the 3rd floor jams every morning"


# --- what is asked of Jira ------------------------------------------------------------------------


def test_the_settings_jql_narrows_the_search_to_the_desks_projects() -> None:
    """`sync_jql` keeps the pull to the desk's projects when the API account sees more."""
    scoped = section().model_copy(update={"sync_jql": "project in (IT, HR)"})
    with portal_server() as server:
        answer_the_day(server)
        scoped = scoped.model_copy(update={"base_url": server.url})
        puller = make_puller(scoped, ENV, sleep=never)
        puller.page(SINCE, UNTIL, None)
    jql = server.asked_for(SEARCH)[0].query["jql"]
    assert jql == ['(project in (IT, HR)) AND updated >= "2025-03-04 00:00" ORDER BY updated ASC']


def test_the_search_starts_at_midnight_in_the_api_users_time_zone() -> None:
    """JQL reads times in the API user's zone (Europe/Madrid): 23:00 UTC is asked as 00:00, with
    the changelog and the fields the settings read, signed in with the e-mail and API token."""
    with portal_server() as server:
        answer_the_day(server)
        pull(server)
    first, second = server.asked_for(SEARCH)
    assert first.query["jql"] == ['updated >= "2025-03-04 00:00" ORDER BY updated ASC']
    assert first.query["expand"] == ["changelog"]
    fields = first.query["fields"][0].split(",")
    assert {"customfield_10002", "customfield_10060", "customfield_10050", "reporter"} <= set(
        fields
    )
    assert second.query["nextPageToken"] == ["CAEaAggD"]
    basic = base64.b64encode(f"{USER}:{TOKEN}".encode()).decode()
    assert first.headers["authorization"] == f"Basic {basic}"


def test_a_cut_changelog_is_read_whole_from_the_changelog_endpoint() -> None:
    """The search holds only IT-1043's latest entries: the rest is read page by page, so its
    priority change of the morning is not missed."""
    with portal_server() as server:
        answer_the_day(server)
        events = pull(server)
    asked = server.asked_for("/rest/api/3/issue/IT-1043/changelog")
    assert [a.query["startAt"] for a in asked] == [["0"], ["2"]]
    assert "changelog:30866:0" in {event.event_id for event in events}
    assert server.asked_for("/rest/api/3/issue/IT-1042/changelog") == []


def test_a_rate_limit_is_waited_out() -> None:
    """A 429 with ``Retry-After: 7`` on the search is waited (7 s asked of ``sleep``) and the
    page then read: the same events, nothing lost."""
    waited: list[float] = []
    with portal_server() as server:
        busy = Answer({"errorMessages": ["Rate limit exceeded"]}, 429, {"Retry-After": "7"})
        answer_the_day(server, busy, api("search_page_1"))
        events = pull(server, sleep=waited.append)
    assert waited == [7.0]
    assert {event.event_id for event in events} == set(pulled())


# --- statuses -------------------------------------------------------------------------------------


def transitions_through(name: str, ident: str) -> Any:
    """The first search page with IT-1042's two transitions going through another status."""
    page = api("search_page_1")
    histories = {h["id"]: h for h in page["issues"][0]["changelog"]["histories"]}
    histories["30840"]["items"][0].update(to=ident, toString=name)
    histories["30849"]["items"][0].update({"from": ident, "fromString": name})
    return page


def test_a_status_only_its_category_maps_is_mapped_as_its_webhook_would() -> None:
    """A custom status of the Done category ("Fixed, watching", mapped by no setting) resolves
    the request, as its webhook does, which carries the status's category; the pull reads the
    category from Jira's list of statuses. The move out of it is the webhook's too (open)."""
    page = transitions_through("Fixed, watching", "10057")
    events = pulled(page)
    histories = {h["id"]: h for h in page["issues"][0]["changelog"]["histories"]}
    fixed = {**WAITING_FOR_CUSTOMER, "name": "Fixed, watching", "id": "10057"}
    fixed["statusCategory"] = {"id": 3, "key": "done", "name": "Done"}
    hooks = [
        updated(it1042(**BEFORE_TEN_TEN, status=fixed), "2025-03-04T09:45:31.004+01:00"),
        updated(it1042(**BEFORE_TEN_TEN), "2025-03-04T10:05:12.730+01:00"),
    ]
    for hook, entry in zip(hooks, ("30840", "30849"), strict=True):
        hook["changelog"] = {"id": entry, "items": histories[entry]["items"]}
    [resolved], [reopened] = (delivered(hook) for hook in hooks)
    assert (events["changelog:30840:0"], events["changelog:30849:0"]) == (resolved, reopened)
    assert (resolved.type, reopened.status) == (EventType.RESOLVED, Status.OPEN)


def test_a_change_no_setting_maps_is_skipped_and_logged_not_fatal() -> None:
    """A status neither the settings nor its category map is left out with a warning naming the
    ticket and the change; every other change of the day is still pulled."""
    page = transitions_through("Escalated to vendor", "10077")
    with capture_logs() as logs:
        events = pulled(page)
    assert "changelog:30840:0" not in events
    assert "changelog:30849:0" in events
    assert len(events) == 9
    [warning] = [entry for entry in logs if entry["event"] == "sync_change_unmappable"]
    assert (warning["ticket_id"], warning["change"]) == ("IT-1042", "changelog:30840")
    assert "Escalated to vendor" in warning["reason"]


def test_the_creations_own_changelog_is_not_taken_for_changes() -> None:
    """Should Jira list the changelog its ``jira:issue_created`` delivery carries (statuses set
    from nothing), it stays the creation: no changelog events, the creation as delivered."""
    page = api("search_page_1")
    creation = HOOKS.load("cloud_issue_created")["changelog"]
    creation["created"] = "2025-03-04T09:02:11.402+0100"
    page["issues"][0]["changelog"]["histories"].append(creation)
    page["issues"][0]["changelog"]["total"] = 4
    page["issues"][0]["changelog"]["maxResults"] = 4
    events = pulled(page)
    assert not any(key.startswith("changelog:30811") for key in events)
    [created] = delivered(HOOKS.load("cloud_issue_created"))
    assert events["issue:20417:created"] == created


# --- settings -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "environ", "named"),
    [
        ("jira: {api_user_env: U, api_token_env: T}", {"U": USER, "T": TOKEN}, "base_url"),
        (f"jira: {{base_url: {SITE}, api_token_env: T}}", {"T": TOKEN}, "api_user_env"),
        (
            f"jira: {{base_url: {SITE}, api_user_env: U, api_token_env: T}}",
            {"U": USER},
            "variable T",
        ),
    ],
    ids=["no base_url", "no api_user_env", "token variable unset"],
)
def test_missing_settings_are_named_never_a_secret(
    settings: str, environ: dict[str, str], named: str
) -> None:
    """Without the site, or the credentials' variables, the puller is refused, naming what is
    missing and never a value."""
    with pytest.raises(EscaleraError) as refused:
        make_puller(parse_integrations(settings).jira, environ)
    assert named in str(refused.value)
    assert USER not in str(refused.value) and TOKEN not in str(refused.value)


def test_no_jira_section_is_refused() -> None:
    """No ``jira:`` section at all: refused, naming base_url."""
    with pytest.raises(EscaleraError, match="base_url"):
        make_puller(None, ENV)
