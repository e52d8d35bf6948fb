"""What the worker already stored of a portal's tickets, and which pulled changes are among it.

`escalera sync` pulls a portal's changes through its API; the webhooks may have delivered many
of them already. A pulled event is already stored when the worker holds:

- the same ``(source, event_id)``: the portals that give one change the same id on both paths
  (Jira's changelog and comment ids), and any event a previous sync stored; or
- the same change by content: the same ticket, the same kind of change (`what_changed`: the
  status moved to, the priority, the tier, a reply's author and visibility, the tags added and
  removed), dated within `TOLERANCE` of each other. A webhook is dated by its delivery or by
  the portal's event time, the API by the change's own time: the two differ by seconds.

A ticket is created once: a pulled ``created`` is stored already if its ticket has one, whenever.

Each stored event stands for one change (`new_events`): once a pulled event is matched to it, it
matches no other. Two alike changes in a minute (two replies by the same agent) of which one
webhook arrived come out as one stored and one new, not as two repeats; a distinct change with the
same content an hour later is new.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.db.models import StoredEvent, Ticket
from shared.db.statements import among
from shared.events import Event, EventType, Status
from shared.names import fold

TOLERANCE = timedelta(minutes=2)

_REPLIES = (EventType.AGENT_REPLIED, EventType.CUSTOMER_REPLIED)
# A move of status, whatever the adapter called it: the webhook may say `reopened` where the API,
# not knowing the status before, says `status_changed` to open.
_MOVES = {
    EventType.STATUS_CHANGED: None,
    EventType.RESOLVED: Status.SOLVED,
    EventType.CLOSED: Status.CLOSED,
    EventType.REOPENED: Status.OPEN,
}
_TIERS = (EventType.ASSIGNED, EventType.ESCALATION_REQUESTED)


def stored_events(
    session: Session, source: str, ticket_ids: Sequence[str]
) -> dict[str, list[Event]]:
    """The events stored for these tickets of ``source``, by ticket id, in storage order: one
    query, however many tickets."""
    found: dict[str, list[Event]] = {ticket_id: [] for ticket_id in ticket_ids}
    if not ticket_ids:
        return found
    query = (
        select(Ticket.ticket_id, StoredEvent.payload)
        .join(StoredEvent, StoredEvent.ticket_pk == Ticket.id)
        .where(Ticket.source == source, among(session, Ticket.ticket_id, sorted(set(ticket_ids))))
        .order_by(StoredEvent.id)
    )
    for ticket_id, payload in session.execute(query).all():
        found[ticket_id].append(Event.model_validate(payload))
    return found


def what_changed(event: Event) -> tuple[Any, ...]:
    """What makes one change of a ticket differ from another of the same kind at the same time:
    the kind of change, then what it changed to. Context the event only carries along (the
    subject on a reply, the assignee on a status change) is not part of it."""
    if event.type in _MOVES:
        return ("status", event.status or _MOVES[event.type])
    if event.type in _REPLIES:
        return (event.type, event.author, event.public, event.automatic)
    if event.type is EventType.PRIORITY_CHANGED:
        return (event.type, fold(event.priority or ""))
    if event.type in _TIERS:
        return (event.type, event.tier)
    if event.type is EventType.UPDATED:
        added, removed = event.tags_added or (), event.tags_removed or ()
        return (event.type, frozenset(added), frozenset(removed))
    return (event.type,)


def same_change(pulled: Event, stored: Event) -> bool:
    """Whether two events with different ids tell the same change of the same ticket."""
    if (pulled.source, pulled.ticket_id) != (stored.source, stored.ticket_id):
        return False
    if pulled.type is EventType.CREATED or stored.type is EventType.CREATED:
        return pulled.type is stored.type  # created once, whatever the dates say
    if abs(pulled.occurred_at - stored.occurred_at) > TOLERANCE:
        return False
    return what_changed(pulled) == what_changed(stored)


def already_stored(event: Event, stored: Iterable[Event]) -> bool:
    """Whether ``event`` is among ``stored``: by its id, or as the same change."""
    return any(event.key == other.key or same_change(event, other) for other in stored)


@dataclass(frozen=True)
class Sorted:
    """A page's pulled events, split in the order pulled."""

    new: list[Event]
    stored: list[Event]  # already stored (or pulled twice): nothing to do


def new_events(pulled: Sequence[Event], stored: Mapping[str, Sequence[Event]]) -> Sorted:
    """Split ``pulled`` into the events the worker lacks and those it holds (``stored``: its
    events by ticket id). Ids first, so a content match never takes a stored event that an
    identical id claims; then each remaining event takes the nearest stored one telling the same
    change, which no other pulled event can take again."""
    pools = {ticket: list(events) for ticket, events in stored.items()}
    keys = {event.key for events in pools.values() for event in events}
    by_id: set[int] = set()
    for i, event in enumerate(pulled):
        if event.key in keys:
            by_id.add(i)
            pool = pools.get(event.ticket_id, [])
            pools[event.ticket_id] = [other for other in pool if other.key != event.key]
        keys.add(event.key)  # a second copy in the same pull is a repeat too
    new: list[Event] = []
    repeats: list[Event] = []
    for i, event in enumerate(pulled):
        if i in by_id or _take_same(event, pools.get(event.ticket_id, [])):
            repeats.append(event)
        else:
            new.append(event)
    return Sorted(new, repeats)


def _take_same(event: Event, pool: list[Event]) -> bool:
    """Remove from ``pool`` the stored event nearest in time telling the same change, if any."""
    alike = [other for other in pool if same_change(event, other)]
    if not alike:
        return False
    pool.remove(min(alike, key=lambda other: abs(other.occurred_at - event.occurred_at)))
    return True
