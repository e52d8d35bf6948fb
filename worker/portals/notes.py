"""Writing an internal note, and tags, on a ticket in its own portal: once, however often asked.

A note is written at least once by the delivery machinery (a try whose answer is lost, a task
that dies after writing, a transaction that rolls back after sending: each tries again), so each
writer makes it at most once: the note's text holds its dedupe key, and before writing, the
writer reads the ticket's latest comments and writes nothing if one already holds that key.
Tags are added, never replaced, and adding a tag the ticket has changes nothing, so they are
simply added again on every try.

Per portal (the endpoints are those of the vendors' REST API references; the shapes the tests
answer with are in ``tests/fixtures/api/<portal>/SOURCES.md``):

- **Zendesk**: ``GET /api/v2/tickets/{id}/comments.json?sort_order=desc`` (newest first), then
  one ``PUT /api/v2/tickets/{id}.json`` with a private comment (``public: false``) and
  ``additional_tags``: the note and its tags in one change.
- **Jira Cloud**: labels through ``PUT /rest/api/3/issue/{key}`` (``update.labels.add``), then
  ``GET …/comment?orderBy=-created``, then ``POST …/comment`` in Atlassian Document Format
  with the ``sd.public.comment`` property ``{"internal": true}``: in Jira Service Management an
  internal comment, never shown to the customer (elsewhere the property is ignored).
- **Freshdesk**: tags merged into the ticket's (``GET`` then ``PUT /api/v2/tickets/{id}``, only
  when one is missing: Freshdesk replaces the whole list), then the conversations read page by
  page, then ``POST /api/v2/tickets/{id}/notes`` with ``private: true``.

Only the newest `LOOK_BACK` comments are read on Zendesk and Jira: a note is retried within
minutes of its first try, long before a hundred comments could bury it.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

from worker.portals.http import PortalApi

LOOK_BACK = 100  # comments read, newest first, to find a note already written
FRESHDESK_PAGE = 100  # conversations per page (Freshdesk's maximum)


@dataclass(frozen=True)
class Note:
    """What to write on one ticket: ``text`` (which holds ``key``), and tags to add."""

    ticket_id: str
    text: str
    key: str  # the dedupe key: a comment holding it is this note, already written
    tags: tuple[str, ...] = ()


class NoteWriter(Protocol):
    def write(self, note: Note) -> bool:
        """Write ``note`` unless the ticket holds it already; whether it was written now
        (`worker.portals.http.PortalError` if the portal refused)."""


@dataclass(frozen=True)
class ZendeskNotes:
    api: PortalApi

    def write(self, note: Note) -> bool:
        ticket = f"/api/v2/tickets/{_path_part(note.ticket_id)}"
        answer = self.api.get(
            f"{ticket}/comments.json", {"sort_order": "desc", "per_page": LOOK_BACK}
        )
        comments = _items(answer, "comments")
        if any(note.key in _text(c, "body", "plain_body", "html_body") for c in comments):
            return False
        change: dict[str, Any] = {"comment": {"body": note.text, "public": False}}
        if note.tags:
            change["additional_tags"] = list(note.tags)
        self.api.put(f"{ticket}.json", {"ticket": change})
        return True


@dataclass(frozen=True)
class JiraNotes:
    api: PortalApi

    def write(self, note: Note) -> bool:
        issue = f"/rest/api/3/issue/{_path_part(note.ticket_id)}"
        if note.tags:
            labels = [{"add": tag} for tag in note.tags]
            self.api.put(issue, {"update": {"labels": labels}})
        answer = self.api.get(f"{issue}/comment", {"orderBy": "-created", "maxResults": LOOK_BACK})
        for comment in _items(answer, "comments"):
            if any(note.key in text for text in _adf_texts(comment.get("body"))):
                return False
        internal = [{"key": "sd.public.comment", "value": {"internal": True}}]
        self.api.post(f"{issue}/comment", {"body": adf(note.text), "properties": internal})
        return True


@dataclass(frozen=True)
class FreshdeskNotes:
    api: PortalApi

    def write(self, note: Note) -> bool:
        ticket = f"/api/v2/tickets/{_path_part(note.ticket_id)}"
        if note.tags:
            found = self.api.get(ticket)
            have = [t for t in (found or {}).get("tags") or [] if isinstance(t, str)]
            missing = [tag for tag in note.tags if tag not in have]
            if missing:
                self.api.put(ticket, {"tags": have + missing})
        page = 1
        while True:
            answer = self.api.get(
                f"{ticket}/conversations", {"per_page": FRESHDESK_PAGE, "page": page}
            )
            conversations = answer if isinstance(answer, list) else []
            if any(note.key in _text(c, "body_text", "body") for c in conversations):
                return False
            if len(conversations) < FRESHDESK_PAGE:
                break
            page += 1
        lines = html.escape(note.text).split("\n")
        self.api.post(f"{ticket}/notes", {"body": "<br>".join(lines), "private": True})
        return True


def adf(text: str) -> dict[str, Any]:
    """``text`` as an Atlassian Document Format document: a paragraph per line."""
    paragraphs: list[dict[str, Any]] = [
        {"type": "paragraph", "content": [{"type": "text", "text": line}] if line else []}
        for line in text.split("\n")
    ]
    return {"type": "doc", "version": 1, "content": paragraphs}


def _adf_texts(node: Any) -> Iterator[str]:
    """Every text in an ADF document (a comment's ``body``); a plain string is its own."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        if isinstance(node.get("text"), str):
            yield node["text"]
        yield from _adf_texts(node.get("content"))
    elif isinstance(node, list):
        for child in node:
            yield from _adf_texts(child)


def _items(answer: Any, key: str) -> list[dict[str, Any]]:
    found = answer.get(key) if isinstance(answer, dict) else None
    return [item for item in found or [] if isinstance(item, dict)]


def _text(item: dict[str, Any], *keys: str) -> str:
    return "\n".join(value for k in keys if isinstance(value := item.get(k), str))


WRITERS: dict[str, type[ZendeskNotes | JiraNotes | FreshdeskNotes]] = {
    "zendesk": ZendeskNotes,
    "jira": JiraNotes,
    "freshdesk": FreshdeskNotes,
}


def _path_part(text: str) -> str:
    """A ticket id as one URL path segment: ``../`` or ``?`` in it cannot reach another path."""
    return quote(text, safe="")
