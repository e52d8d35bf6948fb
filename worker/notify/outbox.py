"""The notification outbox: one row per (checkpoint, route, channel, repeat), written once.

The dedupe key is made here and only here; its uniqueness is what makes a re-fired checkpoint,
a redelivered repeat task or a second fallback write nothing the second time.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from shared.db.models import Notification
from shared.db.statements import insert_ignore

FALLBACK = "fallback"


def dedupe_key(checkpoint_id: int, route: str, channel: str, repeat: int | str) -> str:
    return f"{checkpoint_id}:{route}:{channel}:{repeat}"


def write_notification(
    session: Session,
    *,
    checkpoint_id: int,
    route: str,
    channel: str,
    repeat: int,
    now: datetime,
    fallback: bool = False,
) -> int | None:
    """A pending notification; its id, or None if that key was written before."""
    key = dedupe_key(checkpoint_id, route, channel, FALLBACK if fallback else repeat)
    values = {
        "checkpoint_id": checkpoint_id,
        "route": route,
        "channel": channel,
        "repeat": repeat,
        "dedupe_key": key,
        "status": "pending",
        "attempts": 0,
        "created_at": now,
    }
    return insert_ignore(session, Notification.__table__, values, ["dedupe_key"])
