"""Paging semantics: an unacknowledged page repeats on its route's interval; a person's
acknowledgement stops it (as PagerDuty and Opsgenie do)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.db.models import Notification
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
    return hmac.compare_digest(ack_signature(secret, notification_id), presented)
