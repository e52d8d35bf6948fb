"""Freshdesk: automation-rule webhooks ("Trigger Webhook", JSON, Advanced content) to events.

Freshdesk has no webhook schema: it sends the body the rule's author writes, each placeholder
rendered as text. Escalera reads this one (the keys are ours, the values Freshdesk placeholders;
docs/portals/freshdesk.md says which rules to create and where to paste it)::

    {"ticket_id": "{{ticket.id}}", "triggered_event": "{{triggered_event}}",
     "updated_at": "{{ticket.modified_on}}",
     "status": "{{ticket.status}}", "priority": "{{ticket.priority}}",
     "subject": "{{ticket.subject}}", "type": "{{ticket.ticket_type}}",
     "source_channel": "{{ticket.source}}", "tags": "{{ticket.tags}}",
     "group": "{{ticket.group.name}}", "agent": "{{ticket.agent.name}}",
     "agent_email": "{{ticket.agent.email}}",
     "requester_id": "{{ticket.requester.id}}", "requester_email": "{{ticket.requester.email}}",
     "performer_id": "{{event_performer.id}}", "performer_email": "{{event_performer.email}}",
     "company": "{{ticket.company.name}}",
     "latest_public_comment": "{{ticket.latest_public_comment}}",
     "latest_private_comment": "{{ticket.latest_private_comment}}"}

plus, in the two "Reply is sent" rules, a literal ``"event"``: ``"agent_replied"`` (performed by
an agent) or ``"customer_replied"`` (performed by the requester). Bodies written before, without
the newer keys, are read as before: every key but ``ticket_id`` (and ``triggered_event``, unless
the body has a literal ``"event"``) may be missing or render empty.

===============================  =================================================================
what happened                    canonical event
===============================  =================================================================
``{ticket_action:created}``      ``created``: priority ``priority`` (empty: ``default_priority``,
                                 else none and the policy decides), requester ``requester_email``,
                                 customer, plan and time zone as the settings look them up
                                 (default: customer ``company``), tier of ``group``
``{status:{from:F,to:T}}``       status ``T`` (its code, else the ``status`` name): Resolved ->
                                 ``resolved``, Closed -> ``closed``, Resolved/Closed -> Open
                                 ``reopened``, else ``status_changed``
``{priority:{from:F,to:T}}``     ``priority_changed`` to the ``priority`` name (else code ``T``)
``{group_id:{from:F,to:T}}``     ``assigned``, tier of ``group`` (else of the group id ``T``)
``{responder_id:{from:F,to:T}}`` ``assigned`` (the agent changed), tier of ``group``
``{note_type:public|private}``   a note: ``agent_replied``, public or not
``{reply_sent:sent}``            a reply: ``agent_replied`` or ``customer_replied``, see below
``"event": "agent_replied"``     a reply by an agent, whatever ``triggered_event`` says
``"event": "customer_replied"``  a reply by the requester's side
``"event": "assigned"``          ``assigned``, tier of ``group``
===============================  =================================================================

Who answered. Freshdesk tells a conversation's side in its REST API (``incoming``, ``private``,
``source``), but a rule's webhook renders the ticket, not the conversation: what reaches us is
``{{triggered_event}}`` (``{reply_sent:sent}`` for a reply from either side, a note as
``{note_type:...}``), the rule's own condition on who performed it (hence the literal
``"event"``), and the performer's placeholders. So: a reply or note whose performer is the
requester (``performer_id`` = ``requester_id``, or the e-mails) is the requester's
(``customer_replied``, role requester), whatever the rule claims: an agent can be a ticket's
requester. Otherwise ``performer_is_agent`` (``{{event_performer.is_agent}}``, if a body carries
it) decides, then the literal ``"event"``; notes are agents'. A ``{reply_sent:sent}`` with none
of these is refused (422): it could be the customer's. The author is ``performer_id`` (else
``performer_email``); every event carries ``requester_id`` (else ``requester_email``), which the
SLA core also compares replies against. E-mails used as ids are lower-cased.

Context, on every event that carries it (control characters and runs of spaces become one space,
text is cut to the event's limits): subject ``subject``, group ``group``, assignee ``agent``
(else ``agent_email``), every tag ``tags`` (``{{ticket.tags}}`` renders them joined by ``, ``; an
empty value means no tags), ticket type ``type`` in lower case, and channel ``source_channel``
(``{{ticket.source}}``, a name, or its code) as `CHANNELS` normalises it.

A move from Resolved or Closed to Pending or another waiting status stays a ``status_changed``
with that status (``reopened`` means open); the SLA core counts it as a reopening all the same.

Time: ``occurred_at`` (ISO 8601 with an offset) when a body carries it, else ``updated_at``:
``{{ticket.modified_on}}``, the ticket's last update (a reply sets it too), rendered by Rails as
``2025-03-04 09:00:12 UTC`` or with an offset ``+0530`` (ISO 8601 is read too). Without either,
the time the request was received, unless ``require_timestamp``; a retry (Freshdesk retries 5, 35
and 95 minutes later) is then dated when it arrived. An ``updated_at`` that cannot be read is
logged and still tells changes apart. Freshdesk renders a rule's body when the rule runs, a few
seconds after the change: a later change made before that is what the body shows.

Event ids. Freshdesk sends no delivery id; it renders a body once and sends the same bytes on
every retry. An event's id is the ticket id and a hash of ``triggered_event`` and the whole body.
With ``updated_at`` in it, two changes are two bodies, and a retry is the same body: one event,
dated when the change happened. That is why the documented body carries it: Freshdesk renders
no "now", but ``{{ticket.modified_on}}`` (``Helpdesk::TicketDrop#modified_on`` in Freshdesk's
own source, used in public integrations' rule bodies) is the time of the change. Two changes
within the same second, with the same body, remain one.

A body without any time cannot tell a retry from a repeat of the same change (Pending, Open,
Pending again with no comment in between renders the same bytes twice). For the changes of state
(status, priority, assignment) the time of receipt then joins the id: a repeat is never dropped,
and a retry of a change already applied changes nothing, the ticket being in that state already.
(Only a retry arriving after a later change would bring the earlier state back; Freshdesk
retries a delivery that failed, so that needs a stored delivery whose answer was lost. Dropping
every repeat of a state, as before, lost the common case instead.) Creations, replies and notes
keep the body's id: a reply must not count twice, so two replies with the same text and no
``updated_at`` count once.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, NamedTuple, TypeVar

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
from worker.adapters.signatures import verify_shared_secret

log = structlog.get_logger("escalera.ingest")

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
# Freshdesk's ticket sources (``{{ticket.source}}`` renders the name; the REST API's codes in
# parentheses) as channels: email, web, phone, chat as the other portals say them; an outbound
# e-mail is a ticket an agent started, kept apart so that a policy can tell it from a customer's.
CHANNELS: Mapping[str, str] = MappingProxyType(
    {
        **dict.fromkeys(("email", "1"), "email"),
        **dict.fromkeys(("portal", "2", "feedback_widget", "feedbackwidget", "9"), "web"),
        **dict.fromkeys(("forum", "4"), "web"),
        **dict.fromkeys(("phone", "3"), "phone"),
        **dict.fromkeys(("chat", "7", "bot", "12"), "chat"),
        **dict.fromkeys(("outbound_email", "10"), "outbound_email"),
        **dict.fromkeys(("twitter", "5", "facebook", "6", "whatsapp", "13"), "social"),
        **dict.fromkeys(("mobihelp", "8"), "mobile"),
        **dict.fromkeys(("ecommerce", "11"), "ecommerce"),
    }
)
_TRIGGERED = re.compile(
    r"\{\s*(?P<name>\w+)\s*:\s*"
    r"(?:\{\s*from\s*:\s*(?P<before>[^,{}]*?)\s*,\s*to\s*:\s*(?P<after>[^,{}]*?)\s*\}"
    r"|(?P<value>[^{}]*?))\s*\}"
)
# How Rails renders a time (``2025-03-04 09:00:12 UTC``, ``... +0530``), and ISO 8601.
_RENDERED_TIME = re.compile(
    r"(?P<day>\d{4}-\d{2}-\d{2})[ T](?P<time>\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*"
    r"(?P<zone>UTC|GMT|Z|[+-]\d{2}:?\d{2})"
)
_STATE_CHANGES = frozenset(
    {
        EventType.STATUS_CHANGED,
        EventType.RESOLVED,
        EventType.CLOSED,
        EventType.REOPENED,
        EventType.PRIORITY_CHANGED,
        EventType.ASSIGNED,
    }
)
# The Event's limits (shared/events.py): ids and names, subjects, tags, short words.
_COMPANY = integrations.Lookup.model_validate({"from": "organization"})

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

    Status keys are codes (``"6"``) or names (folded: ``"Waiting on Customer"``); they are
    looked up before the built-in ones.
    ``priorities`` renames priorities, by name or code (others pass through), ``tiers`` gives the
    support tier of a group, by name or id, ``default_priority`` serves a ticket created without
    one. ``customer``, ``plan`` and ``timezone`` say where those come from: the company
    (``company``), a key of the body (``field``: a custom field's placeholder the rule carries),
    or a tag's prefix.
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
        require_timestamp: bool = False,
    ) -> None:
        self.overrides = {fold(k): Status(v) for k, v in (statuses or {}).items()}
        self.statuses = {**DEFAULT_STATUSES, **self.overrides}
        self.priorities = {fold(k): v for k, v in (priorities or {}).items()}
        self.tiers = {fold(str(k)): v for k, v in (tiers or {}).items()}
        self.default_priority = default_priority
        self.lookups = {"customer": customer or _COMPANY, "plan": plan, "timezone": timezone}
        self.require_timestamp = require_timestamp
        self._triggered: dict[str, Callable[[Mapping[str, Any], Triggered], Draft]] = {
            "ticket_action:created": self._created,
            "status": self._status_changed,
            "priority": self._priority_changed,
            "group_id": self._group_changed,
            "responder_id": self._agent_changed,
            "note_type:public": self._note,
            "note_type:private": self._note,
            "reply_sent:sent": self._reply_sent,
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
        """The canonical event of one rule's webhook, with the ticket's context."""
        body = json_object(payload)
        ticket_id = _required(body, "ticket_id")
        mapped = self.mapped(body)
        fields = {
            **mapped,
            "event_id": _event_id(ticket_id, body, mapped["type"], request),
            "source": self.source,
            "ticket_id": ticket_id,
            "occurred_at": self._occurred_at(body, request),
        }
        return [build_event(fields)]

    def mapped(self, body: Mapping[str, Any]) -> Draft:
        """What a rule body tells, without its identity and time: the change (type, status,
        priority, tier, author...) and the ticket's context. `worker.sync.freshdesk` renders,
        from Freshdesk's REST API, the body a rule would have sent for a change the webhooks
        missed and maps it here, so both paths map a change alike. Raises `Unmappable`."""
        return {**_context(body), **self._draft(body)}

    def _draft(self, body: Mapping[str, Any]) -> Draft:
        literal = text_at(body, "event")
        if literal is not None:
            return _pick(self._literal, literal, "event")(body)
        triggered = _triggered(body)
        return _pick(self._triggered, triggered.key, "triggered_event")(body, triggered)

    # --- what happened ---------------------------------------------------------------------------

    def _created(self, body: Mapping[str, Any], _: Triggered) -> Draft:
        priority = text_at(body, "priority")
        return present(
            type=EventType.CREATED,
            priority=self._rename(priority) if priority else self.default_priority,
            requester=one_line(text_at(body, "requester_email"), ID),
            tier=self._tier(body),
            **self._looked_up(body),
        )

    def _status_changed(self, body: Mapping[str, Any], triggered: Triggered) -> Draft:
        name = text_at(body, "status")
        current = self._status(triggered.after, name)
        if current is None:
            known = ", ".join(sorted(self.statuses))
            raise Unmappable(
                f"status {triggered.after} ({name!r}) is not mapped; known: {known} "
                "(extend `statuses`)",
                field="status",
            )
        return status_fields(self._status(triggered.before, None), current)

    def _status(self, code: str | None, name: str | None) -> Status | None:
        """A status by code or name: the settings' first, then Freshdesk's built-in ones (a
        renamed built-in status keeps its code: "Fixed" with code 4 still resolves)."""
        keys = [fold(key) for key in (code, name) if key]
        for table in (self.overrides, DEFAULT_STATUSES):
            found = next((table[key] for key in keys if key in table), None)
            if found is not None:
                return found
        return None

    def _priority_changed(self, body: Mapping[str, Any], triggered: Triggered) -> Draft:
        code = triggered.after or ""
        priority = text_at(body, "priority") or PRIORITY_CODES.get(code)
        if priority is None:
            raise Unmappable(f"no priority name for code {triggered.after!r}", field="priority")
        return {"type": EventType.PRIORITY_CHANGED, "priority": self._rename(priority, code)}

    def _group_changed(self, body: Mapping[str, Any], triggered: Triggered) -> Draft:
        return present(type=EventType.ASSIGNED, tier=self._tier(body, triggered.after))

    def _agent_changed(self, body: Mapping[str, Any], _: Triggered) -> Draft:
        return present(type=EventType.ASSIGNED, tier=self._tier(body))

    def _assigned(self, body: Mapping[str, Any]) -> Draft:
        return present(type=EventType.ASSIGNED, tier=self._tier(body))

    def _note(self, body: Mapping[str, Any], triggered: Triggered) -> Draft:
        public = triggered.value == "public"
        return _reply(body, _role(body) or AuthorRole.AGENT, public=public)

    def _reply_sent(self, body: Mapping[str, Any], _: Triggered) -> Draft:
        role = _role(body)
        if role is None:
            raise Unmappable(
                "a reply, but not whose: {reply_sent:sent} renders alike for agents and "
                'customers; add "event": "agent_replied" or "customer_replied" to the rule '
                "for each performer, or performer_id and requester_id",
                field="triggered_event",
            )
        return _reply(body, role, public=True)

    def _agent_replied(self, body: Mapping[str, Any]) -> Draft:
        return _reply(body, _role(body) or AuthorRole.AGENT, public=True)

    def _customer_replied(self, body: Mapping[str, Any]) -> Draft:
        return _reply(body, _role(body) or AuthorRole.REQUESTER, public=True)

    # --- settings --------------------------------------------------------------------------------

    def _tier(self, body: Mapping[str, Any], group_id: str | None = None) -> int | None:
        """The tier of the ticket's group: by its name, else by its id."""
        for group in (text_at(body, "group"), group_id, text_at(body, "group_id")):
            tier = self.tiers.get(fold(group)) if group else None
            if tier is not None:
                return tier
        return None

    def _rename(self, priority: str, code: str = "") -> str:
        """The policy's name for a Freshdesk priority: by name, else by code, else as is."""
        return self.priorities.get(fold(priority)) or self.priorities.get(code) or priority

    def _looked_up(self, body: Mapping[str, Any]) -> Draft:
        """Customer, plan and time zone where the settings say they are (None: not found)."""
        zone = self._look_up(body, self.lookups["timezone"])
        return {
            "customer": self._look_up(body, self.lookups["customer"]),
            "plan": self._look_up(body, self.lookups["plan"]),
            "customer_timezone": timezone_named(
                zone, source=self.source, ticket_id=text_at(body, "ticket_id")
            ),
        }

    def _look_up(self, body: Mapping[str, Any], lookup: integrations.Lookup | None) -> str | None:
        """What ``lookup`` finds: the company's name, a key of the body, or a tag's rest."""
        if lookup is None:
            return None
        if lookup.source == "organization":
            return one_line(text_at(body, "company"), ID)
        if lookup.source == "field":
            return one_line(text_at(body, lookup.field or ""), ID)
        return tagged_value(_tags(body) or (), lookup.prefix or "")

    # --- time ------------------------------------------------------------------------------------

    def _occurred_at(self, body: Mapping[str, Any], request: WebhookRequest) -> datetime:
        value = text_at(body, "occurred_at")
        if value is not None:
            return iso_time(value, "occurred_at")
        updated = _updated_at(body)
        if updated is not None:
            return updated
        if self.require_timestamp:
            raise Unmappable(
                "missing (Freshdesk renders no time: add updated_at, {{ticket.modified_on}})",
                field="occurred_at",
            )
        return request.received_at.astimezone(UTC)


# --- who answered ---------------------------------------------------------------------------------


def _role(body: Mapping[str, Any]) -> AuthorRole | None:
    """Who wrote a reply or note, as far as Freshdesk tells: the requester if the performer is,
    else what ``performer_is_agent`` says; None when it tells nothing (the rule's claim decides)."""
    if _by_requester(body):
        return AuthorRole.REQUESTER
    is_agent = _truth(body, "performer_is_agent")
    if is_agent is None:
        return None
    return AuthorRole.AGENT if is_agent else AuthorRole.CUSTOMER


def _by_requester(body: Mapping[str, Any]) -> bool:
    """The performer is the ticket's requester, by id or by e-mail."""
    pairs = (("performer_id", "requester_id"), ("performer_email", "requester_email"))
    for performer, requester in pairs:
        who, asked = text_at(body, performer), text_at(body, requester)
        if who and asked and who.casefold() == asked.casefold():
            return True
    return False


def _reply(body: Mapping[str, Any], role: AuthorRole, *, public: bool) -> Draft:
    """An agent's reply or note (``public`` or not), or one from the customer's side."""
    author = one_line(text_at(body, "performer_id"), ID) or _email(body, "performer_email")
    if role is AuthorRole.AGENT:
        return present(type=EventType.AGENT_REPLIED, public=public, author=author, author_role=role)
    return present(type=EventType.CUSTOMER_REPLIED, author=author, author_role=role)


def _truth(body: Mapping[str, Any], key: str) -> bool | None:
    """A true/false a placeholder renders (``"true"``), or a JSON boolean; else None."""
    value = value_at(body, key)
    if isinstance(value, bool):
        return value
    text = value.strip().casefold() if isinstance(value, str) else ""
    return {"true": True, "false": False}.get(text)


# --- context --------------------------------------------------------------------------------------


def _context(body: Mapping[str, Any]) -> Draft:
    """The ticket as the body shows it; absent or blank fields are left out."""
    kind = text_at(body, "type")
    return present(
        subject=one_line(text_at(body, "subject"), SUBJECT),
        group=one_line(text_at(body, "group"), ID),
        assignee=one_line(text_at(body, "agent"), ID) or _email(body, "agent_email"),
        tags=_tags(body),
        ticket_type=one_line(kind.lower() if kind else None, WORD),
        channel=_channel(text_at(body, "source_channel")),
        requester_id=one_line(text_at(body, "requester_id"), ID) or _email(body, "requester_email"),
    )


def _channel(source: str | None) -> str | None:
    """A Freshdesk source (name or code) as a channel; an unknown one in its folded name."""
    if source is None:
        return None
    folded = fold(source)
    return one_line(CHANNELS.get(folded, folded), WORD)


def _tags(body: Mapping[str, Any]) -> tuple[str, ...] | None:
    """Every tag of ``tags`` (``{{ticket.tags}}``: ``a, b``; a JSON list is read too), each once.

    A ``tags`` key that renders empty is a ticket without tags; no key, nothing known."""
    value = value_at(body, "tags")
    if isinstance(value, str):
        items: list[Any] = value.split(",")
    elif isinstance(value, list):
        items = value
    else:
        return None
    return clean_tags(items)


# --- identity and time ----------------------------------------------------------------------------


def _event_id(
    ticket_id: str, body: Mapping[str, Any], kind: EventType, request: WebhookRequest
) -> str:
    """Same delivery, same id: the ticket, what triggered the rule, and the whole body; for a
    change of state in a body that says no time, the time of receipt too (module docstring)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    parts = [ticket_id, text_at(body, "triggered_event") or "", canonical]
    if kind in _STATE_CHANGES and not _dated(body):
        parts.append(request.received_at.astimezone(UTC).isoformat())
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return f"{ticket_id}:{digest[:32]}"


def _dated(body: Mapping[str, Any]) -> bool:
    return text_at(body, "occurred_at") is not None or text_at(body, "updated_at") is not None


def _updated_at(body: Mapping[str, Any]) -> datetime | None:
    """``updated_at`` as Rails renders a time (or ISO 8601), in UTC; None if absent or unread."""
    value = text_at(body, "updated_at")
    if value is None:
        return None
    parsed = _rendered_time(value)
    if parsed is None:
        log.warning(
            "freshdesk_updated_at_unread", ticket_id=text_at(body, "ticket_id"), value=value
        )
    return parsed


def _rendered_time(value: str) -> datetime | None:
    match = _RENDERED_TIME.fullmatch(value)
    if match is None:
        return None
    zone = match["zone"]
    offset = "+00:00" if zone in ("UTC", "GMT", "Z") else f"{zone[:3]}:{zone[-2:]}"
    try:
        return datetime.fromisoformat(f"{match['day']}T{match['time']}{offset}").astimezone(UTC)
    except (ValueError, OverflowError):  # 2025-02-30, or before the first instant in UTC
        return None


# --- reading the body -----------------------------------------------------------------------------


def _pick(handlers: Mapping[str, H], key: str, field: str) -> H:
    handler = handlers.get(key)
    if handler is None:
        raise Unmappable(f"unknown event {key!r}; known: {', '.join(handlers)}", field=field)
    return handler


def _triggered(body: Mapping[str, Any]) -> Triggered:
    rendered = _required(body, "triggered_event")
    # A rendering with JSON's quotes ({"status":{"from":2,"to":3}}) reads the same.
    match = _TRIGGERED.fullmatch(rendered.replace('"', "").replace("\\", ""))
    if match is None:
        raise Unmappable(f"cannot read {rendered!r}", field="triggered_event")
    name, value, before, after = match.group("name", "value", "before", "after")
    return Triggered(name, value or None, before, after)


def _required(body: Mapping[str, Any], key: str) -> str:
    value = text_at(body, key)
    if value is None:
        raise Unmappable("missing or empty", field=key)
    return value


def _email(body: Mapping[str, Any], key: str) -> str | None:
    """An e-mail used as a user's id: lower-cased, so that the same person compares equal."""
    value = one_line(text_at(body, key), ID)
    return value.casefold() if value else None
