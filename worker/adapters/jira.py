"""Jira Service Management: Jira webhooks registered with a secret, to canonical events.

=========================================  ========================================================
``webhookEvent``                           canonical events
=========================================  ========================================================
``jira:issue_created``                     ``created``: priority ``issue.fields.priority`` (absent:
                                           ``default_priority``, else none, for the policy's),
                                           status ``issue.fields.status`` when mapped,
                                           requester the reporter's e-mail (else account id),
                                           customer, plan and time zone as the settings' lookups
                                           say (customer: the first organization in
                                           ``organization_field`` by default), tier of the group
``jira:issue_updated``                     one per ``changelog.items[]`` entry that matters
                                           (an item is known by ``fieldId``, else ``field``):
                                           ``status`` (``to`` id or ``toString`` name) ->
                                           ``resolved``, ``closed``, ``reopened`` or
                                           ``status_changed``; ``priority`` -> ``priority_changed``;
                                           ``assignee`` -> ``assigned`` with the tier of the
                                           issue's group; the ``group_field`` to a group with a
                                           tier -> ``assigned`` at that tier; and the ``comment`` it
                                           may carry (not when ``issue_comment_edited`` or
                                           ``_deleted``), as below. None of those, but the context
                                           changed (``summary``, ``issuetype``, ``labels``,
                                           ``reporter``, the ``group_field`` to a group without a
                                           tier): one ``updated`` carrying what changed (subject,
                                           ticket type, tags added/removed, requester id, group).
                                           Anything else (description, rank...): no events
``comment_created``                        who wrote it, from ``comment.author``: the reporter
                                           (when the payload names one) -> ``customer_replied``,
                                           role requester; a portal customer (``accountType``
                                           ``customer``) -> ``customer_replied``, role customer;
                                           an ``app`` -> automatic ``agent_replied``, role system;
                                           anyone else -> ``agent_replied``, role unknown. Always
                                           ``author`` = ``comment.author.accountId``, so the core
                                           can tell the requester's own comment when the payload's
                                           reduced issue has no reporter (Jira Cloud's has none).
                                           Public per ``public_comments``
``comment_updated``, ``comment_deleted``   no events: an edit is not a reply, nor is a reply
                                           taken back
=========================================  ========================================================

Every event also carries the ticket's context, as far as its payload holds it: ``subject``
(``fields.summary``), ``ticket_type`` (``fields.issuetype.name``), ``assignee`` (display name,
else account id), ``tags`` (``fields.labels``; a ``labels`` changelog item gives
``tags_added``/``tags_removed``), ``group`` (``group_field``'s value) and ``requester_id``
(``fields.reporter.accountId``). Portal text is cleaned: each run of control characters and
white space becomes one space, and it is cut to the event's limits. The request channel (JQL's
``request-channel-type``) is not an issue field and never in a payload: no ``channel``.

Statuses are mapped by id or name (folded: ``Waiting for customer`` = ``waiting_for_customer``),
else, for the issue's current status, by its ``statusCategory.key``: only ``done`` (as solved) by
default, since "To Do" and "In Progress" categories also hold statuses that wait on someone. A
move out of a done status to a waiting one stays a ``status_changed`` with that status
(``reopened`` means open); the SLA core counts it as a reopening all the same.

Ticket id: ``issue.key``. Time: ``comment.created`` for a comment, ``issue.fields.created`` for a
creation, else the top-level ``timestamp`` (epoch ms). Event ids come from the change itself, so a
retry, and the same comment arriving as ``comment_created`` and inside ``jira:issue_updated``,
share one, while two changes never do (each has its own changelog or comment id):
``comment:<id>``, ``changelog:<id>:<item index>``, ``changelog:<id>:updated``,
``issue:<id>:created``; a payload without those
ids falls back to ``X-Atlassian-Webhook-Identifier`` (unique per delivery, the same on every
retry) and the event's index.
`JiraAdapter.events_of` maps a body of the same shape built from the REST API
(`worker.sync.jira`, recovering missed deliveries), so a change maps alike and keeps its id
whichever way it arrives.

The signature covers no time, so `JiraAdapter.verify` also refuses a body whose ``timestamp`` is
older than ``max_age`` or more than ``skew`` ahead. Jira retries a failed delivery for up to about
30 minutes, so the default ``max_age`` is 40: a limit of exactly 30 would refuse a legitimate late
retry, and its event would be lost.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, Literal

from shared import integrations
from shared.events import AuthorRole, Event, EventType, Status
from shared.names import fold
from worker.adapters.base import RejectedRequest, Unauthorized, Unmappable, WebhookRequest
from worker.adapters.payload import (
    build_event,
    iso_time,
    json_object,
    one_line,
    status_fields,
    text_at,
    timezone_named,
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
PublicComments = Literal["jsd_public", "unrestricted", "all"]
_NO_EVENTS = frozenset({"comment_updated", "comment_deleted"})
_NOT_A_NEW_COMMENT = frozenset({"issue_comment_edited", "issue_comment_deleted"})
_ROLES: Mapping[str, AuthorRole] = MappingProxyType(
    {"customer": AuthorRole.CUSTOMER, "app": AuthorRole.SYSTEM}
)
_CUSTOMER_SIDE = (AuthorRole.REQUESTER, AuthorRole.CUSTOMER)
# The canonical event's limits (shared/events.py): ids and names, words, subjects, tags.
NAME, WORD, SUBJECT, TAG, TAGS = 256, 64, 1000, 128, 200
# Changelog fields that change only the ticket's context: the event field each gives, the
# item's key holding the new value, its limit. (``labels`` too: see `_context_change`.)
_CONTEXT_FIELDS: Mapping[str, tuple[str, str, int]] = MappingProxyType(
    {
        "summary": ("subject", "toString", SUBJECT),
        "issuetype": ("ticket_type", "toString", WORD),
        "reporter": ("requester_id", "tmpToAccountId", NAME),
    }
)


@dataclass(frozen=True)
class Draft:
    """An event before its ticket, source, context and defaults are filled in."""

    fields: dict[str, Any]
    key: str | None = None  # an id derived from the content (comment, changelog, issue id)
    at: datetime | None = None  # the event's own time, when the payload has one


class JiraAdapter:
    """Jira webhooks; ``statuses`` and ``categories`` add to or override the defaults.

    ``priorities`` renames priorities by name or id (others pass through),
    ``organization_field`` names the JSM organizations field and ``group_field`` the field
    holding the ticket's group (``customfield_<n>``, different on every site), ``tiers`` gives
    the support tier of a group (name or id), ``customer``/``plan``/``timezone`` say where those
    are read, ``public_comments`` which comments are public, ``default_priority`` serves an issue
    created without one, ``max_age`` bounds how late a delivery may arrive.
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
            group_field=section.group_field,
            tiers=section.groups,
            customer=section.customer,
            plan=section.plan,
            timezone=section.timezone,
            public_comments=section.public_comments,
            default_priority=section.default_priority,
        )

    def __init__(
        self,
        *,
        statuses: Mapping[str, Status | str] | None = None,
        categories: Mapping[str, Status | str] | None = None,
        priorities: Mapping[str, str] | None = None,
        organization_field: str | None = None,
        group_field: str | None = None,
        tiers: Mapping[str, int] | None = None,
        customer: integrations.Lookup | None = None,
        plan: integrations.Lookup | None = None,
        timezone: integrations.Lookup | None = None,
        public_comments: PublicComments = "jsd_public",
        default_priority: str | None = None,
        max_age: timedelta = DEFAULT_MAX_AGE,
        skew: timedelta = DEFAULT_SKEW,
    ) -> None:
        self.statuses = {**DEFAULT_STATUSES, **{fold(k): Status(v) for k, v in _items(statuses)}}
        self.categories = {**DEFAULT_CATEGORIES, **{k: Status(v) for k, v in _items(categories)}}
        self.priorities = {fold(k): v for k, v in (priorities or {}).items()}
        self.organization_field = organization_field
        self.group_field = group_field
        self.tiers = {fold(k): v for k, v in (tiers or {}).items()}
        self.lookups = {"customer": customer, "plan": plan, "customer_timezone": timezone}
        self.public_comments = public_comments
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
        return self.events_of(payload, _delivery_id(request))

    def events_of(self, payload: Any, delivery: str) -> list[Event]:
        """The canonical events of a body in the webhook's shape, wherever it comes from (a
        delivery, or a change `worker.sync.jira` rebuilt from the REST API); ``delivery`` names
        the events of a body that carries no changelog, comment or issue id."""
        body = json_object(payload)
        drafts = self._handler(body)(body)
        if not drafts:
            return []
        ticket_id = _ticket_id(body)
        context = self._context(body)
        return [
            build_event(
                {
                    **context,
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

    # --- what each webhook event says -------------------------------------------------------------

    def _created(self, body: Mapping[str, Any]) -> list[Draft]:
        fields = {
            "type": EventType.CREATED,
            "priority": self._created_priority(body),
            "status": self._current_status(body),
            "requester": _clean(value_at(body, "issue.fields.reporter.emailAddress"), NAME)
            or _clean(value_at(body, "issue.fields.reporter.accountId"), NAME),
            "tier": self._tier(*self._group(body)),
            **{name: self._lookup(body, name) for name in self.lookups},
        }
        issue = text_at(body, "issue.id")
        zone = fields["customer_timezone"]
        fields["customer_timezone"] = timezone_named(
            zone if isinstance(zone, str) else None,
            source=self.source,
            ticket_id=text_at(body, "issue.key"),
        )
        key = f"issue:{issue}:created" if issue else None
        return [Draft(fields, key, _optional_time(body, "issue.fields.created"))]

    def _updated(self, body: Mapping[str, Any]) -> list[Draft]:
        changelog = text_at(body, "changelog.id")
        drafts = []
        for index, item in enumerate(_changes(body)):
            fields = self._change(body, item, f"changelog.items[{index}]")
            if fields is not None:
                drafts.append(
                    Draft(fields, f"changelog:{changelog}:{index}" if changelog else None)
                )
        commented = isinstance(value_at(body, "comment"), Mapping)
        if commented and text_at(body, "issue_event_type_name") not in _NOT_A_NEW_COMMENT:
            drafts.extend(self._commented(body))
        return drafts or self._context_update(body, changelog)

    def _context_update(self, body: Mapping[str, Any], changelog: str | None) -> list[Draft]:
        """One ``updated`` event when the changelog changes the ticket's context and nothing
        that gives a state event: what changed, from the items (the delivery's context, from
        the issue as it is now, fills in the rest)."""
        changes = [self._context_change(item) for item in _changes(body)]
        found = [change for change in changes if change is not None]
        if not found:
            return []
        changed = {k: v for change in found for k, v in change.items() if v is not None}
        key = f"changelog:{changelog}:updated" if changelog else None
        return [Draft({**changed, "type": EventType.UPDATED}, key)]

    def _context_change(self, item: Any) -> dict[str, Any] | None:
        """What one changelog item changes of the ticket's context (None: not its context)."""
        if not isinstance(item, Mapping):
            return None
        if self._is_group(item):
            return {"group": _clean(item.get("toString"), NAME) or _clean(item.get("to"), NAME)}
        field = _field(item)
        if field == "labels":
            return {}  # every event of the delivery has tags_added/removed from all its items
        if field not in _CONTEXT_FIELDS:
            return None
        name, key, limit = _CONTEXT_FIELDS[field]
        return {name: _clean(item.get(key), limit)}

    def _is_group(self, item: Mapping[str, Any]) -> bool:
        return self.group_field is not None and text_at(item, "fieldId") == self.group_field

    def _change(self, body: Mapping[str, Any], item: Any, where: str) -> dict[str, Any] | None:
        if not isinstance(item, Mapping):
            return None
        field = _field(item)
        if field == "status":
            return self._status_change(body, item, where)
        if field == "priority":
            priority = text_at(item, "toString")
            if priority is None:
                raise Unmappable("no priority to change to", field=f"{where}.toString")
            return {
                "type": EventType.PRIORITY_CHANGED,
                "priority": self._rename(priority, text_at(item, "to")),
            }
        if field == "assignee":
            return {"type": EventType.ASSIGNED, "tier": self._tier(*self._group(body))}
        if self._is_group(item):
            tier = self._tier(text_at(item, "toString"), text_at(item, "to"))
            return None if tier is None else {"type": EventType.ASSIGNED, "tier": tier}
        return None

    def _status_change(
        self, body: Mapping[str, Any], item: Mapping[str, Any], where: str
    ) -> dict[str, Any]:
        name, ident = text_at(item, "toString"), text_at(item, "to")
        current = self._status(name, ident) or self._by_category(body, name, ident)
        if current is None:
            known = ", ".join(sorted(self.statuses))
            named = f"{name!r} (id {ident})" if ident else repr(name)
            raise Unmappable(
                f"status {named} is not mapped; known: {known} "
                "(extend `statuses` with its name or id)",
                field=f"{where}.toString",
            )
        previous = self._status(text_at(item, "fromString"), text_at(item, "from"))
        return status_fields(previous, current)

    def status_of(self, name: str | None, ident: str | None = None) -> Status | None:
        """The status the settings or defaults map Jira's status (name or id) to; None when
        only its category could tell."""
        return self._status(name, ident)

    def custom_fields(self) -> list[str]:
        """The custom fields the settings read (organizations, group, lookups by field), for a
        REST client to ask for."""
        lookups = (
            lookup.field
            for lookup in self.lookups.values()
            if lookup is not None and lookup.source == "field"
        )
        named = [self.organization_field, self.group_field, *lookups]
        return list(dict.fromkeys(name for name in named if name))

    def _status(self, name: str | None, ident: str | None) -> Status | None:
        """A status by id (custom workflow statuses), else by name."""
        return next((self.statuses[k] for k in _keys(ident, name) if k in self.statuses), None)

    def _current_status(self, body: Mapping[str, Any]) -> Status | None:
        """The issue's status when mapped (a creation is never refused for its status)."""
        name = text_at(body, "issue.fields.status.name")
        ident = text_at(body, "issue.fields.status.id")
        return self._status(name, ident) or self._by_category(body, name, ident)

    def _by_category(
        self, body: Mapping[str, Any], name: str | None, ident: str | None
    ) -> Status | None:
        """The mapped category of the status moved to, when it is the issue's current one."""
        status = (text_at(body, f"issue.fields.status.{key}") for key in ("name", "id"))
        if not {name, ident} & (set(status) - {None}):
            return None
        return self.categories.get(text_at(body, "issue.fields.status.statusCategory.key") or "")

    def _commented(self, body: Mapping[str, Any]) -> list[Draft]:
        found = value_at(body, "comment.author")
        author: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        comment = text_at(body, "comment.id")
        key = f"comment:{comment}" if comment else None
        at = _optional_time(body, "comment.created")
        role = _role(body, author)
        fields: dict[str, Any] = {
            "type": EventType.CUSTOMER_REPLIED,
            "author": _clean(author.get("accountId"), NAME),
            "author_role": role,
        }
        if role not in _CUSTOMER_SIDE:
            fields.update(
                type=EventType.AGENT_REPLIED,
                public=self._is_public(body),
                automatic=role is AuthorRole.SYSTEM,
            )
        return [Draft(fields, key, at)]

    def _is_public(self, body: Mapping[str, Any]) -> bool:
        """Per ``public_comments``: JSM's ``jsdPublic`` (absent: unrestricted), unrestricted
        (no ``visibility`` restriction, whatever the flag), or every comment."""
        if self.public_comments == "all":
            return True
        unrestricted = not value_at(body, "comment.visibility")
        shared = value_at(body, "comment.jsdPublic")
        if self.public_comments == "jsd_public" and isinstance(shared, bool):
            return shared
        return unrestricted

    # --- the ticket's context ---------------------------------------------------------------------

    def _context(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """What the payload says of the ticket, for every event of the delivery."""
        added, removed = _label_changes(_changes(body))
        group, group_id = self._group(body)
        context = {
            "subject": _clean(value_at(body, "issue.fields.summary"), SUBJECT),
            "ticket_type": _clean(value_at(body, "issue.fields.issuetype.name"), WORD),
            "assignee": _person(value_at(body, "issue.fields.assignee")),
            "group": group or group_id,
            "tags": _tags(_labels(body)),
            "tags_added": _tags(added),
            "tags_removed": _tags(removed),
            "requester_id": _clean(value_at(body, "issue.fields.reporter.accountId"), NAME),
        }
        return {name: value for name, value in context.items() if value is not None}

    def _group(self, body: Mapping[str, Any]) -> tuple[str | None, str | None]:
        """The issue's group (name, id), from ``group_field``."""
        if self.group_field is None:
            return None, None
        return _option(value_at(body, f"issue.fields.{self.group_field}"))

    def _tier(self, name: str | None, ident: str | None) -> int | None:
        return next((self.tiers[k] for k in _keys(name, ident) if k in self.tiers), None)

    def _lookup(self, body: Mapping[str, Any], name: str) -> str | None:
        """The customer, plan or time zone where the settings say (customer: the organization
        by default)."""
        lookup = self.lookups[name]
        if lookup is None:
            return self._organization(body) if name == "customer" else None
        if lookup.source == "organization":
            return self._organization(body)
        if lookup.source == "field":
            option = _option(value_at(body, f"issue.fields.{lookup.field}"))
            return option[0] or option[1]
        prefix = lookup.prefix or ""
        tagged = (tag[len(prefix) :] for tag in _labels(body) or [] if tag.startswith(prefix))
        return _clean(next(tagged, None), NAME)

    def _organization(self, body: Mapping[str, Any]) -> str | None:
        if self.organization_field is None:
            return None
        return _option(value_at(body, f"issue.fields.{self.organization_field}"))[0]

    def _created_priority(self, body: Mapping[str, Any]) -> str | None:
        """The issue's priority; absent, ``default_priority``, else none (the policy's)."""
        priority = _clean(value_at(body, "issue.fields.priority.name"), NAME)
        if priority is not None:
            return self._rename(priority, text_at(body, "issue.fields.priority.id"))
        return self.default_priority

    def _rename(self, priority: str, ident: str | None = None) -> str:
        renamed = (self.priorities[k] for k in _keys(priority, ident) if k in self.priorities)
        return next(renamed, priority)


def _role(body: Mapping[str, Any], author: Mapping[str, Any]) -> AuthorRole | None:
    """Who wrote a comment, as far as the payload says: the reporter (when it names one), a
    portal customer, an app; an Atlassian account is anyone (an agent, or the requester on an
    internal desk: the core compares the author with the ticket's requester)."""
    reporter = text_at(body, "issue.fields.reporter.accountId")
    if reporter is not None and reporter == text_at(author, "accountId"):
        return AuthorRole.REQUESTER
    return _ROLES.get(text_at(author, "accountType") or "")


def _changes(body: Mapping[str, Any]) -> list[Any]:
    items = value_at(body, "changelog.items")
    return items if isinstance(items, list) else []


def _field(item: Mapping[str, Any]) -> str:
    """Which field a changelog item changed: its ``fieldId`` (``field`` is the field's name in
    the site's language, "Статус" on a Russian site), else its folded ``field``."""
    return fold(text_at(item, "fieldId") or text_at(item, "field") or "")


def _labels(body: Mapping[str, Any]) -> list[str] | None:
    """``fields.labels``; None when the payload does not carry them (a comment's reduced issue)."""
    labels = value_at(body, "issue.fields.labels")
    if not isinstance(labels, list):
        return None
    return [label for label in labels if isinstance(label, str)]


def _label_changes(items: Iterable[Any]) -> tuple[list[str] | None, list[str] | None]:
    """Labels added and removed by the ``labels`` items (space-separated fromString/toString)."""
    added: list[str] = []
    removed: list[str] = []
    for item in items:
        if not isinstance(item, Mapping) or _field(item) != "labels":
            continue
        before = (text_at(item, "fromString") or "").split()
        after = (text_at(item, "toString") or "").split()
        added += [label for label in after if label not in before]
        removed += [label for label in before if label not in after]
    return added or None, removed or None


def _tags(labels: list[str] | None) -> tuple[str, ...] | None:
    """Labels as the event's tags: cleaned, each once, at most 200."""
    if labels is None:
        return None
    cleaned = (_clean(label, TAG) for label in labels)
    return tuple(dict.fromkeys(tag for tag in cleaned if tag))[:TAGS]


def _person(value: Any) -> str | None:
    """A user as people know them: the display name, else the account id."""
    if not isinstance(value, Mapping):
        return None
    return _clean(value.get("displayName"), NAME) or _clean(value.get("accountId"), NAME)


def _option(value: Any) -> tuple[str | None, str | None]:
    """(name, id) of a custom field's value: a text, an option (``value``), a group
    (``name``, ``groupId``), a team (``name`` or ``title``), an organization; a list's first."""
    first = value[0] if isinstance(value, list) and value else value
    if isinstance(first, Mapping):
        name = next((first[k] for k in ("name", "value", "title") if first.get(k)), None)
        ident = next((first[k] for k in ("id", "groupId") if first.get(k)), None)
        return _clean(name, NAME), _clean(ident, NAME)
    return _clean(first, NAME), None


def _clean(value: Any, limit: int) -> str | None:
    """Portal text as an event can hold it: each run of control characters (NUL, newline,
    escape...) and white space one space, stripped, cut at ``limit``; None when nothing is left."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return one_line(str(value), limit)


def _keys(*names: str | None) -> list[str]:
    """The folded names or ids to look a value up by, in order."""
    return [fold(name) for name in names if name]


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
