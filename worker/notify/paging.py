"""Paging semantics: an unacknowledged page repeats on its route's interval; a person's
acknowledgement stops it (as PagerDuty and Opsgenie do).

An acknowledgement counts for a checkpoint on a route (an `Acknowledgement` row), whatever
notification rows it has: those written later (a repeat, a page stored after its send) are
covered too. The first one is kept, with who and when; acknowledging again changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shared.db.models import Acknowledgement, Checkpoint, Notification, Ticket
from shared.db.statements import insert_ignore
from shared.policy_routes import RouteSpec
from worker.notify.outbox import Outgoing, write_notifications


class Page(Protocol):
    repeat: int
    acknowledged_at: datetime | None


def next_repeat(route: RouteSpec | None, notification: Page, sent_at: datetime) -> datetime | None:
    """When a sent page repeats; None without a repeat, past the limit, or once acknowledged."""
    if route is None or route.repeat is None or notification.acknowledged_at is not None:
        return None
    if notification.repeat >= route.repeat.limit:
        return None
    return sent_at + timedelta(seconds=route.repeat.every.seconds_on(0))


def repeat_pages(session: Session, ids: Sequence[int], now: datetime) -> list[int]:
    """Write the next repeat of each unacknowledged page; the new notifications' ids.

    A storm's pages fall due to repeat together: one query for which of them were
    acknowledged, one multi-row INSERT for the repeats.
    """
    pages = session.execute(
        select(
            Notification.checkpoint_id,
            Notification.route,
            Notification.channel,
            Notification.repeat,
        )
        .where(Notification.id.in_(ids))
        .order_by(Notification.id)
    ).all()
    acknowledged = {
        (checkpoint_id, route)
        for checkpoint_id, route in session.execute(
            select(Acknowledgement.checkpoint_id, Acknowledgement.route).where(
                Acknowledgement.checkpoint_id.in_({page.checkpoint_id for page in pages})
            )
        )
    }
    repeats = [
        Outgoing(page.checkpoint_id, page.route, page.channel, page.repeat + 1)
        for page in pages
        if (page.checkpoint_id, page.route) not in acknowledged
        and _still_stands(session, page.checkpoint_id)
    ]
    return write_notifications(session, repeats, now) if repeats else []


ANONYMOUS = "anonymous via link"


@dataclass(frozen=True)
class Acknowledged:
    """The acknowledgement of a page that stands: the first one (who, when, how)."""

    at: datetime
    by: str
    via: str  # link or api
    first: bool  # False: it was acknowledged before, and this is who and when
    notifications: list[int]  # the route's notification rows now: their repeats are disarmed


def acknowledge_page(
    session: Session,
    checkpoint_id: int,
    route: str,
    *,
    key: str,
    now: datetime,
    by: str,
    via: str,
) -> Acknowledged | None:
    """Acknowledge the page of ``checkpoint_id`` on ``route`` (None: no such checkpoint).

    One row per (checkpoint, route), the first kept (``INSERT … ON CONFLICT DO NOTHING``: two
    clicks at once store one). The route's notification rows stored now, but for those being
    sent, get its instant too.
    """
    if session.get(Checkpoint, checkpoint_id) is None:
        return None
    values = {
        "checkpoint_id": checkpoint_id,
        "route": route,
        "dedupe_key": key,
        "acknowledged_at": now,
        "acknowledged_by": by,
        "via": via,
    }
    first = insert_ignore(session, Acknowledgement.__table__, values, ["checkpoint_id", "route"])
    stands = acknowledgement(session, checkpoint_id, route)
    assert stands is not None  # just written, or written before
    of_route = (Notification.checkpoint_id == checkpoint_id, Notification.route == route)
    # rows a delivery holds while it sends are skipped, not waited for: the acknowledgement row
    # is what stops the repeats, the rows' column only mirrors it
    free = session.scalars(
        select(Notification.id)
        .where(*of_route, Notification.acknowledged_at.is_(None))
        .with_for_update(skip_locked=True)
    ).all()
    if free:
        session.execute(
            update(Notification)
            .where(Notification.id.in_(free))
            .values(acknowledged_at=stands.acknowledged_at)
            .execution_options(synchronize_session=False)
        )
    ids = list(session.scalars(select(Notification.id).where(*of_route).order_by(Notification.id)))
    return Acknowledged(
        stands.acknowledged_at, stands.acknowledged_by, stands.via, first is not None, ids
    )


def acknowledge(
    session: Session, notification_id: int, now: datetime, *, by: str = "api", via: str = "api"
) -> list[int]:
    """Acknowledge a page by one of its notifications: the ids of its route's notifications
    (none if there is no such notification)."""
    page = session.get(Notification, notification_id)
    if page is None:
        return []
    done = acknowledge_page(
        session, page.checkpoint_id, page.route, key=page.dedupe_key, now=now, by=by, via=via
    )
    return done.notifications if done else []


def acknowledgement(session: Session, checkpoint_id: int, route: str) -> Acknowledgement | None:
    """The acknowledgement of a checkpoint's page on a route, if any."""
    query = select(Acknowledgement).where(
        Acknowledgement.checkpoint_id == checkpoint_id, Acknowledgement.route == route
    )
    return session.scalars(query).first()


def ack_signature(secret: str, notification_id: int) -> str:
    """The signature of a notification's acknowledgement link as sent before links named
    their dedupe key (``/v1/notifications/{id}/ack?sig=``): still honoured until they expire."""
    return hmac.new(secret.encode(), f"ack:{notification_id}".encode(), hashlib.sha256).hexdigest()


def ack_signature_valid(secret: str, notification_id: int, presented: str) -> bool:
    """Constant-time; any text may be presented (compared as bytes: non-ASCII is no error)."""
    expected = ack_signature(secret, notification_id).encode()
    return hmac.compare_digest(expected, presented.encode("utf-8", "surrogatepass"))


_DONE = frozenset({"solved", "closed"})


def page_stands(
    kind: str,
    key: str,
    tier: int | None,
    *,
    status: str | None,
    sla: Mapping[str, Any],
    latest_update: int | None,
    latest_next_reply: int | None = None,
) -> bool:
    """Whether a page is still about something open, from its checkpoint and its ticket's last
    evaluation (``sla``, the `TicketSla` JSON; ``latest_update`` and ``latest_next_reply``, the
    ticket's last cycle of each). Pure."""
    if status in _DONE:
        return False
    if kind == "escalation":
        return tier is None or int(sla.get("tier", 1)) < tier
    # first_response, update#2, next_reply#3, resolution
    clock, cycled, cycle = key.split(":", 1)[0].partition("#")
    latest = {"update": latest_update, "next_reply": latest_next_reply}
    if cycled and int(cycle) != latest.get(clock):
        return False  # a later cycle began (a reply; a new message): this one is over
    return sla.get("metrics", {}).get(clock, {}).get("completed_at") is None


def _still_stands(session: Session, checkpoint_id: int) -> bool:
    """A page stops when what it is about is over (met, escalated, resolved), not only on ack."""
    checkpoint = session.get_one(Checkpoint, checkpoint_id)
    ticket = session.get_one(Ticket, checkpoint.ticket_pk)
    cycles = session.scalars(
        select(Checkpoint.key).where(
            Checkpoint.ticket_pk == ticket.id,
            Checkpoint.key.like("update#%") | Checkpoint.key.like("next_reply#%"),
        )
    )
    latest: dict[str, int] = {}
    for key in cycles:
        clock, _, cycle = key.split(":", 1)[0].partition("#")
        latest[clock] = max(latest.get(clock, 0), int(cycle))
    return page_stands(
        checkpoint.kind,
        checkpoint.key,
        checkpoint.tier,
        status=ticket.status,
        sla=ticket.sla or {},
        latest_update=latest.get("update"),
        latest_next_reply=latest.get("next_reply"),
    )
