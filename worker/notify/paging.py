"""Paging semantics: an unacknowledged page repeats on its route's interval; a person's
acknowledgement stops it (as PagerDuty and Opsgenie do)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.db.models import Checkpoint, Notification, Ticket
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
            select(Notification.checkpoint_id, Notification.route).where(
                Notification.checkpoint_id.in_({page.checkpoint_id for page in pages}),
                Notification.acknowledged_at.is_not(None),
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


def acknowledge(session: Session, notification_id: int, now: datetime) -> list[int]:
    """Acknowledge a page: every notification of its checkpoint on its route; their ids."""
    page = session.get(Notification, notification_id)
    if page is None:
        return []
    pages = session.scalars(
        select(Notification).where(
            Notification.checkpoint_id == page.checkpoint_id, Notification.route == page.route
        )
    ).all()
    for each in pages:
        each.acknowledged_at = each.acknowledged_at or now
    return [each.id for each in pages]


def ack_signature(secret: str, notification_id: int) -> str:
    """The signature of a notification's acknowledgement link (HMAC-SHA256, hex)."""
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
) -> bool:
    """Whether a page is still about something open, from its checkpoint and its ticket's last
    evaluation (``sla``, the `TicketSla` JSON; ``latest_update``, the ticket's last update
    cycle). Pure."""
    if status in _DONE:
        return False
    if kind == "escalation":
        return tier is None or int(sla.get("tier", 1)) < tier
    clock = key.split(":", 1)[0]  # first_response, update#2, resolution
    if clock.startswith("update#"):
        if int(clock.removeprefix("update#")) != latest_update:
            return False  # a reply began a later cycle: this one was met
        clock = "update"
    return sla.get("metrics", {}).get(clock, {}).get("completed_at") is None


def _still_stands(session: Session, checkpoint_id: int) -> bool:
    """A page stops when what it is about is over (met, escalated, resolved), not only on ack."""
    checkpoint = session.get_one(Checkpoint, checkpoint_id)
    ticket = session.get_one(Ticket, checkpoint.ticket_pk)
    cycles = session.scalars(
        select(Checkpoint.key).where(
            Checkpoint.ticket_pk == ticket.id, Checkpoint.key.like("update#%")
        )
    )
    latest = max((int(k.split(":", 1)[0].removeprefix("update#")) for k in cycles), default=None)
    return page_stands(
        checkpoint.kind,
        checkpoint.key,
        checkpoint.tier,
        status=ticket.status,
        sla=ticket.sla or {},
        latest_update=latest,
    )
