"""Jira Service Management: Jira webhooks registered with a secret, to canonical events.

=========================================  ========================================================
``webhookEvent``                           canonical events
=========================================  ========================================================
``jira:issue_created``                     ``created``: priority ``issue.fields.priority.name``,
                                           requester the reporter's e-mail (else account id),
                                           customer the first organization in
                                           ``organization_field`` when one is configured
``jira:issue_updated``                     one per ``changelog.items[]`` entry that matters:
                                           ``status`` (``toString``) -> ``resolved``, ``closed``,
                                           ``reopened`` or ``status_changed``; ``priority`` ->
                                           ``priority_changed`` (``toString``); ``assignee`` ->
                                           ``assigned``; and the ``comment`` it may carry, as
                                           below. Nothing that matters: no events.
``comment_created``                        the reporter or a portal customer (``accountType``
                                           ``customer``): ``customer_replied``; an ``app``:
                                           automatic ``agent_replied``; anyone else:
                                           ``agent_replied``, public = ``comment.jsdPublic`` (else
                                           no ``visibility`` restriction)
``comment_updated``, ``comment_deleted``   no events: an edit is not a reply, nor is a reply
                                           taken back
=========================================  ========================================================

Statuses are mapped by name (folded: ``Waiting for customer`` = ``waiting_for_customer``), else,
for the issue's current status, by its ``statusCategory.key``: only ``done`` (as solved) by
default, since "To Do" and "In Progress" categories also hold statuses that wait on someone.

A move out of a done status to a waiting one stays a ``status_changed`` with that status
(``reopened`` means open); the SLA core counts it as a reopening all the same.

Ticket id: ``issue.key``. Time: ``comment.created`` for a comment, ``issue.fields.created`` for a
creation, else the top-level ``timestamp`` (epoch ms). Event ids come from the content, so that a
retry, and the same comment arriving as ``comment_created`` and inside ``jira:issue_updated``,
share one: ``comment:<id>``, ``changelog:<id>:<item index>``, ``issue:<id>:created``; a payload
without those ids falls back to ``X-Atlassian-Webhook-Identifier`` (same on every retry) and the
event's index.

The signature covers no time, so `JiraAdapter.verify` also refuses a body whose ``timestamp`` is
older than ``max_age`` or more than ``skew`` ahead. Jira retries a failed delivery for up to about
30 minutes, so the default ``max_age`` is 40: a limit of exactly 30 would refuse a legitimate late
retry, and its event would be lost.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

from shared import integrations
from shared.events import Event, EventType, Status
from shared.names import fold
from worker.adapters.base import RejectedRequest, Unauthorized, Unmappable, WebhookRequest
from worker.adapters.payload import (
    build_event,
    iso_time,
    json_object,
    status_fields,
    text_at,
    value_at,
)
from worker.adapters.signatures import DEFAULT_SKEW, verify_jira

DELIVERY_ID = "x-atlassian-webhook-identifier"
DEFAULT_MAX_AGE = timedelta(minutes=40)  # Jira retries for ~30 minutes: leave a margin
DEFAULT_STATUSES: Mapping[str, Status] = MappingProxyType(
    {
        "new": Status.NEW,
        "open": Status.OPEN,
        "reopened": Status.OPEN,
        "to_do": Status.OPEN,
        "waiting_for_support": Status.OPEN,
        "in_progress": Status.OPEN,
        "work_in_progress": Status.OPEN,
        "escalated": Status.OPEN,
        "waiting_for_customer": Status.PENDING,
        "pending": Status.PENDING,
        "on_hold": Status.ON_HOLD,
        "resolved": Status.SOLVED,
        "done": Status.SOLVED,
        "completed": Status.SOLVED,
        "closed": Status.CLOSED,
        "canceled": Status.CLOSED,
        "cancelled": Status.CLOSED,
        "declined": Status.CLOSED,
    }
)
DEFAULT_CATEGORIES: Mapping[str, Status] = MappingProxyType({"done": Status.SOLVED})
_NO_EVENTS = frozenset({"comment_updated", "comment_deleted"})


@dataclass(frozen=True)
class Draft:
    """An event before its ticket, source and defaults are filled in."""

    fields: dict[str, Any]
    key: str | None = None  # an id derived from the content (comment, changelog, issue id)
    at: datetime | None = None  # the event's own time, when the payload has one


class JiraAdapter:
    """Jira webhooks; ``statuses`` and ``categories`` add to or override the defaults.

    ``priorities`` renames priorities (others pass through), ``organization_field`` names the
    JSM organizations field (``customfield_<n>``, different on every site), ``default_priority``
    serves an issue created without one, ``max_age`` bounds how late a delivery may arrive.
    """

    source = "jira"

    @classmethod
    def from_settings(cls, section: integrations.Jira | None) -> JiraAdapter:
        """The adapter a desk's integration settings describe (None: the defaults)."""
        if section is None:
            return cls()
        return cls(
            statuses=section.statuses,
            priorities=section.priorities,
            organization_field=section.organization_field,
            default_priority=section.default_priority,
        )

    def __init__(
        self,
        *,
        statuses: Mapping[str, Status | str] | None = None,
        categories: Mapping[str, Status | str] | None = None,
        priorities: Mapping[str, str] | None = None,
        organization_field: str | None = None,
        default_priority: str | None = None,
        max_age: timedelta = DEFAULT_MAX_AGE,
        skew: timedelta = DEFAULT_SKEW,
    ) -> None:
        self.statuses = {**DEFAULT_STATUSES, **{fold(k): Status(v) for k, v in _items(statuses)}}
        self.categories = {**DEFAULT_CATEGORIES, **{k: Status(v) for k, v in _items(categories)}}
        self.priorities = {fold(k): v for k, v in (priorities or {}).items()}
        self.organization_field = organization_field
        self.default_priority = default_priority
        self.max_age = max_age
        self.skew = skew
        self._handlers: dict[str, Callable[[Mapping[str, Any]], list[Draft]]] = {
            "jira:issue_created": self._created,
            "jira:issue_updated": self._updated,
            "comment_created": self._commented,
        }

    def verify(self, request: WebhookRequest, secret: str) -> None:
        """Check ``X-Hub-Signature``, then that the body's ``timestamp`` is recent enough."""
        verify_jira(request.body, request.headers, secret)
        sent = _sent_at(request.body)
        age = request.received_at - sent
        if age > self.max_age:
            raise Unauthorized(
                f"stale: sent {int(age.total_seconds())} s ago "
                f"(allowed {int(self.max_age.total_seconds())} s)",
                field="timestamp",
            )
        if -age > self.skew:
            raise Unauthorized(f"{int(-age.total_seconds())} s in the future", field="timestamp")

    def to_events(self, payload: Any, request: WebhookRequest) -> list[Event]:
        """The canonical events of one Jira webhook delivery (none for an irrelevant edit)."""
        body = json_object(payload)
        drafts = self._handler(body)(body)
        if not drafts:
            return []
        ticket_id, delivery = _ticket_id(body), _delivery_id(request)
        return [
            build_event(
                {
                    **draft.fields,
                    "event_id": draft.key or f"{delivery}:{index}",
                    "source": self.source,
                    "ticket_id": ticket_id,
                    "occurred_at": draft.at or _timestamp(body),
                }
            )
            for index, draft in enumerate(drafts)
        ]

    def _handler(self, body: Mapping[str, Any]) -> Callable[[Mapping[str, Any]], list[Draft]]:
        kind = text_at(body, "webhookEvent")
        if kind in _NO_EVENTS:
            return lambda _: []
        handler = self._handlers.get(kind or "")
        if handler is None:
            known = ", ".join([*self._handlers, *sorted(_NO_EVENTS)])
            raise Unmappable(f"unknown event {kind!r}; known: {known}", field="webhookEvent")
        return handler

    def _created(self, body: Mapping[str, Any]) -> list[Draft]:
        fields = {
            "type": EventType.CREATED,
            "priority": self._created_priority(body),
            "requester": text_at(body, "issue.fields.reporter.emailAddress")
            or text_at(body, "issue.fields.reporter.accountId"),
            "customer": self._organization(body),
        }
        issue = text_at(body, "issue.id")
        key = f"issue:{issue}:created" if issue else None
        return [Draft(fields, key, _optional_time(body, "issue.fields.created"))]

    def _updated(self, body: Mapping[str, Any]) -> list[Draft]:
        items = value_at(body, "changelog.items")
        changes = items if isinstance(items, list) else []
        changelog = text_at(body, "changelog.id")
        drafts = []
        for index, item in enumerate(changes):
            fields = self._change(body, item, f"changelog.items[{index}]")
            if fields is not None:
                drafts.append(
                    Draft(fields, f"changelog:{changelog}:{index}" if changelog else None)
                )
        if isinstance(value_at(body, "comment"), Mapping):
            drafts.extend(self._commented(body))
        return drafts

    def _change(self, body: Mapping[str, Any], item: Any, where: str) -> dict[str, Any] | None:
        field = fold(text_at(item, "field") or "") if isinstance(item, Mapping) else ""
        if field == "status":
            return self._status_change(body, item, where)
        if field == "priority":
            priority = text_at(item, "toString")
            if priority is None:
                raise Unmappable("no priority to change to", field=f"{where}.toString")
            return {"type": EventType.PRIORITY_CHANGED, "priority": self._rename(priority)}
        if field == "assignee":
            return {"type": EventType.ASSIGNED}
        return None

    def _status_change(
        self, body: Mapping[str, Any], item: Mapping[str, Any], where: str
    ) -> dict[str, Any]:
        name = text_at(item, "toString")
        current = self.statuses.get(fold(name or "")) or self._by_category(body, name)
        if current is None:
            known = ", ".join(sorted(self.statuses))
            raise Unmappable(
                f"status {name!r} is not mapped; known: {known} (extend `statuses`)",
                field=f"{where}.toString",
            )
        previous = self.statuses.get(fold(text_at(item, "fromString") or ""))
        return status_fields(previous, current)

    def _by_category(self, body: Mapping[str, Any], name: str | None) -> Status | None:
        """The mapped category of ``name`` when it is the issue's current status."""
        if name is None or name != text_at(body, "issue.fields.status.name"):
            return None
        return self.categories.get(text_at(body, "issue.fields.status.statusCategory.key") or "")

    def _commented(self, body: Mapping[str, Any]) -> list[Draft]:
        found = value_at(body, "comment.author")
        author: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        comment = text_at(body, "comment.id")
        key = f"comment:{comment}" if comment else None
        at = _optional_time(body, "comment.created")
        if _by_requester(body, author):
            return [Draft({"type": EventType.CUSTOMER_REPLIED}, key, at)]
        fields = {
            "type": EventType.AGENT_REPLIED,
            "public": _comment_is_public(body),
            "automatic": text_at(author, "accountType") == "app",
        }
        return [Draft(fields, key, at)]

    def _created_priority(self, body: Mapping[str, Any]) -> str:
        priority = text_at(body, "issue.fields.priority.name")
        if priority is not None:
            return self._rename(priority)
        if self.default_priority is not None:
            return self.default_priority
        raise Unmappable(
            "the issue has no priority and no default_priority is set",
            field="issue.fields.priority.name",
        )

    def _organization(self, body: Mapping[str, Any]) -> str | None:
        if self.organization_field is None:
            return None
        value = value_at(body, f"issue.fields.{self.organization_field}")
        first = value[0] if isinstance(value, list) and value else value
        return text_at(first, "name") if isinstance(first, Mapping) else None

    def _rename(self, priority: str) -> str:
        return self.priorities.get(fold(priority), priority)


def _by_requester(body: Mapping[str, Any], author: Mapping[str, Any]) -> bool:
    """A portal customer's comment, or the reporter's own."""
    if text_at(author, "accountType") == "customer":
        return True
    reporter = text_at(body, "issue.fields.reporter.accountId")
    return reporter is not None and reporter == text_at(author, "accountId")


def _comment_is_public(body: Mapping[str, Any]) -> bool:
    shared = value_at(body, "comment.jsdPublic")
    if isinstance(shared, bool):
        return shared
    return value_at(body, "comment.visibility") is None


def _sent_at(raw: bytes) -> datetime:
    """The body's ``timestamp``, read for the age check before the body is otherwise trusted."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise RejectedRequest("the body is not JSON") from error
    except RecursionError as error:
        raise RejectedRequest("the JSON is nested too deeply") from error
    stamp = _epoch_ms(value_at(body, "timestamp") if isinstance(body, Mapping) else None)
    if stamp is None:
        raise Unauthorized("missing or not epoch milliseconds: age unknown", field="timestamp")
    return stamp


def _timestamp(body: Mapping[str, Any]) -> datetime:
    stamp = _epoch_ms(value_at(body, "timestamp"))
    if stamp is None:
        raise Unmappable("missing or not epoch milliseconds", field="timestamp")
    return stamp


def _epoch_ms(stamp: Any) -> datetime | None:
    """Epoch milliseconds as a time; None when not an integer or beyond years 1 to 9999."""
    if isinstance(stamp, bool) or not isinstance(stamp, int):
        return None
    try:
        return datetime.fromtimestamp(stamp / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _optional_time(body: Mapping[str, Any], path: str) -> datetime | None:
    """Jira's times, e.g. ``2025-03-04T08:02:11.402+0000``, in UTC; None when absent."""
    value = text_at(body, path)
    return None if value is None else iso_time(value, path)


def _ticket_id(body: Mapping[str, Any]) -> str:
    ticket = text_at(body, "issue.key") or text_at(body, "issue.id")
    if ticket is None:
        raise Unmappable("missing: the payload names no issue", field="issue.key")
    return ticket


def _delivery_id(request: WebhookRequest) -> str:
    """Jira's delivery id, the same on every retry; else a hash of the body."""
    header = (request.headers.get(DELIVERY_ID) or "").strip()
    return header or hashlib.sha256(request.body).hexdigest()[:32]


def _items(mapping: Mapping[str, Status | str] | None) -> list[tuple[str, Status | str]]:
    return list((mapping or {}).items())
