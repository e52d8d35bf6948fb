"""Bringing stored checkpoints in line with evaluated SLAs, for many tickets in a few statements.

New checkpoints are armed, moved ones re-timed, vanished ones deleted; fired ones stay fired.
A cancelled checkpoint that never fired is deleted rather than kept: it means nothing to anyone,
and keeping it would make the stored state depend on the order events arrived in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, delete, insert, select
from sqlalchemy.orm import Session

from scheduler.sla import Checkpoint as Planned
from shared.db.models import Checkpoint, CheckpointState
from shared.db.statements import among, insert_rows, next_ids, update_rows

_TABLE = cast(Table, Checkpoint.__table__)
_ARMED = CheckpointState.ARMED.value


@dataclass(frozen=True)
class StoredCheckpoint:
    """A checkpoint row as re-planning sees (and leaves) it; the timer index follows these."""

    id: int
    key: str
    due_at: datetime
    state: str = _ARMED
    kind: str = ""  # known for the rows re-planning adds (metrics count them by kind)


@dataclass
class CheckpointChanges:
    """What re-planning did to a ticket's checkpoints."""

    added: list[StoredCheckpoint] = field(default_factory=list)
    moved: list[tuple[StoredCheckpoint, datetime]] = field(default_factory=list)  # (row, old due)
    cancelled: list[StoredCheckpoint] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.moved or self.cancelled)


@dataclass
class Diff:
    """The pure difference between a ticket's stored and planned checkpoints."""

    new: list[Planned] = field(default_factory=list)
    moved: list[tuple[StoredCheckpoint, datetime]] = field(default_factory=list)  # (row, new due)
    cancelled: list[StoredCheckpoint] = field(default_factory=list)


def diff(stored: Iterable[StoredCheckpoint], planned: Sequence[Planned]) -> Diff:
    by_key = {row.key: row for row in stored}
    result = Diff()
    for checkpoint in planned:
        row = by_key.pop(checkpoint.key, None)
        if row is None:
            result.new.append(checkpoint)
        elif row.state == _ARMED and row.due_at != checkpoint.due_at:
            result.moved.append((row, checkpoint.due_at))
    result.cancelled = [row for row in by_key.values() if row.state == _ARMED]
    return result


def load(session: Session, ticket_pks: Sequence[int]) -> dict[int, list[StoredCheckpoint]]:
    """The stored checkpoints of each ticket (tickets without any are absent)."""
    found: dict[int, list[StoredCheckpoint]] = defaultdict(list)
    if ticket_pks:
        query = select(
            _TABLE.c.ticket_pk, _TABLE.c.id, _TABLE.c.key, _TABLE.c.due_at, _TABLE.c.state
        ).where(among(session, _TABLE.c.ticket_pk, ticket_pks))
        for pk, cid, key, due_at, state in session.execute(query).all():
            found[pk].append(StoredCheckpoint(cid, key, due_at, state))
    return found


def write(
    session: Session, diffs: Mapping[int, Diff], now: datetime
) -> dict[int, CheckpointChanges]:
    """Apply every ticket's diff with one INSERT, one UPDATE batch and one DELETE."""
    changes = {pk: CheckpointChanges() for pk in diffs}
    _insert(session, diffs, changes, now)
    # Only rows still armed: a fire task may have fired one since `load` read it (it locks the
    # checkpoint, not the ticket). Fired, it stays fired, with its notifications (found by
    # tests/chaos: deleting it then broke the notifications' foreign key).
    still_armed = _TABLE.c.state == _ARMED
    moves = [{"id": row.id, "due_at": due} for d in diffs.values() for row, due in d.moved]
    update_rows(session, _TABLE, moves, also={"updated_at": now}, only=still_armed)
    gone = [row.id for d in diffs.values() for row in d.cancelled]
    deleted: set[int] = set()
    if gone:
        statement = delete(_TABLE).where(among(session, _TABLE.c.id, gone), still_armed)
        deleted = set(session.scalars(statement.returning(_TABLE.c.id)).all())
    for pk, d in diffs.items():
        changes[pk].moved = [
            (StoredCheckpoint(row.id, row.key, due), row.due_at) for row, due in d.moved
        ]
        changes[pk].cancelled = [row for row in d.cancelled if row.id in deleted]
    return changes


def _insert(
    session: Session,
    diffs: Mapping[int, Diff],
    changes: dict[int, CheckpointChanges],
    now: datetime,
) -> None:
    rows = [
        {
            "ticket_pk": pk,
            "key": c.key,
            "metric": c.metric,
            "kind": c.kind.value,
            "percent": c.percent,
            "tier": c.tier,
            "due_at": c.due_at,
            "state": _ARMED,
            "updated_at": now,
        }
        for pk, d in diffs.items()
        for c in d.new
    ]
    if not rows:
        return
    ids = next_ids(session, _TABLE, len(rows))
    if ids is not None:  # PostgreSQL: ids first, then one executemany without RETURNING
        for row, cid in zip(rows, ids, strict=True):
            row["id"] = cid
        insert_rows(session, _TABLE, rows)
        added: list[tuple[Any, ...]] = [
            (row["ticket_pk"], row["id"], row["key"], row["due_at"], row["kind"]) for row in rows
        ]
    else:
        statement = insert(_TABLE).returning(
            _TABLE.c.ticket_pk, _TABLE.c.id, _TABLE.c.key, _TABLE.c.due_at, _TABLE.c.kind
        )
        added = [tuple(row) for row in session.execute(statement, rows)]
    for pk, cid, key, due_at, kind in added:
        changes[pk].added.append(StoredCheckpoint(cid, key, due_at, kind=kind))
