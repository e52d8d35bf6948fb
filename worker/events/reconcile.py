"""Bringing the Redis timer indexes back in line with the database, the source of truth."""

from __future__ import annotations

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from scheduler.timer_index import TimerIndex
from shared.db.models import Checkpoint, CheckpointState, Notification

_PAGE = 5000


def reconcile_timers(session: Session, index: TimerIndex) -> int:
    """Re-arm every armed checkpoint missing from the index (leased ones are left alone).

    Returns how many were missing. Reads a page at a time (in due order, along the state and
    due index), each page a statement of its own handed to Redis at once, so a million armed
    checkpoints need no more memory than a page of them, and a checkpoint fired meanwhile is
    seen fired. One long stream read them all as of its start: every checkpoint fired and
    released while it ran was armed again, to be claimed again and skipped (under a backlog,
    hundreds a minute: issue 18). What is left is a page's own milliseconds.
    """
    armed = Checkpoint.state == CheckpointState.ARMED.value
    key = (Checkpoint.due_at, Checkpoint.id)
    missing, after = 0, None
    while True:
        query = select(*key).where(armed).order_by(*key).limit(_PAGE)
        if after is not None:
            query = query.where(tuple_(*key) > tuple(after))  # bound as the columns' types
        page = session.execute(query).all()
        if not page:
            return missing
        missing += index.reconcile((cid, due) for due, cid in page)
        after = page[-1]


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
