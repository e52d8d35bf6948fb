"""Bringing the Redis timer indexes back in line with the database, the source of truth."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.timer_index import TimerIndex
from shared.db.models import Checkpoint, CheckpointState, Notification

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


def reconcile_repeats(session: Session, index: TimerIndex) -> int:
    """Re-arm every page repeat (or chain step) the database says is coming and the repeats
    lane is missing: a worker that died between recording a page sent and arming it, or a
    Redis that lost the lane. How many were missing; leased ones are left alone."""
    query = (
        select(Notification.id, Notification.repeat_at)
        .where(Notification.repeat_at.is_not(None))
        .execution_options(yield_per=_PAGE)
    )
    return index.reconcile((nid, due) for nid, due in session.execute(query) if due is not None)
