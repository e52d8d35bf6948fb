"""A ticket's context (subject, group, assignee, tags, type, channel, requester), folded from its
events. Pure.

Each event carries the context its portal sent with it (`shared.events.Event`); a ticket keeps,
field by field, the value of the latest event that carries that field (by ``occurred_at``; at
one instant a creation comes before a change, then the event id decides: never the arrival).
Tags are a set told two ways: a full ``tags`` list replaces it, then ``tags_added`` and
``tags_removed`` adjust it, event by event. So the context depends only on which events
happened, not on the order they arrived in or how often.

The apply step stores the latest context on the ticket's row (`worker.events.apply`), where a
message reads it with the ticket; reports and the ticket read fold it as of their instant. The
SLA core follows it instant by instant (`changes`) where targets are chosen by it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from shared.events import Event, EventType

_LATEST = ("subject", "group", "assignee", "ticket_type", "channel", "requester_id")
# the ticket row's column for each field with another name there (`group` is an SQL keyword)
_COLUMN = {"group": "group_name"}


@dataclass(frozen=True, slots=True)
class TicketContext:
    """What a person wants to know of a ticket at a glance; None: no event said."""

    subject: str | None = None
    group: str | None = None
    assignee: str | None = None
    tags: tuple[str, ...] | None = None
    ticket_type: str | None = None
    channel: str | None = None
    requester_id: str | None = None

    @classmethod
    def of(cls, events: Iterable[Event], until: datetime | None = None) -> TicketContext:
        """The context the events that happened by ``until`` (default: all) leave.

        One pass (the apply step folds every touched ticket's whole history); only the events
        that tell tags are put in order, as a tag added then removed is not one removed then
        added."""
        fold = _Fold()
        tagged: list[tuple[tuple[datetime, int, str], Event]] = []
        for event in events:
            if until is not None and event.occurred_at > until:
                continue
            key = _key(event)
            fold.tell(key, event)
            if event.tags is not None or event.tags_added or event.tags_removed:
                tagged.append((key, event))
        for _, event in sorted(tagged, key=lambda item: item[0]):
            fold.retag(event)
        return fold.context()

    @classmethod
    def from_row(cls, row: Any) -> TicketContext:
        """From a ticket row (a `shared.db.models.Ticket`, or a row with its columns)."""
        values = {f.name: getattr(row, _COLUMN.get(f.name, f.name)) for f in fields(cls)}
        values["tags"] = _tags_from_text(values["tags"])
        return cls(**values)

    def columns(self) -> dict[str, Any]:
        """The ticket row's columns, as `from_row` reads them back."""
        return {
            "subject": self.subject,
            "group_name": self.group,
            "assignee": self.assignee,
            "tags": None if self.tags is None else json.dumps(list(self.tags)),
            "ticket_type": self.ticket_type,
            "channel": self.channel,
            "requester_id": self.requester_id,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "group": self.group,
            "assignee": self.assignee,
            "tags": None if self.tags is None else list(self.tags),
            "ticket_type": self.ticket_type,
            "channel": self.channel,
            "requester_id": self.requester_id,
        }


def changes(events: Iterable[Event]) -> Iterator[tuple[datetime, TicketContext]]:
    """The context after each instant at which one of ``events`` happened, in time order: at
    each, what `TicketContext.of` gives with ``until`` that instant. For the SLA core, which
    follows a ticket's context through its life (`scheduler.timeline`)."""
    fold = _Fold()
    ordered = sorted(((_key(event), event) for event in events), key=lambda item: item[0])
    for i, (key, event) in enumerate(ordered):
        fold.tell(key, event)
        fold.retag(event)
        if i + 1 == len(ordered) or ordered[i + 1][0][0] != key[0]:
            yield key[0], fold.context()


class _Fold:
    """A context told event by event: each field the latest event's, tags in the order told."""

    def __init__(self) -> None:
        self.latest: dict[str, tuple[tuple[datetime, int, str], str]] = {}
        self.tags: tuple[str, ...] | None = None

    def tell(self, key: tuple[datetime, int, str], event: Event) -> None:
        """The fields other than tags, in any order: the later event (by ``key``) wins."""
        for name in _LATEST:
            value = getattr(event, name)
            if value is not None and (name not in self.latest or (key, value) > self.latest[name]):
                self.latest[name] = (key, value)

    def retag(self, event: Event) -> None:
        """Tags, in ``_key`` order: a tag added then removed is not one removed then added."""
        self.tags = _retagged(self.tags, event)

    def context(self) -> TicketContext:
        values = {name: value for name, (_k, value) in self.latest.items()}
        return TicketContext(**values, tags=self.tags)


def shorten(text: str | None, limit: int) -> str | None:
    """``text`` cut to ``limit`` characters at most, an ellipsis showing the cut."""
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…"


def _key(event: Event) -> tuple[datetime, int, str]:
    """Which of two events is the later: by instant, a ticket's creation before any change at
    the same instant, then by event id (a ticket's events share their source)."""
    return (event.occurred_at, 0 if event.type is EventType.CREATED else 1, event.event_id)


def _retagged(tags: tuple[str, ...] | None, event: Event) -> tuple[str, ...] | None:
    if event.tags is None and event.tags_added is None and event.tags_removed is None:
        return tags
    now = dict.fromkeys(event.tags if event.tags is not None else tags or ())
    now.update(dict.fromkeys(event.tags_added or ()))
    for tag in event.tags_removed or ():
        now.pop(tag, None)
    return tuple(now)


def _tags_from_text(text: str | None) -> tuple[str, ...] | None:
    """The stored JSON array; anything else (a hand edit) reads as no tags known."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    return tuple(str(tag) for tag in value)
