"""Pulling Freshdesk's missed changes through its REST API, mapped as the rule webhooks map them.

Where the shapes come from (tests/fixtures/api/freshdesk/SOURCES.md says it file by file): the
API answers follow Freshdesk's API reference (developers.freshdesk.com/api: "List All Tickets"
with ``include=requester,stats``, "List All Conversations of a Ticket", "List All Ticket
Fields", "View a Company") and the code that renders them in Freshdesk's own source
(github.com/Ramesh-Veeriaperumal/freshconsult: api/app/views/tickets/index.json.api,
api/app/controllers/decorators/ticket_decorator.rb ``stats``, conversation_decorator.rb,
api/app/views/api_ticket_fields/index.json.api with ticket_field_decorator.rb's choices,
api/app/views/api_companies/show.json.api). The webhook side is the rule body documented in
docs/portals/freshdesk.md, each placeholder rendered as Freshdesk renders it (see
tests/unit/test_adapter_freshdesk.py).

The day: 2026-12-01 (UTC). Ticket 10542 arrives by e-mail at 08:12:40, Kim Lee replies at
08:31:12, the requester answers at 09:05, Kim adds a private note at 09:20 and sets Pending at
09:45. Ticket 10543 (opened the day before) gets a public note at 10:02 and a reply at 11:55 from
Sam Roy, is resolved at 12:00 and closed at 16:30, then the requester leaves survey feedback.
Ticket 10544, closed before, is reopened by its requester's reply at 15:10; a private note the
next morning is after the period.
"""

from __future__ import annotations

import base64
import json
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from shared import integrations
from shared.errors import EscaleraError
from shared.events import AuthorRole, Event, EventType, Status
from tests.portal_server import Answer, PortalServer, portal_server
from worker.adapters.base import WebhookRequest
from worker.adapters.freshdesk import FreshdeskAdapter
from worker.sync.freshdesk import FreshdeskPuller, make_puller
from worker.sync.known import new_events

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "api" / "freshdesk"
SINCE = datetime(2026, 12, 1, tzinfo=UTC)
UNTIL = datetime(2026, 12, 2, tzinfo=UTC)
KEY = "fd-api-key-0123456789"
ENV = {"FRESHDESK_API_KEY": KEY}
SETTINGS: dict[str, Any] = {
    "api_token_env": "FRESHDESK_API_KEY",
    "priorities": {"Urgent": "P1", "High": "P2", "Medium": "P3", "Low": "P3"},
    "groups": {"L1 Service Desk": 1, "L2 Field Services": 2},
    "statuses": {"Waiting on Customer": "pending"},
    "plan": {"from": "tag", "prefix": "plan_"},
    "timezone": {"from": "field", "field": "cf_timezone"},
}


def fixture(name: str) -> Any:
    """An API answer as recorded, a fresh copy on every call (tests edit it freely)."""
    return json.loads((FIXTURES / f"{name}.json").read_text())


def section(url: str, **changes: Any) -> integrations.Freshdesk:
    return integrations.Freshdesk.model_validate({**SETTINGS, "base_url": url, **changes})


def serve_day(server: PortalServer, tickets: list[dict[str, Any]] | None = None) -> None:
    """The portal's answers for the day (a test helper, not a test)."""
    server.answer("GET", "/api/v2/tickets", fixture("tickets_day") if tickets is None else tickets)
    server.answer("GET", "/api/v2/ticket_fields", fixture("ticket_fields"))
    server.answer("GET", "/api/v2/companies/80000555001", fixture("company_80000555001"))
    for ticket in (10542, 10543, 10544):
        path = f"/api/v2/tickets/{ticket}/conversations"
        server.answer("GET", path, fixture(f"conversations_{ticket}"))


def pull(puller: FreshdeskPuller, since: datetime = SINCE, until: datetime = UNTIL) -> list[Event]:
    """Every event of every page, as the command reads them."""
    events: list[Event] = []
    cursor: str | None = None
    while True:
        page = puller.page(since, until, cursor)
        events.extend(page.events)
        if page.cursor is None:
            return events
        cursor = page.cursor


@pytest.fixture
def server() -> Iterator[PortalServer]:
    with portal_server() as running:
        yield running


def pulled_day(server: PortalServer, **changes: Any) -> list[Event]:
    serve_day(server)
    return pull(make_puller(section(server.url, **changes), ENV, sleep=[].append))


# --- what the webhooks would have sent ------------------------------------------------------------

# The documented rule body as Freshdesk renders it for each ticket on the day (the ticket's
# context did not change during the day, so every change renders it alike).
RENDERED: dict[str, dict[str, str]] = {
    "10542": {
        "ticket_id": "10542",
        "priority": "High",
        "subject": "Printer queue stuck on floor 3",
        "type": "Incident",
        "source_channel": "Email",
        "tags": "printer, floor-3, plan_gold",
        "group": "L1 Service Desk",
        "agent": "Kim Lee",
        "agent_email": "k.lee@ourdesk.example",
        "requester_id": "80012345678",
        "requester_email": "J.Doe@fabrikam.example",
        "company": "Fabrikam",
        "cf_timezone": "Europe/Madrid",
    },
    "10543": {
        "ticket_id": "10543",
        "priority": "Urgent",
        "subject": "VPN drops every 10 minutes",
        "type": "Problem",
        "source_channel": "Portal",
        "tags": "vpn",
        "group": "L2 Field Services",
        "agent": "Sam Roy",
        "agent_email": "s.roy@ourdesk.example",
        "requester_id": "80012340001",
        "requester_email": "ana@contoso.example",
        "company": "Contoso",
        "cf_timezone": "",
    },
    "10544": {
        "ticket_id": "10544",
        "priority": "Medium",
        "subject": "Cannot log in to the portal",
        "type": "",
        "source_channel": "Chat",
        "tags": "",
        "group": "L1 Service Desk",
        "agent": "Kim Lee",
        "agent_email": "k.lee@ourdesk.example",
        "requester_id": "80012349999",
        "requester_email": "luis@fabrikam.example",
        "company": "Fabrikam",
        "cf_timezone": "Europe/Madrid",
    },
}
KIM, SAM = "80000000017", "80000000018"


def rule_body(ticket: str, when: str, status: str, **change: str) -> dict[str, str]:
    """The body a rule posts for a change of ``ticket`` at ``when`` (Rails' rendering)."""
    return {
        **RENDERED[ticket],
        "updated_at": when,
        "status": status,
        "performer_id": "",
        "performer_email": "",
        "latest_public_comment": "",
        "latest_private_comment": "",
        **change,
    }


WEBHOOKS = [
    rule_body(
        "10542",
        "2026-12-01 08:12:40 UTC",
        "Open",
        triggered_event="{ticket_action:created}",
        performer_id="80012345678",
    ),
    rule_body(
        "10542",
        "2026-12-01 08:31:12 UTC",
        "Open",
        event="agent_replied",
        triggered_event="{reply_sent:sent}",
        performer_id=KIM,
    ),
    rule_body(
        "10542",
        "2026-12-01 09:05:00 UTC",
        "Open",
        event="customer_replied",
        triggered_event="{reply_sent:sent}",
        performer_id="80012345678",
    ),
    rule_body(
        "10542",
        "2026-12-01 09:20:00 UTC",
        "Open",
        triggered_event="{note_type:private}",
        performer_id=KIM,
    ),
    rule_body(
        "10542",
        "2026-12-01 09:45:00 UTC",
        "Pending",
        triggered_event="{status:{from:2,to:3}}",
        performer_id=KIM,
    ),
    rule_body(
        "10543",
        "2026-12-01 10:02:00 UTC",
        "Open",
        triggered_event="{note_type:public}",
        performer_id=SAM,
    ),
    rule_body(
        "10543",
        "2026-12-01 11:55:00 UTC",
        "Open",
        event="agent_replied",
        triggered_event="{reply_sent:sent}",
        performer_id=SAM,
    ),
    rule_body(
        "10543",
        "2026-12-01 12:00:00 UTC",
        "Resolved",
        triggered_event="{status:{from:2,to:4}}",
        performer_id=SAM,
    ),
    rule_body(
        "10543",
        "2026-12-01 16:30:00 UTC",
        "Closed",
        triggered_event="{status:{from:4,to:5}}",
        performer_id="",
    ),
    rule_body(
        "10544",
        "2026-12-01 15:10:00 UTC",
        "Closed",
        event="customer_replied",
        triggered_event="{reply_sent:sent}",
        performer_id="80012349999",
    ),
    rule_body(
        "10544",
        "2026-12-01 15:10:05 UTC",
        "Open",
        triggered_event="{status:{from:5,to:2}}",
        performer_id="",
    ),
]


def webhook_events(adapter: FreshdeskAdapter) -> list[Event]:
    received = datetime(2026, 12, 1, 18, tzinfo=UTC)  # dated by updated_at, not by this
    return [
        event
        for body in WEBHOOKS
        for event in adapter.to_events(body, WebhookRequest(b"", {}, received))
    ]


# --- a day of changes -----------------------------------------------------------------------------


def test_a_day_of_changes_maps_exactly_as_the_webhooks_would_have(server: PortalServer) -> None:
    """Every change of the day becomes the event its rule's webhook gives: same type, status,
    priority, tier, customer, plan, time zone, author and context, dated when it happened;
    only the ids differ (the webhook's hashes its body)."""
    pulled = pulled_day(server)
    adapter = FreshdeskAdapter.from_settings(section(server.url))
    expected = webhook_events(adapter)
    assert [e.model_dump(exclude={"event_id"}) for e in pulled] == [
        e.model_dump(exclude={"event_id"}) for e in expected
    ]


def test_the_days_changes_in_order(server: PortalServer) -> None:
    """What the SLA clocks see: 10542 created (P2, tier 1, Fabrikam, gold, Madrid), answered by
    Kim, then the requester's reply and a private note, then Pending; 10543's note and reply
    are responses, then resolved and closed (its survey feedback is no reply); 10544's
    requester writes and the ticket is reopened. Nothing before or after the day."""
    events = pulled_day(server)
    seen = [
        (e.ticket_id, e.type, e.status, e.author_role, e.counts_as_response, e.occurred_at.hour)
        for e in events
    ]
    assert seen == [
        ("10542", EventType.CREATED, None, None, False, 8),
        ("10542", EventType.AGENT_REPLIED, None, AuthorRole.AGENT, True, 8),
        ("10542", EventType.CUSTOMER_REPLIED, None, AuthorRole.REQUESTER, False, 9),
        ("10542", EventType.AGENT_REPLIED, None, AuthorRole.AGENT, False, 9),
        ("10542", EventType.STATUS_CHANGED, Status.PENDING, None, False, 9),
        ("10543", EventType.AGENT_REPLIED, None, AuthorRole.AGENT, True, 10),
        ("10543", EventType.AGENT_REPLIED, None, AuthorRole.AGENT, True, 11),
        ("10543", EventType.RESOLVED, Status.SOLVED, None, False, 12),
        ("10543", EventType.CLOSED, Status.CLOSED, None, False, 16),
        ("10544", EventType.CUSTOMER_REPLIED, None, AuthorRole.REQUESTER, False, 15),
        ("10544", EventType.REOPENED, Status.OPEN, None, False, 15),
    ]
    created = events[0]
    assert (created.priority, created.tier, created.customer, created.plan) == (
        "P2",
        1,
        "Fabrikam",
        "gold",
    )
    assert (created.customer_timezone, created.requester) == (
        "Europe/Madrid",
        "J.Doe@fabrikam.example",
    )


def test_event_ids_name_the_change_and_a_second_pull_repeats_them(server: PortalServer) -> None:
    """Each change has its own id, ``sync:freshdesk:<ticket>:<kind>:<conversation or time>``,
    and pulling the same day again gives the same ids: the command stores each change once."""
    first = pulled_day(server)
    again = pull(make_puller(section(server.url), ENV, sleep=[].append))
    ids = [e.event_id for e in first]
    assert len(set(ids)) == len(ids)
    assert ids == [e.event_id for e in again]
    assert ids[:5] == [
        "sync:freshdesk:10542:created",
        "sync:freshdesk:10542:conversation:80001000001",
        "sync:freshdesk:10542:conversation:80001000002",
        "sync:freshdesk:10542:conversation:80001000003",
        "sync:freshdesk:10542:status:2026-12-01T09:45:00Z",
    ]


def test_the_changes_the_webhooks_delivered_are_not_doubled(server: PortalServer) -> None:
    """With every other change of the day already delivered by its webhook, the pull finds
    those stored and only the others new: nothing counts twice, nothing is lost."""
    pulled = pulled_day(server)
    delivered: dict[str, list[Event]] = {}
    for event in webhook_events(FreshdeskAdapter.from_settings(section(server.url)))[::2]:
        delivered.setdefault(event.ticket_id, []).append(event)
    split = new_events(pulled, delivered)
    assert (split.stored, split.new) == (pulled[::2], pulled[1::2])


def test_the_api_is_asked_as_documented_and_the_desks_names_once(server: PortalServer) -> None:
    """Changed tickets since the start, oldest change first, 100 a page, with requester and
    stats, signed in with the API key and X; status, group and agent names are read once a run,
    a company's name once, and only for a ticket created in the period."""
    pulled_day(server)
    [listing] = server.asked_for("/api/v2/tickets")
    assert listing.query == {
        "updated_since": ["2026-12-01T00:00:00Z"],
        "order_by": ["updated_at"],
        "order_type": ["asc"],
        "per_page": ["100"],
        "include": ["requester,stats"],
        "page": ["1"],
    }
    basic = "Basic " + base64.b64encode(f"{KEY}:X".encode()).decode()
    assert {asked.headers["authorization"] for asked in server.asked} == {basic}
    assert len(server.asked_for("/api/v2/ticket_fields")) == 1
    assert len(server.asked_for("/api/v2/companies/80000555001")) == 1
    assert server.asked_for("/api/v2/companies/80000555002") == []


def test_a_rate_limit_in_the_middle_is_waited_through(server: PortalServer) -> None:
    """Freshdesk answers 429 with Retry-After: the puller waits what it asks and goes on."""
    serve_day(server)
    busy = Answer({"message": "Rate limit exceeded"}, 429, {"Retry-After": "7"})
    server.answer(
        "GET", "/api/v2/tickets/10543/conversations", busy, fixture("conversations_10543")
    )
    waits: list[float] = []
    events = pull(make_puller(section(server.url), ENV, sleep=waits.append))
    assert waits == [7.0]
    assert len(events) == len(WEBHOOKS)


# --- what the API cannot tell --------------------------------------------------------------------


def test_a_ticket_still_in_its_first_status_gives_only_its_creation(server: PortalServer) -> None:
    """Freshdesk sets status_updated_at to the creation time: no status rule fires on a new
    ticket, so nothing but `created` comes of it."""
    tickets = fixture("tickets_day")[:1]
    tickets[0]["stats"]["status_updated_at"] = tickets[0]["created_at"]
    tickets[0]["status"] = 2
    serve_day(server, tickets)
    events = pull(make_puller(section(server.url), ENV, sleep=[].append))
    assert events[0].type is EventType.CREATED
    assert [e for e in events if e.status is not None] == []


def test_a_move_to_open_is_a_reopening_only_when_freshdesk_says_so(server: PortalServer) -> None:
    """reopened_at is when the ticket last left Resolved or Closed: at the time of its last
    status change, that change was a reopening; earlier, the last move is a plain one (from a
    status the API does not keep)."""
    tickets = fixture("tickets_day")[2:]
    tickets[0]["stats"]["reopened_at"] = "2026-12-01T14:00:00Z"
    serve_day(server, tickets)
    events = pull(make_puller(section(server.url), ENV, sleep=[].append))
    assert [(e.type, e.status) for e in events][-1] == (EventType.STATUS_CHANGED, Status.OPEN)


def test_custom_statuses_map_by_their_name_as_on_the_webhook(server: PortalServer) -> None:
    """Status 6 is named by the desk's ticket fields ("Waiting on Customer"), which the settings
    map to pending; an unmapped status (8 "Job Application") is logged and left out, as the
    webhook refuses it, and the ticket's other changes still come."""
    tickets = fixture("tickets_day")
    tickets[0]["status"] = 6
    tickets[2]["status"] = 8
    serve_day(server, tickets)
    with capture_logs() as logs:
        events = pull(make_puller(section(server.url), ENV, sleep=[].append))
    statuses = {(e.ticket_id, e.status) for e in events if e.status is not None}
    assert ("10542", Status.PENDING) in statuses
    assert not any(ticket == "10544" for ticket, _ in statuses)
    assert any(e.ticket_id == "10544" and e.type is EventType.CUSTOMER_REPLIED for e in events)
    [warning] = [entry for entry in logs if entry["event"] == "sync_change_unmapped"]
    assert (warning["ticket_id"], warning["field"]) == ("10544", "status")


# --- paging ---------------------------------------------------------------------------------------


def quiet_ticket(ticket_id: int, updated_at: str) -> dict[str, Any]:
    """A ticket changed after the period (shape of the day's 10544; a test helper)."""
    ticket: dict[str, Any] = fixture("tickets_day")[2]
    ticket.update(id=ticket_id, updated_at=updated_at)
    ticket["stats"].update(status_updated_at=updated_at, reopened_at=None)
    return ticket


def test_pages_follow_until_a_short_one(server: PortalServer) -> None:
    """A full page of 100 tickets leads to the next page; a shorter one ends the pull."""
    full = [quiet_ticket(20000 + n, "2026-12-02T10:00:00Z") for n in range(100)]
    server.answer("GET", "/api/v2/tickets", full, query={"page": "1"})
    server.answer(
        "GET", "/api/v2/tickets", [quiet_ticket(20100, "2026-12-02T11:00:00Z")], query={"page": "2"}
    )
    server.answer("GET", "/api/v2/ticket_fields", fixture("ticket_fields"))
    for n in range(101):
        server.answer("GET", f"/api/v2/tickets/{20000 + n}/conversations", [])
    puller = make_puller(section(server.url), ENV, sleep=[].append)
    first = puller.page(SINCE, UNTIL, None)
    assert first.tickets == 100 and first.cursor is not None
    second = puller.page(SINCE, UNTIL, first.cursor)
    assert (second.tickets, second.cursor) == (1, None)
    assert [a.query["page"] for a in server.asked_for("/api/v2/tickets")] == [["1"], ["2"]]


def test_after_freshdesks_last_page_the_listing_starts_again_from_the_last_ticket(
    server: PortalServer,
) -> None:
    """Freshdesk serves 300 pages of a listing: after the 300th the pull asks again for the
    tickets changed since the last one read, from page 1, rather than stopping short."""
    page_300 = [quiet_ticket(30000 + n, "2026-12-01T13:00:00Z") for n in range(100)]
    server.answer("GET", "/api/v2/tickets", page_300, query={"page": "300"})
    server.answer("GET", "/api/v2/tickets", [], query={"page": "1"})
    server.answer("GET", "/api/v2/ticket_fields", fixture("ticket_fields"))
    for n in range(100):
        server.answer("GET", f"/api/v2/tickets/{30000 + n}/conversations", [])
    puller = make_puller(section(server.url), ENV, sleep=[].append)
    first = puller.page(SINCE, UNTIL, None)
    assert first.cursor is None  # an empty first page: nothing changed
    cursor = "/api/v2/tickets?" + urllib.parse.urlencode(
        {
            **{k: v[0] for k, v in server.asked_for("/api/v2/tickets")[0].query.items()},
            "page": "300",
        }
    )
    restart = puller.page(SINCE, UNTIL, cursor).cursor
    assert restart is not None
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(restart).query)
    assert (query["updated_since"], query["page"]) == (["2026-12-01T13:00:00Z"], ["1"])


# --- settings -------------------------------------------------------------------------------------


def test_the_settings_must_name_the_address_and_the_keys_variable() -> None:
    """Without base_url, api_token_env or the variable's value, the error says which, never a
    key."""
    with pytest.raises(EscaleraError, match="base_url"):
        make_puller(None, ENV)
    with pytest.raises(EscaleraError, match="base_url"):
        make_puller(integrations.Freshdesk.model_validate({"api_token_env": "X_KEY"}), ENV)
    no_variable = integrations.Freshdesk.model_validate({"base_url": "https://acme.freshdesk.com"})
    with pytest.raises(EscaleraError, match="api_token_env"):
        make_puller(no_variable, ENV)
    unset = section("https://acme.freshdesk.com")
    with pytest.raises(EscaleraError, match="FRESHDESK_API_KEY") as caught:
        make_puller(unset, {"FRESHDESK_API_KEY": "  "})
    assert KEY not in str(caught.value)
