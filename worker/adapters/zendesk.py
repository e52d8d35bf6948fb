"""Zendesk: event-subscribed ticket webhooks (``zen:event-type:ticket.*``) to canonical events.

Subscribe the webhook to the event types below; any other type is refused (422), never dropped.

=====================================  ===========================================================
``type`` after ``zen:event-type:``     canonical event
=====================================  ===========================================================
``ticket.created``                     ``created``: priority ``detail.priority``, customer
                                       ``detail.organization_id``, requester
                                       ``detail.requester_id``, tier from ``detail.group_id``
``ticket.comment_added``               ``event.comment.author.is_staff``: ``agent_replied``, public
                                       = ``event.comment.is_public``; else ``customer_replied``
``ticket.status_changed``              ``event.current``: solved -> ``resolved``, closed ->
                                       ``closed``, solved/closed -> new/open ``reopened``, else
                                       ``status_changed``
``ticket.priority_changed``            ``priority_changed`` to ``event.current``
``ticket.group_assignment_changed``    ``assigned``, tier from the group id ``event.current``
``ticket.agent_assignment_changed``    ``assigned`` (no tier)
=====================================  ===========================================================

A move from solved to pending or on-hold stays a ``status_changed`` with that status (``reopened``
means open); the SLA core counts any move out of solved as a reopening.

Every event: ticket id ``detail.id`` (else the ``zen:ticket:<id>`` of ``subject``); occurred at the
top-level ``time`` (else ``detail.updated_at``); event id the top-level ``id``, unique per event
and the same on every retry (else the ``x-zendesk-webhook-invocation-id`` header).

Priorities pass through as Zendesk names them (``URGENT``): the policy's aliases resolve them,
case-insensitively. Trigger- or automation-connected webhooks send a body of our own making with
no event type; they are refused here (make such a trigger post canonical events to ``/v1/events``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

from shared import integrations
from shared.events import Event, EventType, Status
from shared.names import fold
from worker.adapters.base import Unmappable, WebhookRequest
from worker.adapters.payload import (
    build_event,
    iso_time,
    json_object,
    status_fields,
    text_at,
    value_at,
)
from worker.adapters.signatures import DEFAULT_SKEW, verify_zendesk

TYPE_PREFIX = "zen:event-type:"
INVOCATION_ID = "x-zendesk-webhook-invocation-id"
DEFAULT_STATUSES: Mapping[str, Status] = MappingProxyType(
    {
        "new": Status.NEW,
        "open": Status.OPEN,
        "pending": Status.PENDING,
        "hold": Status.ON_HOLD,
        "on_hold": Status.ON_HOLD,
        "solved": Status.SOLVED,
        "closed": Status.CLOSED,
    }
)

Draft = dict[str, Any]


class ZendeskAdapter:
    """Zendesk ticket events; ``statuses`` add to or override `DEFAULT_STATUSES` (names folded).

    ``priorities`` renames Zendesk priorities (others pass through), ``tiers`` gives the support
    tier of a group id, and ``default_priority`` is used for a ticket created without priority
    (Zendesk allows it); without one such a ticket is refused.
    """

    source = "zendesk"

    @classmethod
    def from_settings(cls, section: integrations.Zendesk | None) -> ZendeskAdapter:
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
        skew: timedelta = DEFAULT_SKEW,
    ) -> None:
        self.statuses = {
            **DEFAULT_STATUSES,
            **{fold(k): Status(v) for k, v in (statuses or {}).items()},
        }
        self.priorities = {fold(k): v for k, v in (priorities or {}).items()}
        self.tiers = {str(k): v for k, v in (tiers or {}).items()}
        self.default_priority = default_priority
        self.skew = skew
        self._handlers: dict[str, Callable[[Mapping[str, Any]], Draft]] = {
            "ticket.created": self._created,
            "ticket.comment_added": self._comment,
            "ticket.status_changed": self._status_changed,
            "ticket.priority_changed": self._priority_changed,
            "ticket.group_assignment_changed": self._group_changed,
            "ticket.agent_assignment_changed": self._agent_changed,
        }

    def verify(self, request: WebhookRequest, secret: str) -> None:
        """Check Zendesk's signature and that its timestamp is within ``skew`` of receipt."""
        verify_zendesk(request.body, request.headers, secret, request.received_at, self.skew)

    def to_events(self, payload: Any, request: WebhookRequest) -> list[Event]:
        """The canonical event of one Zendesk ticket event."""
        body = json_object(payload)
        draft = self._handler(body)(body)
        return [
            build_event(
                {
                    **draft,
                    "event_id": _event_id(body, request),
                    "source": self.source,
                    "ticket_id": _ticket_id(body),
                    "occurred_at": _occurred_at(body),
                }
            )
        ]

    def _handler(self, body: Mapping[str, Any]) -> Callable[[Mapping[str, Any]], Draft]:
        kind = text_at(body, "type")
        if kind is None:
            raise Unmappable(
                "no event type: not an event-subscribed Zendesk webhook (trigger bodies carry "
                "none; have such triggers post canonical events to /v1/events)",
                field="type",
            )
        handler = self._handlers.get(kind.removeprefix(TYPE_PREFIX))
        if handler is None:
            known = ", ".join(TYPE_PREFIX + name for name in self._handlers)
            raise Unmappable(f"unknown event type {kind!r}; known: {known}", field="type")
        return handler

    def _created(self, body: Mapping[str, Any]) -> Draft:
        return {
            "type": EventType.CREATED,
            "priority": self._priority(text_at(body, "detail.priority"), "detail.priority"),
            "customer": text_at(body, "detail.organization_id"),
            "requester": text_at(body, "detail.requester_id"),
            "tier": self.tiers.get(text_at(body, "detail.group_id") or ""),
        }

    def _comment(self, body: Mapping[str, Any]) -> Draft:
        if not _flag(body, "event.comment.author.is_staff"):
            return {"type": EventType.CUSTOMER_REPLIED}
        return {"type": EventType.AGENT_REPLIED, "public": _flag(body, "event.comment.is_public")}

    def _status_changed(self, body: Mapping[str, Any]) -> Draft:
        current = self._status(text_at(body, "event.current"), "event.current")
        previous = self.statuses.get(fold(text_at(body, "event.previous") or ""))
        return status_fields(previous, current)

    def _priority_changed(self, body: Mapping[str, Any]) -> Draft:
        current = text_at(body, "event.current")
        if current is None:
            raise Unmappable("no priority to change to (was it cleared?)", field="event.current")
        return {"type": EventType.PRIORITY_CHANGED, "priority": self._rename(current)}

    def _group_changed(self, body: Mapping[str, Any]) -> Draft:
        group = text_at(body, "event.current")
        return {"type": EventType.ASSIGNED, "tier": self.tiers.get(group or "")}

    def _agent_changed(self, body: Mapping[str, Any]) -> Draft:
        return {"type": EventType.ASSIGNED}

    def _priority(self, value: str | None, field: str) -> str:
        if value is not None:
            return self._rename(value)
        if self.default_priority is not None:
            return self.default_priority
        raise Unmappable("the ticket has no priority and no default_priority is set", field=field)

    def _rename(self, priority: str) -> str:
        return self.priorities.get(fold(priority), priority)

    def _status(self, value: str | None, field: str) -> Status:
        status = self.statuses.get(fold(value)) if value else None
        if status is None:
            known = ", ".join(sorted(self.statuses))
            raise Unmappable(
                f"status {value!r} is not mapped; known: {known} (extend `statuses`)", field=field
            )
        return status


def _ticket_id(body: Mapping[str, Any]) -> str:
    ticket = text_at(body, "detail.id")
    if ticket is None:
        subject = text_at(body, "subject") or ""
        ticket = subject.removeprefix("zen:ticket:") if subject.startswith("zen:ticket:") else None
    if not ticket:
        raise Unmappable("missing ticket id (nor `subject` zen:ticket:<id>)", field="detail.id")
    return ticket


def _occurred_at(body: Mapping[str, Any]) -> datetime:
    field = "time" if text_at(body, "time") is not None else "detail.updated_at"
    value = text_at(body, field)
    if value is None:
        raise Unmappable("missing event time (nor detail.updated_at)", field="time")
    return iso_time(value, field)


def _event_id(body: Mapping[str, Any], request: WebhookRequest) -> str:
    event_id = text_at(body, "id") or (request.headers.get(INVOCATION_ID) or "").strip()
    if not event_id:
        raise Unmappable(f"missing event id (nor an {INVOCATION_ID} header)", field="id")
    return event_id


def _flag(body: Mapping[str, Any], path: str) -> bool:
    value = value_at(body, path)
    if not isinstance(value, bool):
        raise Unmappable("missing or not true/false", field=path)
    return value
