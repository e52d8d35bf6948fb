"""Internal notes written on a ticket in its own portal, once however often they are asked for.

Each portal's API answers on 127.0.0.1 with the shapes its vendor documents (the comment and
conversation lists are the fixtures of ``escalera sync``, tests/fixtures/api/<portal>/SOURCES.md):

- Zendesk: "Ticket Comments", List Comments (``comments[]`` with ``body``, ``plain_body``,
  ``html_body``, ``public``...) and "Tickets", Update Ticket (``ticket.comment`` with
  ``public: false``, ``additional_tags``): developer.zendesk.com/api-reference/ticketing/tickets/.
- Jira Cloud: "Issue comments", Get comments (``PageOfComments``, bodies in Atlassian Document
  Format) and Add comment (``body``, ``properties``), "Issues", Edit issue (``update.labels`` with
  ``add``, answered 204); the ``sd.public.comment`` property ``{"internal": true}`` is how Jira
  Service Management's documentation ("Add a comment to a request" and the JSM REST notes on
  comment visibility) makes a comment internal.
- Freshdesk: "View a Ticket" (a ticket's ``tags``), "Update a Ticket" (``tags`` replaces the
  list), "List All Conversations of a Ticket", "Create a Note" (``body`` HTML, ``private``):
  developers.freshdesk.com/api.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.portal_server import Answer, PortalServer, portal_server
from worker.portals.http import Credentials, PortalApi, PortalError
from worker.portals.notes import FreshdeskNotes, JiraNotes, Note, ZendeskNotes

API = Path(__file__).resolve().parent.parent / "fixtures" / "api"
KEY = "4711:breach:first_response:p1-page:portal:0"
TEXT = f"[P1] zendesk/48213: first response breached\n\nTicket: zendesk/48213 (gold)\nNotification: {KEY}"


def fixture(portal: str, name: str) -> Any:
    return json.loads((API / portal / name).read_text())


def api(server: PortalServer) -> PortalApi:
    return PortalApi(server.url, Credentials("agent@desk.example/token", "t0k3n"), max_tries=1)


# --- Zendesk ----------------------------------------------------------------------------------


def test_zendesk_writes_a_private_comment_and_its_tag_in_one_change() -> None:
    """The note is a private comment (agents only) and the tag is added, not set, in one PUT."""
    with portal_server() as server:
        server.answer(
            "GET", "/api/v2/tickets/48213/comments.json", fixture("zendesk", "comments_48213.json")
        )
        server.answer("PUT", "/api/v2/tickets/48213.json", {"ticket": {"id": 48213}, "audit": {}})
        written = ZendeskNotes(api(server)).write(Note("48213", TEXT, KEY, ("sla_breached",)))
    assert written
    (looked,) = server.asked_for("/api/v2/tickets/48213/comments.json")
    assert looked.query["sort_order"] == ["desc"]  # the newest first: a retry's note is recent
    (change,) = server.asked_for("/api/v2/tickets/48213.json")
    assert change.body == {
        "ticket": {
            "comment": {"body": TEXT, "public": False},
            "additional_tags": ["sla_breached"],
        }
    }


def test_zendesk_writes_nothing_when_the_ticket_holds_the_note_already() -> None:
    """A retry after a lost answer: the comment with the note's key is there; no second one."""
    comments = fixture("zendesk", "comments_48213.json")
    ours = {
        **comments["comments"][0],
        "id": 3300900000999,
        "body": TEXT,
        "plain_body": TEXT,
        "public": False,
    }
    comments["comments"].insert(0, ours)
    with portal_server() as server:
        server.answer("GET", "/api/v2/tickets/48213/comments.json", comments)
        written = ZendeskNotes(api(server)).write(Note("48213", TEXT, KEY, ("sla_breached",)))
    assert not written
    assert [a.method for a in server.asked] == ["GET"]


def test_a_ticket_id_cannot_reach_another_path() -> None:
    """An id such as ``../users/1`` is one path segment, percent-encoded: never another endpoint."""
    with portal_server() as server, pytest.raises(PortalError):
        ZendeskNotes(api(server)).write(Note("../users/1", TEXT, KEY))
    (asked,) = server.asked
    assert asked.path == "/api/v2/tickets/..%2Fusers%2F1/comments.json"


# --- Jira -------------------------------------------------------------------------------------


def test_jira_adds_the_label_and_an_internal_comment() -> None:
    """Labels through an edit (added, not set), then an ADF comment marked internal for JSM."""
    with portal_server() as server:
        server.answer("PUT", "/rest/api/3/issue/IT-1042", Answer(None, status=204))
        server.answer(
            "GET", "/rest/api/3/issue/IT-1042/comment", fixture("jira", "comments_IT-1042.json")
        )
        server.answer(
            "POST", "/rest/api/3/issue/IT-1042/comment", Answer({"id": "51299"}, status=201)
        )
        written = JiraNotes(api(server)).write(Note("IT-1042", TEXT, KEY, ("escalated_tier2",)))
    assert written
    (edit,) = server.asked_for("/rest/api/3/issue/IT-1042")
    assert edit.body == {"update": {"labels": [{"add": "escalated_tier2"}]}}
    looked, posted = server.asked_for("/rest/api/3/issue/IT-1042/comment")
    assert looked.query["orderBy"] == ["-created"]
    assert posted.body["properties"] == [{"key": "sd.public.comment", "value": {"internal": True}}]
    document = posted.body["body"]
    assert document["type"] == "doc" and document["version"] == 1
    lines = [p["content"][0]["text"] if p["content"] else "" for p in document["content"]]
    assert lines == TEXT.split("\n")


def test_jira_writes_no_second_comment_when_the_first_is_there() -> None:
    """The key is found in the ADF text of a listed comment: only the (idempotent) label again."""
    page = fixture("jira", "comments_IT-1042.json")
    ours = {**page["comments"][0], "id": "51299", "jsdPublic": False, "body": _adf(TEXT)}
    page["comments"].insert(0, ours)
    with portal_server() as server:
        server.answer("PUT", "/rest/api/3/issue/IT-1042", Answer(None, status=204))
        server.answer("GET", "/rest/api/3/issue/IT-1042/comment", page)
        written = JiraNotes(api(server)).write(Note("IT-1042", TEXT, KEY, ("escalated_tier2",)))
    assert not written
    assert [a.method for a in server.asked] == ["PUT", "GET"]


def _adf(text: str) -> dict[str, Any]:
    """As Jira returns a comment written in ADF (one paragraph per line)."""
    return {
        "type": "doc",
        "version": 1,
        "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": line}] if line else []}
            for line in text.split("\n")
        ],
    }


# --- Freshdesk --------------------------------------------------------------------------------


def test_freshdesk_merges_the_tag_and_writes_a_private_note() -> None:
    """Freshdesk replaces a ticket's tags on update: the tag is added to those it has."""
    ticket = fixture("freshdesk", "tickets_day.json")[
        0
    ]  # 10542, tagged printer, floor-3, plan_gold
    with portal_server() as server:
        server.answer("GET", "/api/v2/tickets/10542", ticket)
        server.answer(
            "PUT", "/api/v2/tickets/10542", {**ticket, "tags": [*ticket["tags"], "sla_breached"]}
        )
        server.answer(
            "GET",
            "/api/v2/tickets/10542/conversations",
            fixture("freshdesk", "conversations_10542.json"),
        )
        server.answer(
            "POST",
            "/api/v2/tickets/10542/notes",
            Answer({"id": 80001000099, "private": True}, status=201),
        )
        written = FreshdeskNotes(api(server)).write(
            Note("10542", "a <b>\nline two", KEY, ("sla_breached",))
        )
    assert written
    put = next(a for a in server.asked if a.method == "PUT")
    assert put.body == {"tags": ["printer", "floor-3", "plan_gold", "sla_breached"]}
    (note,) = server.asked_for("/api/v2/tickets/10542/notes")
    assert note.body == {"body": "a &lt;b&gt;<br>line two", "private": True}


def test_freshdesk_leaves_tags_and_notes_it_already_has() -> None:
    """The tag is there and a conversation holds the key: nothing is written."""
    ticket = {**fixture("freshdesk", "tickets_day.json")[0], "tags": ["plan_gold", "sla_breached"]}
    conversations = fixture("freshdesk", "conversations_10542.json")
    ours = {**conversations[0], "id": 80001000099, "private": True, "source": 2, "category": 2,
            "body": f"<div>{TEXT}</div>", "body_text": TEXT}  # fmt: skip
    with portal_server() as server:
        server.answer("GET", "/api/v2/tickets/10542", ticket)
        server.answer("GET", "/api/v2/tickets/10542/conversations", [*conversations, ours])
        written = FreshdeskNotes(api(server)).write(Note("10542", TEXT, KEY, ("sla_breached",)))
    assert not written
    assert {a.method for a in server.asked} == {"GET"}


def test_freshdesk_reads_every_page_of_conversations() -> None:
    """A long ticket: the note on the second page of 100 is found, and not written again."""
    first = [{"id": n, "body_text": f"message {n}", "private": False} for n in range(100)]
    second = [{"id": 100, "body_text": TEXT, "private": True}]
    with portal_server() as server:
        server.answer("GET", "/api/v2/tickets/10542/conversations", first, query={"page": "1"})
        server.answer("GET", "/api/v2/tickets/10542/conversations", second, query={"page": "2"})
        written = FreshdeskNotes(api(server)).write(Note("10542", TEXT, KEY))
    assert not written
    assert [a.query["page"] for a in server.asked] == [["1"], ["2"]]
