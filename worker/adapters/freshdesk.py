"""Freshdesk: automation-rule webhooks ("Trigger Webhook", JSON, Advanced content) to events.

Freshdesk has no webhook schema: it sends the body the rule's author writes. Escalera reads this
one (the keys are ours, the values Freshdesk placeholders)::

    {"ticket_id": "{{ticket.id}}", "triggered_event": "{{triggered_event}}",
     "status": "{{ticket.status}}", "priority": "{{ticket.priority}}",
     "requester_email": "{{ticket.requester.email}}", "company": "{{ticket.company.name}}",
     "group": "{{ticket.group.name}}",
     "latest_public_comment": "{{ticket.latest_public_comment}}",
     "latest_private_comment": "{{ticket.latest_private_comment}}"}

plus, in rules on events that ``{{triggered_event}}`` does not describe ("Reply is sent",
"Customer replies", "Group is updated"), a literal ``"event"``: ``"agent_replied"``,
``"customer_replied"`` or ``"assigned"``, which takes precedence over ``triggered_event``.

===============================  =================================================================
what happened                    canonical event
===============================  =================================================================
``{ticket_action:created}``      ``created``: priority ``priority``, requester ``requester_email``,
                                 customer ``company``, tier of ``group``
``{status:{from:F,to:T}}``       status ``T`` (its code, else the ``status`` name): Resolved ->
                                 ``resolved``, Closed -> ``closed``, Resolved/Closed -> Open
                                 ``reopened``, else ``status_changed``
``{priority:{from:F,to:T}}``     ``priority_changed`` to the ``priority`` name (else code ``T``)
``{note_type:public|private}``   ``agent_replied``, public or not (only agents add notes)
``"event": "agent_replied"``     ``agent_replied`` (a reply is public)
``"event": "customer_replied"``  ``customer_replied``
``"event": "assigned"``          ``assigned``, tier of ``group``
===============================  =================================================================

A move from Resolved or Closed to Pending or another waiting status stays a ``status_changed``
with that status (``reopened`` means open); the SLA core counts it as a reopening all the same.

Time: Freshdesk renders no placeholder for "now". An ``occurred_at`` key (ISO 8601 with an offset)
is used when present; otherwise the time the request was received, unless the adapter is built
with ``require_timestamp=True``. A delivery that only succeeds on a retry (Freshdesk retries 5, 35
and 95 minutes later) is then dated when it arrived.

Event ids: Freshdesk sends no delivery id, so an event's id is the ticket id and a hash of the
ticket id, ``triggered_event`` and the whole body: a retry of a delivery gets the same id. Keep
the latest comments in the body, so that two replies in a row do not look like one delivery.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, NamedTuple, TypeVar

from shared import integrations
from shared.events import Event, EventType, Status
from shared.names import fold
from worker.adapters.base import Unmappable, WebhookRequest
from worker.adapters.payload import build_event, iso_time, json_object, status_fields, text_at
from worker.adapters.signatures import verify_shared_secret

# Codes 2-5 are Freshdesk's built-in statuses; custom statuses get account-specific codes from 6
# on, so they are mapped by name. "Waiting on Customer" and "Waiting on Third Party" are the names
# Freshdesk suggests for its first custom statuses.
DEFAULT_STATUSES: Mapping[str, Status] = MappingProxyType(
    {
        "2": Status.OPEN,
        "3": Status.PENDING,
        "4": Status.SOLVED,
        "5": Status.CLOSED,
        "open": Status.OPEN,
        "pending": Status.PENDING,
        "resolved": Status.SOLVED,
        "closed": Status.CLOSED,
        "waiting_on_customer": Status.PENDING,
        "waiting_on_third_party": Status.ON_HOLD,
    }
)
PRIORITY_CODES: Mapping[str, str] = MappingProxyType(
    {"1": "Low", "2": "Medium", "3": "High", "4": "Urgent"}
)
_TRIGGERED = re.compile(
    r"\{\s*(?P<name>\w+)\s*:\s*"
    r"(?:\{\s*from\s*:\s*(?P<before>[^,{}]*?)\s*,\s*to\s*:\s*(?P<after>[^,{}]*?)\s*\}"
    r"|(?P<value>[^{}]*?))\s*\}"
)

Draft = dict[str, Any]
H = TypeVar("H")


class Triggered(NamedTuple):
    """``{{triggered_event}}`` as rendered: ``{note_type:private}``, ``{status:{from:4,to:6}}``."""

    name: str
    value: str | None = None
    before: str | None = None
    after: str | None = None

    @property
    def key(self) -> str:
        """What the rule fired on: ``status``, ``note_type:private``, ``ticket_action:created``."""
        return f"{self.name}:{self.value}" if self.value else self.name


class FreshdeskAdapter:
    """Freshdesk rule webhooks; ``statuses`` add to or override `DEFAULT_STATUSES`.

    Status keys are codes (``"6"``) or names (folded: ``"Waiting on Customer"``).
    ``priorities`` renames priorities (others pass through), ``tiers`` gives the support tier
    of a group name, ``default_priority`` serves a ticket created without one.
    """

    source = "freshdesk"

    @classmethod
    def from_settings(cls, section: integrations.Freshdesk | None) -> FreshdeskAdapter:
        """The adapter a desk's integration settings describe (None: the defaults)."""
        if section is None:
            return cls()
        return cls(
            statuses=section.statuses,
            priorities=section.priorities,
            tiers=section.groups,
            default_priority=section.default_priority,
        )

    def __init__(
        self,
        *,
        statuses: Mapping[str, Status | str] | None = None,
        priorities: Mapping[str, str] | None = None,
        tiers: Mapping[str, int] | None = None,
        default_priority: str | None = None,
        require_timestamp: bool = False,
    ) -> None:
        overrides = {fold(k): Status(v) for k, v in (statuses or {}).items()}
        self.statuses = {**DEFAULT_STATUSES, **overrides}
        self.priorities = {fold(k): v for k, v in (priorities or {}).items()}
        self.tiers = {fold(k): v for k, v in (tiers or {}).items()}
        self.default_priority = default_priority
        self.require_timestamp = require_timestamp
        self._triggered: dict[str, Callable[[Mapping[str, Any], Triggered], Draft]] = {
            "ticket_action:created": self._created,
            "status": self._status_changed,
            "priority": self._priority_changed,
            "note_type:public": self._note,
            "note_type:private": self._note,
        }
        self._literal: dict[str, Callable[[Mapping[str, Any]], Draft]] = {
            "agent_replied": self._agent_replied,
            "customer_replied": self._customer_replied,
            "assigned": self._assigned,
        }

    def verify(self, request: WebhookRequest, secret: str) -> None:
        """Check the shared secret (Freshdesk cannot sign its requests)."""
        verify_shared_secret(request.headers, secret)

    def to_events(self, payload: Any, request: WebhookRequest) -> list[Event]:
        """The canonical event of one rule's webhook."""
        body = json_object(payload)
        ticket_id = _required(body, "ticket_id")
        draft = self._draft(body)
        fields = {
            **draft,
            "event_id": _event_id(ticket_id, body),
            "source": self.source,
            "ticket_id": ticket_id,
            "occurred_at": self._occurred_at(body, request),
        }
        return [build_event(fields)]

    def _draft(self, body: Mapping[str, Any]) -> Draft:
        literal = text_at(body, "event")
        if literal is not None:
            return _pick(self._literal, literal, "event")(body)
        triggered = _triggered(body)
        return _pick(self._triggered, triggered.key, "triggered_event")(body, triggered)

    def _created(self, body: Mapping[str, Any], _: Triggered) -> Draft:
        priority = text_at(body, "priority") or self.default_priority
        if priority is None:
            raise Unmappable("no priority, and no default_priority is set", field="priority")
        return {
            "type": EventType.CREATED,
            "priority": self._rename(priority),
            "requester": text_at(body, "requester_email"),
            "customer": text_at(body, "company"),
            "tier": self._tier(body),
        }

    def _status_changed(self, body: Mapping[str, Any], triggered: Triggered) -> Draft:
        name = text_at(body, "status")
        current = self.statuses.get(fold(triggered.after or "")) or self.statuses.get(
            fold(name or "")
        )
        if current is None:
            known = ", ".join(sorted(self.statuses))
            raise Unmappable(
                f"status {triggered.after} ({name!r}) is not mapped; known: {known} "
                "(extend `statuses`)",
                field="status",
            )
        return status_fields(self.statuses.get(fold(triggered.before or "")), current)

    def _priority_changed(self, body: Mapping[str, Any], triggered: Triggered) -> Draft:
        priority = text_at(body, "priority") or PRIORITY_CODES.get(triggered.after or "")
        if priority is None:
            raise Unmappable(f"no priority name for code {triggered.after!r}", field="priority")
        return {"type": EventType.PRIORITY_CHANGED, "priority": self._rename(priority)}

    def _note(self, body: Mapping[str, Any], triggered: Triggered) -> Draft:
        return {"type": EventType.AGENT_REPLIED, "public": triggered.value == "public"}

    def _agent_replied(self, body: Mapping[str, Any]) -> Draft:
        return {"type": EventType.AGENT_REPLIED, "public": True}

    def _customer_replied(self, body: Mapping[str, Any]) -> Draft:
        return {"type": EventType.CUSTOMER_REPLIED}

    def _assigned(self, body: Mapping[str, Any]) -> Draft:
        return {"type": EventType.ASSIGNED, "tier": self._tier(body)}

    def _tier(self, body: Mapping[str, Any]) -> int | None:
        return self.tiers.get(fold(text_at(body, "group") or ""))

    def _rename(self, priority: str) -> str:
        return self.priorities.get(fold(priority), priority)

    def _occurred_at(self, body: Mapping[str, Any], request: WebhookRequest) -> datetime:
        value = text_at(body, "occurred_at")
        if value is None and self.require_timestamp:
            raise Unmappable("missing (Freshdesk renders no time: add one)", field="occurred_at")
        if value is None:
            return request.received_at.astimezone(UTC)
        return iso_time(value, "occurred_at")


def _pick(handlers: Mapping[str, H], key: str, field: str) -> H:
    handler = handlers.get(key)
    if handler is None:
        raise Unmappable(f"unknown event {key!r}; known: {', '.join(handlers)}", field=field)
    return handler


def _triggered(body: Mapping[str, Any]) -> Triggered:
    rendered = _required(body, "triggered_event")
    match = _TRIGGERED.fullmatch(rendered)
    if match is None:
        raise Unmappable(f"cannot read {rendered!r}", field="triggered_event")
    name, value, before, after = match.group("name", "value", "before", "after")
    return Triggered(name, value or None, before, after)


def _event_id(ticket_id: str, body: Mapping[str, Any]) -> str:
    """Same delivery, same id: the ticket, what triggered the rule, and the whole body."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    parts = [ticket_id, text_at(body, "triggered_event") or "", canonical]
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return f"{ticket_id}:{digest[:32]}"


def _required(body: Mapping[str, Any], key: str) -> str:
    value = text_at(body, key)
    if value is None:
        raise Unmappable("missing or empty", field=key)
    return value
