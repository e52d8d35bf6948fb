"""The notification outbox: one row per (checkpoint, route, channel, repeat), written once.

The dedupe key is made here and only here; its uniqueness is what makes a re-fired checkpoint,
a redelivered repeat task or a second fallback write nothing the second time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from shared.db.models import Notification
from shared.db.statements import insert_ignore

FALLBACK = "fallback"
# Rows per INSERT statement: a 100-checkpoint fire batch is one or two statements.
INSERT_CHUNK = 500


def dedupe_key(checkpoint_id: int, route: str, channel: str, repeat: int | str) -> str:
    return f"{checkpoint_id}:{route}:{channel}:{repeat}"


@dataclass(frozen=True)
class Outgoing:
    """A notification to write: which checkpoint, by which route, to which channel."""

    checkpoint_id: int
    route: str
    channel: str
    repeat: int = 0
    fallback: bool = False


def _values(item: Outgoing, now: datetime) -> dict[str, Any]:
    repeat: int | str = FALLBACK if item.fallback else item.repeat
    return {
        "checkpoint_id": item.checkpoint_id,
        "route": item.route,
        "channel": item.channel,
        "repeat": item.repeat,
        "dedupe_key": dedupe_key(item.checkpoint_id, item.route, item.channel, repeat),
        "status": "pending",
        "attempts": 0,
        "created_at": now,
    }


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
    values = _values(Outgoing(checkpoint_id, route, channel, repeat, fallback), now)
    return insert_ignore(session, Notification.__table__, values, ["dedupe_key"])


def write_notifications(session: Session, items: Sequence[Outgoing], now: datetime) -> list[int]:
    """Many pending notifications in a few statements; the ids of those not written before.

    ``INSERT … ON CONFLICT (dedupe_key) DO NOTHING RETURNING id``: a key that exists (a
    re-fired checkpoint) returns no row, exactly as `write_notification` returns None.
    """
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(Notification)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(Notification.id)
    )
    new_ids: list[int] = []
    for start in range(0, len(items), INSERT_CHUNK):
        rows = [_values(item, now) for item in items[start : start + INSERT_CHUNK]]
        # a list of parameters: SQLAlchemy's "insertmanyvalues" sends multi-row VALUES from
        # one cached statement (building .values(rows) compiled anew each time: 200 ms/batch)
        new_ids += [int(nid) for nid in session.scalars(statement, rows)]
    return sorted(new_ids)
