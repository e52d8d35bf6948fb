"""Zendesk's side of ``escalera sync``: ticket audits replayed into the webhooks that were missed.

Zendesk pauses a webhook whose deliveries keep failing (its circuit breaker), and what it did not
deliver is gone. Its API still has every change: the cursor-based incremental ticket export
(``GET /api/v2/incremental/tickets/cursor.json``, developer.zendesk.com "Incremental Exports")
lists the tickets changed since a time, and each ticket's audits
(``GET /api/v2/tickets/{id}/audits.json``, "Ticket Audits" and the "Ticket Audit events
reference") tell what each update changed: ``Create`` events (the fields a new ticket was created
with), ``Change`` events (``field_name``, ``previous_value``, ``value``) and ``Comment`` events
(``public``, ``author_id``).

Each audit is replayed from the ticket's first one, so the ticket is known as it was after every
update, and each change made in ``[since, until)`` becomes the body of the event-subscribed
webhook Zendesk would have sent for it, which `ZendeskAdapter.event_of` maps: the same settings,
statuses, priorities, tiers, lookups and ticket context as a delivery, by the same code.

==========================================  ======================================================
audit                                       webhook event type (``zen:event-type:``)
==========================================  ======================================================
the audit with ``Create`` events            ``ticket.created``; its comment is the ticket's
                                            description, not a reply
``Change`` of ``status``                    ``ticket.status_changed``
``Change`` of ``custom_status_id``          ``ticket.custom_status_changed``
``Change`` of ``priority``                  ``ticket.priority_changed``
``Change`` of ``group_id``                  ``ticket.group_assignment_changed``
``Change`` of ``assignee_id``               ``ticket.agent_assignment_changed``
``Change`` of ``tags``                      ``ticket.tags_changed`` (added and removed: the
                                            difference of ``value`` and ``previous_value``)
``Change`` of ``subject`` / ``type``        ``ticket.subject_changed`` / ``ticket.type_changed``
``Change`` of ``requester_id``              ``ticket.requester_changed``
``Comment``                                 ``ticket.comment_added``; the author is staff when
                                            Zendesk's user has the role agent or admin
                                            (``GET /api/v2/users/show_many.json``, once per user
                                            and run)
anything else (notifications, custom        nothing: the webhook is not subscribed to it
fields, organization, CCs...)
==========================================  ======================================================

Zendesk writes statuses, priorities and types in capitals in webhooks and in lower case in the
API: the rebuilt bodies use the webhook's capitals, so a priority that passes through unmapped is
``URGENT`` either way. A change the webhook would have been refused for (a priority cleared, a
status not mapped) is logged and left out, as its delivery would have been.

A webhook delivery's id is not in the API, so a pulled change is ``sync:zendesk:audit:<audit
id>:<event id>`` and the command matches it to what the webhooks stored by its content.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from shared import integrations
from shared.errors import EscaleraError
from shared.events import Event
from worker.adapters.base import Unmappable
from worker.adapters.zendesk import TYPE_PREFIX, ZendeskAdapter
from worker.portals.access import portal_api
from worker.portals.http import PortalApi, PortalError
from worker.sync.base import Page

log = structlog.get_logger("escalera.sync")

SOURCE = "zendesk"
EXPORT = "/api/v2/incremental/tickets/cursor.json"
AUDITS = "/api/v2/tickets/{}/audits.json"
USERS = "/api/v2/users/show_many.json"
AUDITS_PER_PAGE = 100  # the audits endpoint's maximum
USERS_PER_CALL = 100  # show_many takes up to 100 ids
STAFF = frozenset({"agent", "admin"})
NOT_FOUND = 404

# The audit field a Change event names -> the webhook event type Zendesk sends for it.
CHANGES: Mapping[str, str] = {
    "status": "ticket.status_changed",
    "custom_status_id": "ticket.custom_status_changed",
    "priority": "ticket.priority_changed",
    "group_id": "ticket.group_assignment_changed",
    "assignee_id": "ticket.agent_assignment_changed",
    "tags": "ticket.tags_changed",
    "subject": "ticket.subject_changed",
    "type": "ticket.type_changed",
    "requester_id": "ticket.requester_changed",
}
# The ticket fields a webhook's ``detail`` shows that the audits track.
TRACKED = (*CHANGES, "organization_id")
_CAPITALS = frozenset({"status", "priority", "type"})  # the webhook writes these in capitals

Audit = Mapping[str, Any]
Body = dict[str, Any]


def make_puller(
    section: integrations.Zendesk | None,
    environ: Mapping[str, str],
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> ZendeskPuller:
    """The puller for the Zendesk the settings' ``zendesk:`` section names, signed in as
    ``<e-mail>/token`` with an API token, both read from the environment variables it names."""
    api = portal_api("zendesk", section, environ, sleep=sleep)
    return ZendeskPuller(api, ZendeskAdapter.from_settings(section))


class ZendeskPuller:
    """Pages of the incremental ticket export, each ticket's changes in the window as events.

    Who is staff is asked once per user and run; an event already given in this run (a ticket
    the export lists again because it changed while the run read it) is not given twice.
    """

    source = SOURCE

    def __init__(self, api: PortalApi, adapter: ZendeskAdapter) -> None:
        self.api = api
        self.adapter = adapter
        self._staff: dict[str, bool] = {}
        self._given: set[str] = set()

    def page(self, since: datetime, until: datetime, cursor: str | None) -> Page:
        """The tickets of one export page (``cursor``: the previous page's ``after_cursor``)
        and the events of their changes in ``[since, until)``."""
        if cursor is None:
            params = {"start_time": int(since.timestamp()), "exclude_deleted": "true"}
        else:
            params = {"cursor": cursor}
        answer = _object(self.api.get(EXPORT, params))
        tickets = [t for t in _list(answer.get("tickets")) if isinstance(t, Mapping)]
        replays = [(t, _replay(t, self._audits(t))) for t in tickets if _live(t)]
        windows = [(t, [c for c in changes if since <= c.at < until]) for t, changes in replays]
        self._learn_staff(_authors(change for _, changes in windows for change in changes))
        events = [e for ticket, changes in windows for e in self._events(ticket, changes)]
        after = answer.get("after_cursor")
        done = answer.get("end_of_stream") is True or not isinstance(after, str) or not after
        return Page(events, len(tickets), None if done else after)

    def _audits(self, ticket: Mapping[str, Any]) -> list[Audit]:
        """Every audit of the ticket, oldest first (cursor pagination, ``page[after]``); none
        when the ticket is gone (deleted or merged while the run read it)."""
        path, params = AUDITS.format(ticket["id"]), {"page[size]": AUDITS_PER_PAGE}
        audits: list[Audit] = []
        while True:
            try:
                answer = _object(self.api.get(path, params))
            except PortalError as error:
                if error.status != NOT_FOUND:
                    raise
                log.warning("sync_ticket_gone", source=SOURCE, ticket_id=str(ticket["id"]))
                return []
            audits.extend(a for a in _list(answer.get("audits")) if isinstance(a, Mapping))
            meta = answer.get("meta")
            after = meta.get("after_cursor") if isinstance(meta, Mapping) else None
            if not (isinstance(meta, Mapping) and meta.get("has_more") is True and after):
                return audits
            params = {"page[size]": AUDITS_PER_PAGE, "page[after]": after}

    def _learn_staff(self, authors: Iterable[str]) -> None:
        """Ask Zendesk the role of the comment authors not seen yet in this run."""
        unknown = sorted(set(authors) - self._staff.keys(), key=_numeric)
        for start in range(0, len(unknown), USERS_PER_CALL):
            ids = unknown[start : start + USERS_PER_CALL]
            answer = _object(self.api.get(USERS, {"ids": ",".join(ids)}))
            for user in (u for u in _list(answer.get("users")) if isinstance(u, Mapping)):
                user_id = _text(user.get("id"))
                if user_id is not None:
                    self._staff[user_id] = user.get("role") in STAFF
            for missing in (i for i in ids if i not in self._staff):
                log.warning("sync_author_unknown", source=SOURCE, user_id=missing)
                self._staff[missing] = False  # a deleted user: not taken for an agent

    def _events(self, ticket: Mapping[str, Any], changes: list[_Change]) -> list[Event]:
        """The canonical events of one ticket's changes in the window, mapped by the adapter."""
        ticket_id = str(ticket["id"])
        events: list[Event] = []
        for change in changes:
            for event_id, body in _bodies(ticket, change, self._staff):
                if event_id in self._given:
                    continue
                try:
                    events.append(self.adapter.event_of(body, event_id))
                except Unmappable as refused:
                    log.warning(
                        "sync_change_refused",
                        source=SOURCE,
                        ticket_id=ticket_id,
                        event_id=event_id,
                        reason=str(refused),
                    )
                    continue
                self._given.add(event_id)
        log.info("sync_ticket_read", source=SOURCE, ticket_id=ticket_id, events=len(events))
        return events


@dataclass(frozen=True)
class _Change:
    """One audit in the window: when, its id, its events, and the ticket's fields after it."""

    at: datetime
    written: str  # the audit's created_at as Zendesk wrote it
    audit_id: str
    author: str | None  # the audit's author_id
    events: tuple[Mapping[str, Any], ...]
    fields: Mapping[str, Any]


def _replay(ticket: Mapping[str, Any], audits: list[Audit]) -> list[_Change]:
    """Every dated audit with the ticket's fields right after it. A field no audit mentions
    kept its value throughout: the one the export shows."""
    dated = sorted(
        ((at, a) for a in audits if (at := _time(a.get("created_at"))) is not None),
        key=lambda pair: (pair[0], _numeric(str(pair[1].get("id")))),
    )
    fields = _initial(ticket, [a for _, a in dated])
    changes: list[_Change] = []
    for at, audit in dated:
        events = tuple(e for e in _list(audit.get("events")) if isinstance(e, Mapping))
        for event in events:
            if event.get("type") in ("Create", "Change") and event.get("field_name") in TRACKED:
                fields[str(event["field_name"])] = event.get("value")
        written, author = str(audit["created_at"]), _text(audit.get("author_id"))
        changes.append(_Change(at, written, _id(audit), author, events, dict(fields)))
    return changes


def _initial(ticket: Mapping[str, Any], audits: list[Audit]) -> dict[str, Any]:
    """The fields before the first audit: unset for those a Create event sets, the
    ``previous_value`` of a field's first Change, else the ticket's value now."""
    fields: dict[str, Any] = {}
    for name in TRACKED:
        first = next(
            (
                e
                for audit in audits
                for e in _list(audit.get("events"))
                if isinstance(e, Mapping)
                and e.get("field_name") == name
                and e.get("type") in ("Create", "Change")
            ),
            None,
        )
        if first is None:
            fields[name] = ticket.get(name)
        else:
            fields[name] = first.get("previous_value") if first.get("type") == "Change" else None
    return fields


def _bodies(
    ticket: Mapping[str, Any], change: _Change, staff: Mapping[str, bool]
) -> Iterator[tuple[str, Body]]:
    """The webhook bodies Zendesk would have sent for one audit, each with its sync id."""
    created = [e for e in change.events if e.get("type") == "Create"]
    if created:
        yield _sync_id(change, created[0]), _body("ticket.created", ticket, change, {})
    for event in change.events:
        kind, name = event.get("type"), event.get("field_name")
        if kind == "Change" and isinstance(name, str) and name in CHANGES:
            yield _sync_id(change, event), _body(CHANGES[name], ticket, change, _moved(event))
        elif kind == "Comment" and not created:
            comment = _comment(event, change, staff)
            yield _sync_id(change, event), _body("ticket.comment_added", ticket, change, comment)


def _body(kind: str, ticket: Mapping[str, Any], change: _Change, event: Body) -> Body:
    """A webhook body in Zendesk's "Ticket events" shape, ``detail`` the ticket after the
    audit."""
    fields = change.fields
    detail = {
        "id": _text(ticket.get("id")),
        "subject": fields["subject"],
        "status": _capitals(fields["status"]),
        "priority": _capitals(fields["priority"]),
        "type": _capitals(fields["type"]),
        "group_id": _text(fields["group_id"]),
        "assignee_id": _text(fields["assignee_id"]),
        "requester_id": _text(fields["requester_id"]),
        "organization_id": _text(fields["organization_id"]),
        "custom_status": _text(fields["custom_status_id"]),
        "tags": _tags(fields["tags"]),
        "via": {"channel": _via(ticket)},
        "created_at": ticket.get("created_at"),
        "updated_at": change.written,
    }
    return {
        "type": TYPE_PREFIX + kind,
        "time": change.written,
        "subject": f"zen:ticket:{detail['id']}",
        "detail": detail,
        "event": event,
    }


def _moved(event: Mapping[str, Any]) -> Body:
    """A Change event as the webhook's ``event``: previous and current, or for tags the tags
    added and removed."""
    name = event.get("field_name")
    if name == "tags":
        before, after = _tags(event.get("previous_value")), _tags(event.get("value"))
        return {
            "tags_added": [t for t in after if t not in before],
            "tags_removed": [t for t in before if t not in after],
        }
    if name in _CAPITALS:
        return {
            "previous": _capitals(event.get("previous_value")),
            "current": _capitals(event.get("value")),
        }
    return {"previous": _text(event.get("previous_value")), "current": _text(event.get("value"))}


def _comment(event: Mapping[str, Any], change: _Change, staff: Mapping[str, bool]) -> Body:
    """A Comment event as the webhook's ``event.comment``."""
    author = _comment_author(event, change)
    return {
        "comment": {
            "id": _text(event.get("id")),
            "is_public": event.get("public"),
            "author": {"id": author, "is_staff": staff.get(author or "", False)},
        }
    }


def _comment_author(event: Mapping[str, Any], change: _Change) -> str | None:
    """Who wrote a comment: its ``author_id``, else the audit's (an agent may comment on a
    requester's behalf, so the comment's own comes first)."""
    return _text(event.get("author_id")) or change.author


def _authors(changes: Iterable[_Change]) -> set[str]:
    """The authors of the comments made after the tickets' creation in these audits."""
    found: set[str] = set()
    for change in changes:
        if any(e.get("type") == "Create" for e in change.events):
            continue
        for event in change.events:
            author = _comment_author(event, change) if event.get("type") == "Comment" else None
            if author is not None:
                found.add(author)
    return found


def _sync_id(change: _Change, event: Mapping[str, Any]) -> str:
    return f"sync:zendesk:audit:{change.audit_id}:{_text(event.get('id'))}"


def _live(ticket: Mapping[str, Any]) -> bool:
    """Not a deleted ticket (the export lists them, status ``deleted``, without
    ``exclude_deleted``): its audits are gone."""
    return _text(ticket.get("id")) is not None and ticket.get("status") != "deleted"


def _via(ticket: Mapping[str, Any]) -> str | None:
    via = ticket.get("via")
    return _text(via.get("channel")) if isinstance(via, Mapping) else None


def _tags(value: Any) -> list[str]:
    """A tags value: a list (the documented shape), or a space-separated string."""
    if isinstance(value, str):
        return value.split()
    return [t for t in value if isinstance(t, str)] if isinstance(value, list) else []


def _capitals(value: Any) -> str | None:
    text = _text(value)
    return text.upper() if text is not None else None


def _text(value: Any) -> str | None:
    """An id or name as text (Zendesk sends ids as numbers or strings); None when absent."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return str(value).strip() or None


def _id(audit: Audit) -> str:
    return _text(audit.get("id")) or "?"


def _numeric(text: str) -> tuple[int, str]:
    """Order ids as numbers when they are numbers."""
    return (int(text), "") if text.isdigit() else (0, text)


def _time(value: Any) -> datetime | None:
    """An audit's ``created_at`` (``2025-03-04T09:17:42Z``); None when it is not a time with an
    offset."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.utcoffset() is not None else None


def _object(answer: Any) -> Mapping[str, Any]:
    if not isinstance(answer, Mapping):
        raise EscaleraError("zendesk: the API answered something other than a JSON object")
    return answer


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
