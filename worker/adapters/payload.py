"""Reading fields out of a portal's webhook JSON, and building canonical events from them.

What every adapter does the same way, whatever its portal: values are found by dotted path
(``detail.priority``), ids and names are read as text whether the portal sends strings or
integers, times must carry a UTC offset, and a status move is classified alike. A refusal is an
`Unmappable` naming the field at fault. Which fields a portal has, and what they mean, stays in
that portal's adapter.
"""

from __future__ import annotations

import unicodedata
import zoneinfo
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from functools import cache
from typing import Any

import structlog
from pydantic import ValidationError

from shared.events import Event, EventType, Status
from worker.adapters.base import Unmappable

log = structlog.get_logger("escalera.ingest")

_DONE = frozenset({Status.SOLVED, Status.CLOSED})


def json_object(payload: Any) -> Mapping[str, Any]:
    """``payload`` when it is a JSON object; an array, string or number is refused."""
    if not isinstance(payload, Mapping):
        raise Unmappable("expected a JSON object")
    return payload


def value_at(body: Mapping[str, Any], path: str) -> Any:
    """The value at dotted ``path`` (``comment.author.is_staff``), else None."""
    value: Any = body
    for key in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def text_at(body: Mapping[str, Any], path: str) -> str | None:
    """A string or integer at ``path`` as stripped text, else None (blank counts as absent).

    Portals send ids either way (Zendesk ``48213`` or ``"48213"``), and Freshdesk renders an
    empty placeholder as ``""``.
    """
    value = value_at(body, path)
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return str(value).strip() or None


def iso_time(value: str, field: str) -> datetime:
    """``value`` read as ISO 8601 with a UTC offset, in UTC; a time without one is refused."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.utcoffset() is None:
        raise Unmappable(f"{value!r} is not an ISO 8601 time with an offset", field=field)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before the first representable instant
        raise Unmappable(f"{value!r} is out of range", field=field) from None


def status_fields(previous: Status | None, current: Status) -> dict[str, Any]:
    """The event for a move to ``current``: a resolution, a closing, a reopening, or a move.

    Only a move from solved or closed to new or open is ``reopened``; a move out of them to a
    waiting status stays a ``status_changed`` (the SLA core counts it as a reopening all the same).
    """
    if current is Status.SOLVED:
        kind = EventType.RESOLVED
    elif current is Status.CLOSED:
        kind = EventType.CLOSED
    elif previous in _DONE and current in (Status.NEW, Status.OPEN):
        kind = EventType.REOPENED
    else:
        kind = EventType.STATUS_CHANGED
    return {"type": kind, "status": current}


def build_event(fields: dict[str, Any]) -> Event:
    """The canonical event of ``fields``; the first validation error is refused naming its field."""
    try:
        return Event.model_validate(fields)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        raise Unmappable(first["msg"], field=field) from error


# The canonical event's limits (`shared.events`), which portal text is cut to.
ID, SUBJECT, TAG, WORD, TAGS = 256, 1000, 128, 64, 200


def one_line(text: str | None, limit: int) -> str | None:
    """Portal text as an event can hold it: each run of control characters (NUL, newline,
    escape...) and spaces becomes one space, stripped, cut at ``limit``; None when nothing is
    left. Portal text is shown in pages and titles, so it is cleaned here, never refused."""
    if text is None:
        return None
    safe = "".join(" " if unicodedata.category(char) in ("Cc", "Cs") else char for char in text)
    return " ".join(safe.split())[:limit].strip() or None


def present(**fields: Any) -> dict[str, Any]:
    """``fields`` without the ones that are None."""
    return {name: value for name, value in fields.items() if value is not None}


def clean_tags(values: Iterable[Any]) -> tuple[str, ...]:
    """A portal's tags, each cleaned, without repeats, at most `TAGS` of them."""
    cleaned = (one_line(tag, TAG) for tag in values if isinstance(tag, str))
    return tuple(dict.fromkeys(tag for tag in cleaned if tag))[:TAGS]


def tagged_value(tags: Iterable[str], prefix: str) -> str | None:
    """The rest of the first tag starting with ``prefix`` (case ignored): ``plan_gold`` -> ``gold``
    for the prefix ``plan_``; None when no tag has more than the prefix."""
    folded = prefix.casefold()
    for tag in tags:
        if tag.casefold().startswith(folded) and len(tag) > len(folded):
            return tag[len(folded) :]
    return None


def timezone_named(name: str | None, *, source: str, ticket_id: str | None) -> str | None:
    """An IANA time zone in its own case, whatever case the portal wrote it in (Zendesk
    lower-cases tags: ``america/mexico_city``); another value is left out and logged: a zone the
    clocks cannot use would stop the ticket's evaluation."""
    if name is None:
        return None
    zone = _zones().get(name.casefold())
    if zone is None:
        log.warning("timezone_unknown", source=source, ticket_id=ticket_id, timezone=name)
    return zone


@cache
def _zones() -> dict[str, str]:
    return {zone.casefold(): zone for zone in zoneinfo.available_timezones()}
