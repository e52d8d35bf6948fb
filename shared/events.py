"""The canonical ticket event (CONTRACTS.md §1): what every source adapter produces."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from shared.text import first_control


class EventType(StrEnum):
    CREATED = "created"
    AGENT_REPLIED = "agent_replied"
    CUSTOMER_REPLIED = "customer_replied"
    STATUS_CHANGED = "status_changed"
    PRIORITY_CHANGED = "priority_changed"
    RESOLVED = "resolved"
    REOPENED = "reopened"
    CLOSED = "closed"
    ESCALATION_REQUESTED = "escalation_requested"
    ASSIGNED = "assigned"
    # The ticket's context changed (subject, tags, type, group without a tier...): stored and
    # shown, never a change of status, priority or tier; it may move the ticket to another
    # target where targets have conditions (`when`).
    UPDATED = "updated"


class Status(StrEnum):
    NEW = "new"
    OPEN = "open"
    PENDING = "pending"
    ON_HOLD = "on_hold"
    SOLVED = "solved"
    CLOSED = "closed"


class AuthorRole(StrEnum):
    """Who wrote a reply or comment, as the portal tells it."""

    AGENT = "agent"  # the support side
    REQUESTER = "requester"  # the person who asked
    CUSTOMER = "customer"  # someone else on the customer's side (a CC, a colleague)
    SYSTEM = "system"  # an automation, a trigger, an integration


class Level(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


def _require_offset(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            "a time without a UTC offset is ambiguous: write e.g. 2026-01-05T09:00:00+01:00"
        )
    return value


def _no_control(value: str) -> str:
    """Ids and names are stored and copied into messages: no NUL, newline or other control."""
    at = first_control(value)
    if at is not None:
        raise ValueError(
            f"control character U+{ord(value[at]):04X} at position {at}: ids and names cannot "
            "hold control characters (NUL, newline, escape...)"
        )
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_require_offset)]
NonEmpty = Annotated[str, Field(min_length=1, max_length=256), AfterValidator(_no_control)]
Subject = Annotated[str, Field(min_length=1, max_length=1000), AfterValidator(_no_control)]
Tag = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_no_control)]
Tags = Annotated[tuple[Tag, ...], Field(max_length=200)]
Word = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_no_control)]
# The tickets, events and dead-letter tables keep a source in 64 characters.
SourceName = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_no_control)]


class Event(BaseModel):
    """One thing that happened to one ticket at a portal."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)

    event_id: NonEmpty
    source: SourceName = "api"
    ticket_id: NonEmpty
    type: EventType
    occurred_at: AwareDatetime
    priority: NonEmpty | None = None
    urgency: Level | None = None
    impact: Level | None = None
    status: Status | None = None
    customer: NonEmpty | None = None
    plan: NonEmpty | None = None
    customer_timezone: NonEmpty | None = None
    requester: NonEmpty | None = None
    public: bool = True
    automatic: bool = False
    tier: Annotated[int, Field(ge=1, le=9)] | None = None
    # The ticket's context as the portal shows it (all optional; each event carries what the
    # portal sent with it, and the ticket keeps the latest of each).
    subject: Subject | None = None
    group: NonEmpty | None = None
    assignee: NonEmpty | None = None
    tags: Tags | None = None  # every tag the ticket has now, when the portal sends them all
    tags_added: Tags | None = None
    tags_removed: Tags | None = None
    ticket_type: Word | None = None  # incident, problem, question, task, service request...
    channel: Word | None = None  # how the ticket came in: email, web, phone, chat, api...
    # Who wrote a reply: the portal's user id and role; the requester's id on any event.
    author: NonEmpty | None = None
    author_role: AuthorRole | None = None
    requester_id: NonEmpty | None = None

    @model_validator(mode="after")
    def _fields_the_type_needs(self) -> Self:
        # A created event without a priority takes the policy's (matrix or default_priority);
        # the policy check on arrival refuses it if the policy has neither.
        if self.type is EventType.PRIORITY_CHANGED and self.priority is None:
            raise ValueError("a priority_changed event needs a priority")
        if self.type is EventType.STATUS_CHANGED and self.status is None:
            raise ValueError("a status_changed event needs a status")
        return self

    @property
    def key(self) -> tuple[str, str]:
        """Identity for de-duplication: a repeat of (source, event_id) changes nothing."""
        return (self.source, self.event_id)

    @property
    def counts_as_response(self) -> bool:
        """A public, human agent reply: what stops first response and resets the update clock.

        A reply the portal says was written by the customer's side never counts; one by the
        ticket's own requester is caught by the timeline, which knows the requester."""
        return (
            self.type is EventType.AGENT_REPLIED
            and self.public
            and not self.automatic
            and self.author_role not in _NOT_AN_AGENT
        )


_NOT_AN_AGENT = (AuthorRole.REQUESTER, AuthorRole.CUSTOMER, AuthorRole.SYSTEM)
