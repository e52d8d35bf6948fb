"""The notification outbox: one row per (checkpoint, route, channel, repeat), written once.

The dedupe key is made here and only here; its uniqueness is what makes a re-fired checkpoint,
a redelivered repeat task or a second fallback write nothing the second time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from operator import attrgetter
from typing import Any, NamedTuple

from sqlalchemy import text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from shared.db.models import Checkpoint, CheckpointState, Notification, NotificationState
from shared.db.statements import insert_ignore
from shared.policy_routes import RouteSpec
from worker.notify.batch_rows import Note

FALLBACK = "fallback"
# The message number of an acknowledgement notice: the channels a chain had already told hear
# who acknowledged it, and that nobody else will be (`worker.notify.paging.acknowledge_page`).
# Its dedupe key ends in ``ACKNOWLEDGED`` instead of a number: one notice per channel, ever.
ACK_NOTICE = -1
ACKNOWLEDGED = "acknowledged"
# SQLite: rows per INSERT statement (a 100-checkpoint fire batch is one or two).
INSERT_CHUNK = 500


def dedupe_key(checkpoint_id: int, route: str, channel: str, repeat: int | str) -> str:
    return f"{checkpoint_id}:{route}:{channel}:{repeat}"


class Outgoing(NamedTuple):
    """A notification to write: which checkpoint, by which route, to which channel (a tuple:
    a storm writes hundreds of thousands)."""

    checkpoint_id: int
    route: str
    channel: str
    repeat: int = 0
    fallback: bool = False
    release_at: datetime | None = None  # its route is quiet now: held until then


def _key(item: Outgoing) -> str:
    repeat: int | str = FALLBACK if item.fallback else item.repeat
    if item.repeat == ACK_NOTICE:
        repeat = ACKNOWLEDGED
    return dedupe_key(item.checkpoint_id, item.route, item.channel, repeat)


def _status(item: Outgoing) -> str:
    return (NotificationState.PENDING if item.release_at is None else NotificationState.HELD).value


def _values(item: Outgoing, now: datetime) -> dict[str, Any]:
    return {
        "checkpoint_id": item.checkpoint_id,
        "route": item.route,
        "channel": item.channel,
        "repeat": item.repeat,
        "dedupe_key": _key(item),
        "status": _status(item),
        "attempts": 0,
        "created_at": now,
        "release_at": item.release_at,
        # a pending row's try is due now (a held one's at its release, `release_at`)
        "next_try_at": now if item.release_at is None else None,
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


def tell_now(
    session: Session,
    checkpoint: Checkpoint,
    routes: Iterable[RouteSpec],
    now: datetime,
) -> list[int]:
    """Store ``checkpoint`` fired now (told at once, never armed: nothing for beat to do) and
    one pending notification per channel of each route's first step; the new ones' ids (a key
    written before, by a redelivered event, writes none)."""
    checkpoint.state, checkpoint.fired_at = CheckpointState.FIRED.value, now
    session.add(checkpoint)
    session.flush()
    ids = []
    for route in routes:
        for channel in route.first_channels():
            new_id = write_notification(
                session,
                checkpoint_id=checkpoint.id,
                route=route.name,
                channel=channel,
                repeat=0,
                now=now,
            )
            if new_id is not None:
                ids.append(new_id)
    return ids


# PostgreSQL: the whole batch as seven arrays, one short statement the driver parses once.
_UNNEST = text(
    """
    INSERT INTO notifications
        (checkpoint_id, route, channel, repeat, dedupe_key, status, attempts, created_at,
         release_at, next_try_at)
    SELECT c, r, ch, rp, k, s, 0, :now, ra, CASE WHEN s = 'pending' THEN :now END
    FROM unnest(CAST(:c AS bigint[]), CAST(:r AS varchar[]), CAST(:ch AS varchar[]),
                CAST(:rp AS integer[]), CAST(:k AS varchar[]), CAST(:s AS varchar[]),
                CAST(:ra AS timestamptz[])) AS u(c, r, ch, rp, k, s, ra)
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING id, dedupe_key
    """
)


def write_notifications(session: Session, items: Sequence[Outgoing], now: datetime) -> list[int]:
    """Many pending notifications in one statement; the ids of those not written before."""
    return [note.id for note in write_notes(session, items, now)]


def write_notes(session: Session, items: Sequence[Outgoing], now: datetime) -> list[Note]:
    """Many pending (or held: `Outgoing.release_at`) notifications in one statement; those not
    written before, in id order, as a delivery batch reads them (so the writer can deliver them
    without reading them back).

    ``INSERT … ON CONFLICT (dedupe_key) DO NOTHING RETURNING``: a key that exists (a
    re-fired checkpoint) returns no row, exactly as `write_notification` returns None.
    """
    keys = [_key(item) for item in items]
    statuses = [_status(item) for item in items]
    if session.get_bind().dialect.name == "postgresql":
        columns = {
            "c": [item.checkpoint_id for item in items],
            "r": [item.route for item in items],
            "ch": [item.channel for item in items],
            "rp": [item.repeat for item in items],
            "k": keys,
            "s": statuses,
            "ra": [item.release_at for item in items],
        }
        written = session.execute(_UNNEST, {**columns, "now": now}).all()
    else:
        statement = (
            sqlite_insert(Notification)
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(Notification.id, Notification.dedupe_key)
        )
        rows = [_values(item, now) for item in items]
        written = []
        for start in range(0, len(rows), INSERT_CHUNK):
            # a list of parameters: "insertmanyvalues", multi-row VALUES from one statement
            written += session.execute(statement, rows[start : start + INSERT_CHUNK]).all()
    at = {key: i for i, key in enumerate(keys)}
    notes = []
    for nid, key in written:
        i = at[key]
        item = items[i]
        notes.append(
            Note(
                int(nid),
                item.checkpoint_id,
                item.route,
                item.channel,
                item.repeat,
                key,
                statuses[i],
                0,
                None,
                None,
            )
        )
    notes.sort(key=attrgetter("id"))
    return notes
