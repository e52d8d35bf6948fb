"""Pulling a day of Zendesk changes through its API gives the events its webhooks would have given.

The API answers are tests/fixtures/api/zendesk/*.json, in the shapes tests/fixtures/api/zendesk/
SOURCES.md names: [Z-export] the incremental ticket export, [Z-audits] and [Z-audit-events] the
ticket audits and their events, [Z-paging] cursor pagination, [Z-users] users, [Z-limits] a 429
(all developer.zendesk.com), and two public copies of real Create audits ([uktrade],
[sendible]). The webhook bodies the pulled events are compared with are Zendesk's "Ticket
events" payloads ([Z-events] in tests/fixtures/webhooks/zendesk/SOURCES.md:
developer.zendesk.com/api-reference/webhooks/event-types/ticket-events/), run through the
webhook adapter.

The puller is run directly against tests/portal_server.py; no test sleeps (``sleep`` is a list).
"""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared import integrations
from shared.errors import EscaleraError
from shared.events import AuthorRole, Event, EventType, Status
from tests.portal_server import Answer, PortalServer, portal_server
from tests.unit.adapter_support import Fixtures, json_body
from worker.adapters.base import WebhookRequest
from worker.adapters.zendesk import ZendeskAdapter
from worker.sync.base import Page
from worker.sync.zendesk import ZendeskPuller, make_puller

API = Path(__file__).resolve().parent.parent / "fixtures" / "api" / "zendesk"
WEBHOOKS = Fixtures("zendesk")
SINCE = datetime(2025, 3, 4, tzinfo=UTC)  # the day the webhook was paused
UNTIL = SINCE + timedelta(days=1)
ENV = {"ZENDESK_API_USER": "sync@acme.example", "ZENDESK_API_TOKEN": "zd-api-token-4f9a"}
EXPORT = "/api/v2/incremental/tickets/cursor.json"
USERS = "/api/v2/users/show_many.json"
# The desk's settings, as docs/portals/zendesk.md's example writes them.
SETTINGS: dict[str, Any] = {
    "api_user_env": "ZENDESK_API_USER",
    "api_token_env": "ZENDESK_API_TOKEN",
    "default_priority": "P3",
    "priorities": {"urgent": "P1", "high": "P2", "normal": "P3", "low": "P4"},
    "groups": {"3300445566": 1, "3300445599": 2},
    "plan": {"from": "tag", "prefix": "plan_"},
}


def api(name: str) -> Any:
    return json.loads((API / f"{name}.json").read_text())


def section(url: str, **overrides: Any) -> integrations.Zendesk:
    return integrations.Zendesk.model_validate({**SETTINGS, "base_url": url, **overrides})


def pull(puller: ZendeskPuller) -> list[Page]:
    """Every page of the window, the way the command pages: until the cursor is None."""
    pages = [puller.page(SINCE, UNTIL, None)]
    while pages[-1].cursor is not None:
        pages.append(puller.page(SINCE, UNTIL, pages[-1].cursor))
    return pages


def delivered(adapter: ZendeskAdapter, body: dict[str, Any]) -> Event:
    """What the webhook adapter makes of one delivery of ``body``."""
    request = WebhookRequest(json_body(body), {}, datetime(2025, 3, 5, tzinfo=UTC))
    [event] = adapter.to_events(body, request)
    return event


def webhook(kind: str, at: str, detail: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    """A ticket event as Zendesk's webhook sends it ([Z-events] envelope)."""
    return {
        "type": f"zen:event-type:ticket.{kind}",
        "account_id": 9876543,
        "id": f"{kind}-{at}",
        "time": at,
        "zendesk_event_version": "2022-11-06",
        "subject": f"zen:ticket:{detail['id']}",
        "detail": detail,
        "event": event,
    }


def comment(comment_id: str, author: str, *, staff: bool, public: bool = True) -> dict[str, Any]:
    """A comment_added ``event`` ([Z-events], [dust] in the webhook fixtures' SOURCES.md)."""
    return {
        "comment": {
            "id": comment_id,
            "body": "(the comment's text)",
            "is_public": public,
            "author": {"id": author, "is_staff": staff, "name": "(the author's name)"},
        }
    }


def without_ids(events: list[Event]) -> list[Event]:
    """The events with their ids blanked: a delivery's id is not in the API."""
    return [e.model_copy(update={"event_id": "-"}) for e in events]


def serve_the_day(server: PortalServer) -> None:
    """Zendesk's answers for 4 March 2025: three tickets changed over two export pages, the
    second export page rate-limited once."""
    first = api("incremental_tickets_page1")
    server.answer("GET", EXPORT, first, query={"start_time": "1741046400"})
    # A real 429 ([Z-limits]): text/plain "Number of allowed API requests per minute exceeded"
    # with a Retry-After in seconds.
    busy = Answer("Number of allowed API requests per minute exceeded", 429, {"Retry-After": "7"})
    second = api("incremental_tickets_page2")
    server.answer("GET", EXPORT, busy, second, query={"cursor": first["after_cursor"]})
    audits = api("audits_48240_page1")
    server.answer("GET", "/api/v2/tickets/48240/audits.json", audits)
    server.answer(
        "GET",
        "/api/v2/tickets/48240/audits.json",
        api("audits_48240_page2"),
        query={"page[after]": audits["meta"]["after_cursor"]},
    )
    server.answer("GET", "/api/v2/tickets/48251/audits.json", api("audits_48251"))
    server.answer("GET", "/api/v2/tickets/48213/audits.json", api("audits_48213"))
    server.answer("GET", USERS, api("users_show_many"))


def webhooks_of_the_day(adapter: ZendeskAdapter) -> list[Event]:
    """The events the webhook would have given for the same changes, in the order they
    happened per ticket: each body written as Zendesk documents its webhooks."""
    # 48240: the e-mail ticket of the webhook fixtures, created without priority. The webhook's
    # time carries nanoseconds and the audit's created_at whole seconds: the same instant here
    # (the command allows for the difference when it matches them).
    created = WEBHOOKS.load("ticket_created_email")
    created["time"] = "2025-03-04T08:02:11Z"
    email = created["detail"]
    pending = {**email, "status": "PENDING", "assignee_id": "3300112233"}
    reopened = {**pending, "status": "OPEN"}
    tier2 = {**reopened, "group_id": "3300445599", "tags": ["billing", "escalated", "plan_gold"]}
    # 48251: a web-form ticket with a priority, created in a tier-1 group.
    web = {
        "id": "48251",
        "subject": "Cannot reset my password",
        "status": "NEW",
        "priority": "HIGH",
        "type": "QUESTION",
        "group_id": "3300445566",
        "assignee_id": None,
        "requester_id": "3300556677",
        "organization_id": None,
        "tags": ["plan_basic"],
        "via": {"channel": "web_form"},
    }
    # 48213: created the day before; on the day an agent's private note and the priority raised.
    vpn = {
        "id": "48213",
        "subject": "VPN drops every 10 minutes",
        "status": "OPEN",
        "priority": "URGENT",
        "type": "INCIDENT",
        "group_id": "3300445566",
        "assignee_id": "3300112233",
        "requester_id": "3300998877",
        "organization_id": "3300776655",
        "tags": ["plan_gold", "vpn"],
        "via": {"channel": "web_form"},
    }
    bodies = [
        created,
        webhook("comment_added", "2025-03-04T09:17:42Z", pending, comment("3301000000202", "3300112233", staff=True)),
        webhook("status_changed", "2025-03-04T09:17:42Z", pending, {"previous": "NEW", "current": "PENDING"}),
        webhook("agent_assignment_changed", "2025-03-04T09:17:42Z", pending, {"previous": None, "current": "3300112233"}),
        webhook("comment_added", "2025-03-04T10:41:03Z", reopened, comment("3301000000302", "3300998877", staff=False)),
        webhook("status_changed", "2025-03-04T10:41:03Z", reopened, {"previous": "PENDING", "current": "OPEN"}),
        webhook("group_assignment_changed", "2025-03-04T11:02:00Z", tier2, {"previous": None, "current": "3300445599"}),
        webhook("tags_changed", "2025-03-04T11:02:00Z", tier2, {"tags_added": ["escalated"], "tags_removed": []}),
        webhook("created", "2025-03-04T15:30:00Z", web, {}),
        webhook("comment_added", "2025-03-04T13:05:00Z", vpn, comment("3300900000302", "3300112233", staff=True, public=False)),
        webhook("priority_changed", "2025-03-04T13:05:00Z", vpn, {"previous": "HIGH", "current": "URGENT"}),
    ]  # fmt: skip
    return [delivered(adapter, body) for body in bodies]


def test_a_day_of_changes_becomes_the_events_the_webhooks_give() -> None:
    """Three tickets changed on the paused day (an e-mail ticket without priority, an agent's
    public reply, the requester's answer, Pending and back to Open, a move to the tier-2 group
    with its tag, a web ticket, a private note and a priority raised) come back as exactly the
    canonical events the webhook deliveries would have made: same types, fields and context,
    with ids of the audits' own."""
    waits: list[float] = []
    with portal_server() as server:
        serve_the_day(server)
        config = section(server.url)
        pages = pull(make_puller(config, ENV, sleep=waits.append))

    pulled = [event for page in pages for event in page.events]
    assert without_ids(pulled) == without_ids(
        webhooks_of_the_day(ZendeskAdapter.from_settings(config))
    )
    assert [e.event_id for e in pulled] == [
        "sync:zendesk:audit:3301000000101:3301000000103",
        "sync:zendesk:audit:3301000000201:3301000000202",
        "sync:zendesk:audit:3301000000201:3301000000203",
        "sync:zendesk:audit:3301000000201:3301000000204",
        "sync:zendesk:audit:3301000000301:3301000000302",
        "sync:zendesk:audit:3301000000301:3301000000303",
        "sync:zendesk:audit:3301000000401:3301000000402",
        "sync:zendesk:audit:3301000000401:3301000000403",
        "sync:zendesk:audit:3301200000101:3301200000103",
        "sync:zendesk:audit:3300900000301:3300900000302",
        "sync:zendesk:audit:3300900000301:3300900000303",
    ]
    assert [(p.tickets, p.cursor) for p in pages] == [
        (2, api("incremental_tickets_page1")["after_cursor"]),
        (1, None),
    ]


def test_what_the_day_means_for_the_sla() -> None:
    """Read as a support lead would: the e-mail ticket takes the default priority, the agent's
    public reply is a response and the requester's is not, Pending pauses and the answer
    reopens, the tier-2 group escalates; the day before and the solve at midnight (the window's
    end) are not part of the day."""
    with portal_server() as server:
        serve_the_day(server)
        pages = pull(make_puller(section(server.url), ENV, sleep=[].append))
    by_id = {e.event_id.rsplit(":", 1)[1]: e for page in pages for e in page.events}

    created = by_id["3301000000103"]
    assert (created.type, created.priority, created.plan, created.channel) == (
        EventType.CREATED, "P3", "gold", "email",
    )  # fmt: skip
    assert by_id["3301000000202"].counts_as_response
    assert by_id["3301000000302"].author_role is AuthorRole.REQUESTER
    assert not by_id["3301000000302"].counts_as_response
    assert [by_id[i].status for i in ("3301000000203", "3301000000303")] == [
        Status.PENDING, Status.OPEN,
    ]  # fmt: skip
    assert (by_id["3301000000402"].type, by_id["3301000000402"].tier) == (EventType.ASSIGNED, 2)
    assert by_id["3300900000303"].priority == "P1"
    assert by_id["3300900000302"].public is False  # the private note is no response
    vpn = [e for e in by_id.values() if e.ticket_id == "48213"]
    assert all(SINCE <= e.occurred_at < UNTIL for e in vpn)
    assert EventType.RESOLVED not in {e.type for e in vpn}  # solved at 00:00 on the 5th
    # ...and the note carries the ticket as it was then, not the tags it was solved with
    assert by_id["3300900000302"].tags == ("plan_gold", "vpn")


def test_a_rate_limit_in_the_middle_of_paging_is_waited_through() -> None:
    """Zendesk answers the second export page with 429 and Retry-After: 7; the puller waits the
    7 seconds (through the injected sleep) and reads the page."""
    waits: list[float] = []
    with portal_server() as server:
        serve_the_day(server)
        pages = pull(make_puller(section(server.url), ENV, sleep=waits.append))
        asked = [a.query for a in server.asked_for(EXPORT)]

    assert waits == [7.0]
    assert [e.ticket_id for e in pages[1].events] == ["48213", "48213"]
    assert asked[0] == {"start_time": ["1741046400"], "exclude_deleted": ["true"]}
    cursor = api("incremental_tickets_page1")["after_cursor"]
    assert asked[1:] == [{"cursor": [cursor]}, {"cursor": [cursor]}]  # the 429, then the page


def test_the_api_is_signed_in_as_the_token_user_and_staff_are_asked_once() -> None:
    """Zendesk's API token form: Basic ``<e-mail>/token:<token>``; who is staff is asked once
    per run for all the comment authors, not per comment or page."""
    with portal_server() as server:
        serve_the_day(server)
        pull(make_puller(section(server.url), ENV, sleep=[].append))
        headers = {a.headers["authorization"] for a in server.asked}
        users = [a.query for a in server.asked_for(USERS)]

    token = base64.b64encode(b"sync@acme.example/token:zd-api-token-4f9a").decode()
    assert headers == {f"Basic {token}"}
    assert users == [{"ids": ["3300112233,3300998877"]}]


def test_custom_statuses_types_subjects_and_refused_changes_map_like_their_webhooks() -> None:
    """A custom status the settings map to pending, a subject and a type changed, a priority
    cleared (the webhook refuses that one: left out here too) and set again, passed through as
    Zendesk names it without a priorities map; a ticket gone since the export listed it (404 on
    its audits) is skipped."""
    with portal_server() as server:
        server.answer("GET", EXPORT, api("incremental_tickets_one_page"))
        server.answer("GET", "/api/v2/tickets/48275/audits.json", api("audits_48275"))
        config = integrations.Zendesk.model_validate(
            {
                "base_url": server.url,
                "api_user_env": "ZENDESK_API_USER",
                "api_token_env": "ZENDESK_API_TOKEN",
                "statuses": {"3300222339": "pending"},
            }
        )
        [page] = pull(make_puller(config, ENV, sleep=[].append))
        asked_users = server.asked_for(USERS)

    export = {
        "id": "48275",
        "status": "OPEN",
        "group_id": "3300445566",
        "assignee_id": "3300112233",
        "requester_id": "3300998877",
        "organization_id": "3300776655",
        "tags": ["export", "plan_gold"],
        "via": {"channel": "api"},
    }
    waiting = {
        **export,
        "subject": "Nightly export stopped",
        "priority": "HIGH",
        "type": "INCIDENT",
        "custom_status": "3300222339",
    }
    renamed = {
        **waiting,
        "subject": "Nightly export stopped after the upgrade",
        "priority": None,
        "type": "PROBLEM",
    }
    urgent = {**renamed, "priority": "URGENT"}
    bodies = [
        webhook("custom_status_changed", "2025-03-04T10:00:00Z", waiting, {"previous": "3300222334", "current": "3300222339"}),
        webhook("subject_changed", "2025-03-04T12:00:00Z", renamed, {"previous": "Nightly export stopped", "current": renamed["subject"]}),
        webhook("type_changed", "2025-03-04T12:00:00Z", renamed, {"previous": "INCIDENT", "current": "PROBLEM"}),
        webhook("priority_changed", "2025-03-04T14:00:00Z", urgent, {"previous": None, "current": "URGENT"}),
    ]  # fmt: skip
    adapter = ZendeskAdapter.from_settings(config)
    assert without_ids(page.events) == without_ids([delivered(adapter, b) for b in bodies])
    assert [(e.type, e.status, e.priority) for e in page.events] == [
        (EventType.STATUS_CHANGED, Status.PENDING, None),
        (EventType.UPDATED, None, None),
        (EventType.UPDATED, None, None),
        (EventType.PRIORITY_CHANGED, None, "URGENT"),
    ]
    assert page.tickets == 2
    assert asked_users == []  # no comment in the window: no one to ask about


def test_a_ticket_the_export_lists_again_gives_its_changes_once_per_run() -> None:
    """A ticket changed while the run read the export is listed again on a later page: the
    changes already given in this run are not given twice."""
    first = api("incremental_tickets_page1")
    again = copy.deepcopy(first)
    again["end_of_stream"] = True
    again["tickets"] = [first["tickets"][1]]  # 48251 once more
    with portal_server() as server:
        server.answer("GET", EXPORT, first, query={"start_time": "1741046400"})
        server.answer("GET", EXPORT, again, query={"cursor": first["after_cursor"]})
        audits = api("audits_48240_page1")
        server.answer("GET", "/api/v2/tickets/48240/audits.json", audits)
        server.answer(
            "GET",
            "/api/v2/tickets/48240/audits.json",
            api("audits_48240_page2"),
            query={"page[after]": audits["meta"]["after_cursor"]},
        )
        server.answer("GET", "/api/v2/tickets/48251/audits.json", api("audits_48251"))
        server.answer("GET", USERS, api("users_show_many"))
        pages = pull(make_puller(section(server.url), ENV, sleep=[].append))

    assert [e.ticket_id for e in pages[0].events].count("48251") == 1
    assert pages[1].events == []


# --- settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "environ", "named"),
    [
        (None, ENV, "`base_url`"),
        ({"base_url": "https://acme.zendesk.com"}, ENV, "`api_user_env`"),
        ({**SETTINGS, "base_url": "https://acme.zendesk.com", "api_token_env": None}, ENV, "`api_token_env`"),
        ({**SETTINGS, "base_url": "https://acme.zendesk.com"}, {"ZENDESK_API_USER": "sync@acme.example"}, "ZENDESK_API_TOKEN"),
        ({**SETTINGS, "base_url": "https://acme.zendesk.com"}, {"ZENDESK_API_TOKEN": "zd-api-token-4f9a"}, "ZENDESK_API_USER"),
    ],
)  # fmt: skip
def test_missing_settings_are_named_never_their_values(
    config: dict[str, Any] | None, environ: dict[str, str], named: str
) -> None:
    """A missing base_url, credential setting or variable is an error naming it; no value of
    the environment appears in it."""
    zendesk = None if config is None else integrations.Zendesk.model_validate(config)
    with pytest.raises(EscaleraError) as caught:
        make_puller(zendesk, environ)
    assert named in str(caught.value)
    assert not any(value in str(caught.value) for value in ENV.values())
