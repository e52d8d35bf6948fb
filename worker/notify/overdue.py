"""Tries lost with Redis: notifications whose next try is long overdue, queued again.

A notification's next try is a Celery task in Redis: its retry after a backoff, or its first
try when a task queued it. A Redis flushed or failed over to a replica behind loses the tasks
no worker had taken yet, and the row stays pending or retrying for good: a page nobody gets,
no fallback told. So the row keeps when its next try is due (``next_try_at``), and beat's
minute hands the ones overdue by more than `LOST_AFTER` to a delivery task again
(`worker.tasks.reconcile_timers_task`).

A try merely late (a deep queue) is not tried twice: the sweep moves each row it queues to
now, and its task delivers only the rows still there (`untried_since`); a try made meanwhile
moved the row's time on (its next backoff) or finished it. So under a backlog the sweep adds
at most one task per row per `LOST_AFTER`, and never a second retry chain.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, select, text, update
from sqlalchemy.orm import Session

from shared.db.models import UNFINISHED_ROWS, Notification
from shared.db.statements import among

# How long past its time a try counts as lost: longer than a worker holding a retry in its
# memory needs to start it on a busy machine, shorter than anyone should wait for a page.
LOST_AFTER = timedelta(minutes=2)
SWEEP_LIMIT = 1000  # rows a minute; more wait for the next minute

_NOTIFICATIONS = cast(Table, Notification.__table__)
_N = _NOTIFICATIONS.c


def next_try_by(now: datetime, countdown_s: float) -> datetime:
    """When a try ``countdown_s`` from ``now`` is due, to the minute above: a storm's
    notifications, their backoffs jittered apart, still share it and write back together."""
    due = now + timedelta(seconds=countdown_s)
    whole = due.replace(second=0, microsecond=0)
    return whole if whole == due else whole + timedelta(minutes=1)


def overdue_tries(session: Session, now: datetime) -> list[int]:
    """The unfinished notifications whose try was due more than `LOST_AFTER` before ``now``
    (the oldest first, at most `SWEEP_LIMIT`), each moved to ``now``: queued again by the
    caller, looked at again only if that try is lost as well (the caller commits)."""
    query = (
        select(_N.id)
        .where(
            # the partial index's own condition, word for word: SQLite uses the index only
            # for a condition it can match to it (not bound parameters in an IN list)
            text(UNFINISHED_ROWS),
            _N.next_try_at < now - LOST_AFTER,
        )
        .order_by(_N.next_try_at)
        .limit(SWEEP_LIMIT)
        .with_for_update(skip_locked=True)  # a row a delivery holds is being tried
    )
    ids = [int(nid) for nid in session.scalars(query)]
    if ids:
        session.execute(
            update(_NOTIFICATIONS).where(among(session, _N.id, ids)).values(next_try_at=now)
        )
    return ids


def untried_since(session: Session, ids: Sequence[int], swept_at: datetime) -> list[int]:
    """Of ``ids``, queued again by the sweep at ``swept_at``, those nobody tried since: still
    unfinished, their next try still then (a try sets the next backoff, or finishes them)."""
    query = (
        select(_N.id)
        .where(among(session, _N.id, ids), text(UNFINISHED_ROWS), _N.next_try_at <= swept_at)
        .order_by(_N.id)
    )
    return [int(nid) for nid in session.scalars(query)]
