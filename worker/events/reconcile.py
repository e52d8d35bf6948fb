"""Bringing the Redis timer index back in line with the database, the source of truth."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.timer_index import TimerIndex
from shared.db.models import Checkpoint, CheckpointState

_PAGE = 5000


def reconcile_timers(session: Session, index: TimerIndex) -> int:
    """Re-arm every armed checkpoint missing from the index (leased ones are left alone).

    Returns how many were missing. Streams the rows, so a million armed checkpoints need no
    more memory than a page of them.
    """
    query = (
        select(Checkpoint.id, Checkpoint.due_at)
        .where(Checkpoint.state == CheckpointState.ARMED.value)
        .execution_options(yield_per=_PAGE)
    )
    return index.reconcile((cid, due) for cid, due in session.execute(query))
