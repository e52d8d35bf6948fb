"""Zendesk: event-subscribed ticket webhooks (``zen:event-type:ticket.*``) to canonical events.

Subscribe the webhook to the event types below; any other type is refused (422), never dropped.
The payload shapes are Zendesk's "Ticket events" reference
(developer.zendesk.com/api-reference/webhooks/event-types/ticket-events/); the setup guide is
docs/portals/zendesk.md.

=====================================  ===========================================================
``type`` after ``zen:event-type:``     canonical event
=====================================  ===========================================================
``ticket.created``                     ``created``: priority ``detail.priority`` (null, as on an
                                       e-mail ticket: the setting's ``default_priority``, else none
                                       and the policy decides), requester ``detail.requester_id``,
                                       customer, plan and time zone as the settings look them up
                                       (default: customer ``detail.organization_id``), tier from
                                       ``detail.group_id``
``ticket.comment_added``               ``event.comment.author.is_staff``: ``agent_replied`` (role
                                       agent), public = ``event.comment.is_public``; else
                                       ``customer_replied``, role requester when the author is
                                       ``detail.requester_id``, else customer. Author
                                       ``event.comment.author.id``
``ticket.status_changed``              ``event.current``: solved -> ``resolved``, closed ->
                                       ``closed``, solved/closed -> new/open ``reopened``, else
                                       ``status_changed``; a mapped ``detail.custom_status`` wins
``ticket.custom_status_changed``       the same, for the custom status id ``event.current`` when
                                       ``statuses`` maps it, else for its category
                                       ``detail.status``
``ticket.priority_changed``            ``priority_changed`` to ``event.current``
``ticket.group_assignment_changed``    ``assigned``, group and tier from the group id
                                       ``event.current``
``ticket.agent_assignment_changed``    ``assigned`` (no tier), assignee ``event.current``
``ticket.tags_changed``                ``updated``: ``tags_added`` / ``tags_removed`` from
                                       ``event.tags_added`` / ``event.tags_removed`` (neither:
                                       refused)
``ticket.subject_changed``             ``updated``: subject ``event.current``
``ticket.type_changed``                ``updated``: ticket type ``event.current``, lower case
``ticket.requester_changed``           ``updated``: requester id ``event.current``
=====================================  ===========================================================

An ``updated`` event moves no SLA clock: the ticket keeps its context. A field the change
cleared (no type any more) is left out, so the ticket keeps the value it had. Other ticket event
types (organization, brand, form, custom field, merge, deletion, spam, a comment made private...)
are refused: the organization is the customer the SLA was chosen by, and the rest the event
cannot hold.

Every event also carries the ticket's context from ``detail``: subject, group (``group_id``),
assignee (``assignee_id``), every tag (``tags``), ticket type (``type``, lower case), channel
(``via.channel``, see `CHANNELS`) and the requester's id; control characters in them become
spaces. Zendesk's payloads hold ids, not names, for groups, assignees and organizations.

A move from solved to pending or on-hold stays a ``status_changed`` with that status (``reopened``
means open); the SLA core counts any move out of solved as a reopening.

Every event: ticket id ``detail.id`` (else the ``zen:ticket:<id>`` of ``subject``); occurred at the
top-level ``time`` (else ``detail.updated_at``); event id the top-level ``id``, which Zendesk
gives each event and repeats on every retry of it (else the ``x-zendesk-webhook-invocation-id``
header): a retry is one event, two changes are two even when their bodies are otherwise alike.

Priorities pass through as Zendesk names them (``URGENT``): the policy's aliases resolve them,
case-insensitively. Trigger- or automation-connected webhooks send a body of our own making with
no event type; they are refused here (make such a trigger post canonical events to ``/v1/events``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

import structlog

from shared import integrations
from shared.events import AuthorRole, Event, EventType, Status
from shared.names import fold
from worker.adapters.base import Unmappable, WebhookRequest
from worker.adapters.payload import (
    ID,
    SUBJECT,
    WORD,
    build_event,
    clean_tags,
    iso_time,
    json_object,
    one_line,
    present,
    status_fields,
    tagged_value,
    text_at,
    timezone_named,
    value_at,
)
from worker.adapters.signatures import DEFAULT_SKEW, verify_zendesk

log = structlog.get_logger("escalera.ingest")

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


def _channels(**groups: tuple[str, ...]) -> Mapping[str, str]:
    return MappingProxyType({via: channel for channel, vias in groups.items() for via in vias})


# Zendesk's via types (and the ids it may send instead), from its "Via types reference"
# (developer.zendesk.com/documentation/ticketing/reference-guides/via-types/), to the channel a
# support lead would say; any other via type passes through as Zendesk names it (rule, merge...).
CHANNELS = _channels(
    email=("mail", "email", "4"),
    web=("web", "web_form", "web_widget", "helpcenter", "dropbox", "0", "17"),
    phone=("voice", "phone", "voicemail", "phone_call_inbound", "phone_call_outbound",
           "api_phone_call_inbound", "api_phone_call_outbound", "api_voicemail", "33", "34", "35"),
    chat=("chat", "chat_transcript", "chat_offline_message", "native_messaging", "29"),
    api=("api", "web_service", "5"),
    mobile=("mobile", "mobile_sdk", "iphone", "android"),
    sms=("sms", "text_message", "twilio_sms", "messagebird_sms", "37"),
    social=("twitter", "twitter_dm", "twitter_favorite", "facebook", "facebook_post",
            "facebook_message", "instagram_dm", "whatsapp", "wechat", "line", "telegram", "viber",
            "kakaotalk", "apple_business_chat", "google_business_messages",
            "sunshine_conversations_facebook_messenger", "sunshine_conversations_twitter_dm",
            "23", "26", "30", "38"),
)  # fmt: skip
# The Event's limits (shared/events.py): ids and names, subjects, tags, short words.
_ORGANIZATION = integrations.Lookup.model_validate({"from": "organization"})

Draft = dict[str, Any]


class ZendeskAdapter:
    """Zendesk ticket events; ``statuses`` add to or override `DEFAULT_STATUSES` (names folded).

    Status keys are Zendesk's status names or custom status ids. ``priorities`` renames Zendesk
    priorities (others pass through), ``tiers`` gives the support tier of a group id, and
    ``default_priority`` is used for a ticket created without priority (without one, the created
    event carries none and the policy gives it). ``customer``, ``plan`` and ``timezone`` say where
    those come from (organization or a tag prefix).
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
            customer=section.customer,
            plan=section.plan,
            timezone=section.timezone,
        )

    def __init__(
        self,
        *,
        statuses: Mapping[str, Status | str] | None = None,
        priorities: Mapping[str, str] | None = None,
        tiers: Mapping[str, int] | None = None,
        default_priority: str | None = None,
        customer: integrations.Lookup | None = None,
        plan: integrations.Lookup | None = None,
        timezone: integrations.Lookup | None = None,
        skew: timedelta = DEFAULT_SKEW,
    ) -> None:
        self.statuses = {
            **DEFAULT_STATUSES,
            **{fold(k): Status(v) for k, v in (statuses or {}).items()},
        }
        self.priorities = {fold(k): v for k, v in (priorities or {}).items()}
        self.tiers = {fold(str(k)): v for k, v in (tiers or {}).items()}
        self.default_priority = default_priority
        self.lookups = {
            "customer": customer or _ORGANIZATION,
            "plan": plan,
            "customer_timezone": timezone,
        }
        if any(found is not None and found.source == "field" for found in self.lookups.values()):
            raise ValueError(integrations.Zendesk.NO_CUSTOM_FIELDS)
        self.skew = skew
        self._handlers: dict[str, Callable[[Mapping[str, Any]], Draft]] = {
            "ticket.created": self._created,
            "ticket.comment_added": self._comment,
            "ticket.status_changed": self._status_changed,
            "ticket.custom_status_changed": self._custom_status_changed,
            "ticket.priority_changed": self._priority_changed,
            "ticket.group_assignment_changed": self._group_changed,
            "ticket.agent_assignment_changed": self._agent_changed,
            "ticket.tags_changed": _tags_changed,
            "ticket.subject_changed": _subject_changed,
            "ticket.type_changed": _type_changed,
            "ticket.requester_changed": _requester_changed,
        }

    def verify(self, request: WebhookRequest, secret: str) -> None:
        """Check Zendesk's signature and that its timestamp is within ``skew`` of receipt."""
        verify_zendesk(request.body, request.headers, secret, request.received_at, self.skew)

    def to_events(self, payload: Any, request: WebhookRequest) -> list[Event]:
        """The canonical event of one Zendesk ticket event, with the ticket's context."""
        body = json_object(payload)
        draft = self._handler(body)(body)
        return [self._event(body, draft, _event_id(body, request))]

    def event_of(self, body: Mapping[str, Any], event_id: str) -> Event:
        """The canonical event of one ticket event in the webhook's shape (``type``, ``time``,
        ``detail``, ``event``), under ``event_id``, mapped exactly as its delivery would be:
        `escalera sync` rebuilds such bodies from ticket audits (worker/sync/zendesk.py)."""
        return self._event(body, self._handler(body)(body), event_id)

    def _event(self, body: Mapping[str, Any], draft: Draft, event_id: str) -> Event:
        return build_event(
            {
                **_context(body),
                **draft,
                "event_id": event_id,
                "source": self.source,
                "ticket_id": _ticket_id(body),
                "occurred_at": _occurred_at(body),
            }
        )

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
        priority = text_at(body, "detail.priority")
        return present(
            type=EventType.CREATED,
            priority=self._rename(priority) if priority else self.default_priority,
            requester=_id_at(body, "detail.requester_id"),
            tier=self._tier(text_at(body, "detail.group_id")),
            **self._looked_up(body),
        )

    def _comment(self, body: Mapping[str, Any]) -> Draft:
        author = _id_at(body, "event.comment.author.id")
        if _flag(body, "event.comment.author.is_staff"):
            return present(
                type=EventType.AGENT_REPLIED,
                public=_flag(body, "event.comment.is_public"),
                author=author,
                author_role=AuthorRole.AGENT,
            )
        asked = author is not None and author == _id_at(body, "detail.requester_id")
        return present(
            type=EventType.CUSTOMER_REPLIED,
            author=author,
            author_role=AuthorRole.REQUESTER if asked else AuthorRole.CUSTOMER,
        )

    def _status_changed(self, body: Mapping[str, Any]) -> Draft:
        current = self._custom_status(body, "detail.custom_status") or self._status(
            text_at(body, "event.current"), "event.current"
        )
        previous = self.statuses.get(fold(text_at(body, "event.previous") or ""))
        return status_fields(previous, current)

    def _custom_status_changed(self, body: Mapping[str, Any]) -> Draft:
        current = self._custom_status(body, "event.current")
        if current is None:
            category = text_at(body, "detail.status")
            current = self.statuses.get(fold(category or ""))
            if current is None:
                custom = text_at(body, "event.current")
                raise Unmappable(
                    f"custom status {custom!r} is not mapped, nor its category {category!r}: add "
                    "the custom status id to `statuses`",
                    field="event.current",
                )
        previous = self.statuses.get(fold(text_at(body, "event.previous") or ""))
        return status_fields(previous, current)

    def _priority_changed(self, body: Mapping[str, Any]) -> Draft:
        current = text_at(body, "event.current")
        if current is None:
            raise Unmappable("no priority to change to (was it cleared?)", field="event.current")
        return {"type": EventType.PRIORITY_CHANGED, "priority": self._rename(current)}

    def _group_changed(self, body: Mapping[str, Any]) -> Draft:
        group = _id_at(body, "event.current")
        return present(type=EventType.ASSIGNED, group=group, tier=self._tier(group))

    def _agent_changed(self, body: Mapping[str, Any]) -> Draft:
        return present(type=EventType.ASSIGNED, assignee=_id_at(body, "event.current"))

    def _custom_status(self, body: Mapping[str, Any], path: str) -> Status | None:
        """The status a custom status id at ``path`` is mapped to, if ``statuses`` maps it."""
        custom = text_at(body, path)
        return self.statuses.get(fold(custom)) if custom else None

    def _rename(self, priority: str) -> str:
        return self.priorities.get(fold(priority), priority)

    def _tier(self, group: str | None) -> int | None:
        return self.tiers.get(fold(group)) if group else None

    def _status(self, value: str | None, field: str) -> Status:
        status = self.statuses.get(fold(value)) if value else None
        if status is None:
            known = ", ".join(sorted(self.statuses))
            raise Unmappable(
                f"status {value!r} is not mapped; known: {known} (extend `statuses`)", field=field
            )
        return status

    def _looked_up(self, body: Mapping[str, Any]) -> Draft:
        """Customer, plan and time zone where the settings say they are (None: not found)."""
        found = {field: self._look_up(body, lookup) for field, lookup in self.lookups.items()}
        zone = timezone_named(
            found["customer_timezone"], source=self.source, ticket_id=text_at(body, "detail.id")
        )
        return {**found, "customer_timezone": zone}

    def _look_up(self, body: Mapping[str, Any], lookup: integrations.Lookup | None) -> str | None:
        """The value ``lookup`` finds: the organization's id, or the rest of a prefixed tag."""
        if lookup is None:
            return None
        if lookup.source == "organization":
            return _id_at(body, "detail.organization_id")
        return tagged_value(_tag_list(body, "detail.tags") or (), lookup.prefix or "")


def _tags_changed(body: Mapping[str, Any]) -> Draft:
    """`updated` with the tags added and removed (the context adds every tag the ticket has)."""
    added, removed = _tag_list(body, "event.tags_added"), _tag_list(body, "event.tags_removed")
    if added is None and removed is None:
        raise Unmappable(
            "no tags_added nor tags_removed: which tags changed?", field="event.tags_added"
        )
    return present(type=EventType.UPDATED, tags_added=added, tags_removed=removed)


def _subject_changed(body: Mapping[str, Any]) -> Draft:
    """`updated` with the new subject, ``event.current`` (else the context's)."""
    return present(
        type=EventType.UPDATED, subject=one_line(text_at(body, "event.current"), SUBJECT)
    )


def _type_changed(body: Mapping[str, Any]) -> Draft:
    """`updated` with the new ticket type, ``event.current`` in lower case (else the context's)."""
    return present(type=EventType.UPDATED, ticket_type=_kind(text_at(body, "event.current")))


def _requester_changed(body: Mapping[str, Any]) -> Draft:
    """`updated` naming the new requester, ``event.current`` (else the context's): replies are
    judged against the requester a ticket's events named last."""
    return present(type=EventType.UPDATED, requester_id=_id_at(body, "event.current"))


def _context(body: Mapping[str, Any]) -> Draft:
    """The ticket as ``detail`` shows it; absent or blank fields are left out."""
    return present(
        subject=one_line(text_at(body, "detail.subject"), SUBJECT),
        group=_id_at(body, "detail.group_id"),
        assignee=_id_at(body, "detail.assignee_id"),
        tags=_tag_list(body, "detail.tags"),
        ticket_type=_kind(text_at(body, "detail.type")),
        channel=_channel(text_at(body, "detail.via.channel")),
        requester_id=_id_at(body, "detail.requester_id"),
    )


def _channel(via: str | None) -> str | None:
    if via is None:
        return None
    return one_line(CHANNELS.get(via.lower(), via.lower()), WORD)


def _kind(ticket_type: str | None) -> str | None:
    """Zendesk's ticket type (``INCIDENT``) as the event keeps it (``incident``)."""
    return one_line(ticket_type.lower() if ticket_type else None, WORD)


def _tag_list(body: Mapping[str, Any], path: str) -> tuple[str, ...] | None:
    """Every tag at ``path`` (a list; a space-separated string is split), each once, cleaned;
    None when there is no list there."""
    value = value_at(body, path)
    if isinstance(value, str):
        value = value.split()
    if not isinstance(value, list):
        return None
    return clean_tags(value)


def _id_at(body: Mapping[str, Any], path: str) -> str | None:
    return one_line(text_at(body, path), ID)


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
