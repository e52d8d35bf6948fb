"""Notification rows as a delivery batch reads and writes them: plain values, locked on read,
written back in one UPDATE per group of rows that end the same way.

A storm's digest changes hundreds of rows identically (sent, now, one more attempt, the same
per-target results): one ``UPDATE … WHERE id IN (…)`` instead of hundreds of ORM updates.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, Table, select, update
from sqlalchemy.orm import Session

from shared.db.models import Notification, NotificationState
from shared.db.statements import among

# The table's own (Core) columns: a batch's rows come back plain, not through the ORM.
_NOTIFICATIONS = cast(Table, Notification.__table__)
_N = _NOTIFICATIONS.c
_COLUMNS = (
    _N.id,
    _N.checkpoint_id,
    _N.route,
    _N.channel,
    _N.repeat,
    _N.dedupe_key,
    _N.status,
    _N.attempts,
    _N.results,
    _N.acknowledged_at,
    _N.repeat_at,
)


@dataclass
class Note:
    """One notification row; `changed` once its delivery fields were set."""

    id: int
    checkpoint_id: int
    route: str
    channel: str
    repeat: int
    dedupe_key: str
    status: str
    attempts: int
    results: dict[str, Any] | None
    acknowledged_at: datetime | None
    repeat_at: datetime | None = None  # its page's next repeat or step is due then
    last_error: str | None = None
    delivered_at: datetime | None = None
    # when its next try is due (a retry's backoff); written back with the rest, so a note
    # that ends sent, dead or skipped clears it (it is not read: a batch sets it or not)
    next_try_at: datetime | None = None
    changed: bool = field(default=False, compare=False)


def _notes(session: Session, query: Select[Any]) -> list[Note]:
    return [Note(*row) for row in session.execute(query).all()]


def _locking(session: Session, ids: Sequence[int], *columns: Any) -> Select[Any]:
    """``columns`` of ``ids``' rows that no other transaction holds, locked (``FOR UPDATE SKIP
    LOCKED``), in id order."""
    return (
        select(*columns)
        .where(among(session, _N.id, ids))
        .order_by(_N.id)
        .with_for_update(skip_locked=True)
    )


def lock_notes(session: Session, ids: Sequence[int]) -> list[Note]:
    """``ids``' rows that no other transaction holds, locked."""
    return _notes(session, _locking(session, ids, *_COLUMNS))


def lock_written(session: Session, ids: Sequence[int]) -> dict[int, str]:
    """Lock ``ids``' rows that no other transaction holds; each one's status. For rows this
    process has just written: it knows the rest of them."""
    if not ids:
        return {}
    query = _locking(session, ids, _N.id, _N.status)
    return {int(nid): status for nid, status in session.execute(query).all()}


def existing(session: Session, ids: Iterable[int]) -> set[int]:
    query = select(_N.id).where(among(session, _N.id, list(ids)))
    return set(session.scalars(query).all())


def sweep_notes(
    session: Session, channel: str, ids: Sequence[int], window: int, limit: int
) -> list[Note]:
    """Pending rows of ``channel`` with ids within ``window`` of ``ids``, not held elsewhere."""
    query = (
        select(*_COLUMNS)
        .where(
            _N.id.between(min(ids) - window, max(ids) + window),
            _N.channel == channel,
            _N.status == NotificationState.PENDING.value,
            ~among(session, _N.id, ids),
        )
        .order_by(_N.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return _notes(session, query)


def write_back(session: Session, notes: Iterable[Note]) -> int:
    """Store every changed note, one UPDATE per set of identical new values; statements run."""
    groups: dict[tuple[Any, ...], list[Note]] = defaultdict(list)
    # the notes of one message share its results' dict: each is made a key once (by its id;
    # every one of them is alive until this returns)
    frozen: dict[int, tuple[tuple[str, Any], ...] | None] = {}
    for note in notes:
        if note.changed:
            if (held := id(note.results)) not in frozen:
                frozen[held] = tuple(sorted(note.results.items())) if note.results else None
            results = frozen[held]
            key = (
                note.status,
                note.attempts,
                results,
                note.last_error,
                note.delivered_at,
                note.repeat_at,
                note.next_try_at,
            )
            groups[key].append(note)
    for same in groups.values():
        first = same[0]
        session.execute(
            update(_NOTIFICATIONS)
            .where(among(session, _N.id, [note.id for note in same]))
            .values(
                status=first.status,
                attempts=first.attempts,
                results=first.results,
                last_error=first.last_error,
                delivered_at=first.delivered_at,
                repeat_at=first.repeat_at,
                next_try_at=first.next_try_at,
            )
        )
    return len(groups)
