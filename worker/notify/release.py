"""Releasing notifications held in their route's quiet hours (`worker.notify.quiet`).

Beat's minute (`worker.tasks.reconcile_timers_task`) looks in the database for held
notifications whose time came and sends them: each channel's go out as one digest, however few
(a held batch is a digest by nature). Nothing of it is in Redis: a flush or a restart changes
nothing.

A held notification whose page no longer stands when it is released (the ticket answered or
solved in the night, the checkpoint's clock met: `worker.notify.paging.still_stands`), or that
someone acknowledged meanwhile, is marked skipped instead: the morning digest lists only what
still needs someone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shared.db.models import Notification, NotificationState
from shared.db.statements import among
from worker.notify.deliver import Deliverer
from worker.notify.outcome import Delivery, Outcome
from worker.notify.paging import acknowledged, still_stands

RELEASE_BATCH = 500  # held notifications one release task sends (a digest per channel)


def due_held(session: Session, now: datetime, limit: int = RELEASE_BATCH) -> list[int]:
    """Held notifications whose release time came, oldest first (the partial index)."""
    query = (
        select(Notification.id)
        .where(
            Notification.status == NotificationState.HELD.value,
            Notification.release_at <= now,
        )
        .order_by(Notification.release_at, Notification.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def release_held(
    session: Session, deliverer: Deliverer, ids: Sequence[int], now: datetime
) -> dict[int, Outcome]:
    """Send the held notifications among ``ids`` whose time came, as one digest per channel,
    in this transaction (the caller commits); each one's outcome.

    At-least-once: rows are locked (``SKIP LOCKED``: one another release holds is its to send,
    and left out here) and stay held until the transaction that sent them commits; a worker
    killed before then leaves them held, and beat's next minute sends them again under the
    same digest key. Those whose page is over or acknowledged are skipped, not sent.
    """
    locked = session.execute(
        select(Notification.id, Notification.checkpoint_id, Notification.route)
        .where(
            among(session, Notification.id, ids),
            Notification.status == NotificationState.HELD.value,
            Notification.release_at <= now,
        )
        .order_by(Notification.id)
        .with_for_update(skip_locked=True)
    ).all()
    if not locked:
        return {}
    acks = acknowledged(session, {row.checkpoint_id for row in locked})
    stands: dict[int, bool] = {}
    over = []
    for row in locked:
        if row.checkpoint_id not in stands:
            stands[row.checkpoint_id] = still_stands(session, row.checkpoint_id)
        if (row.checkpoint_id, row.route) in acks or not stands[row.checkpoint_id]:
            over.append(int(row.id))
    if over:
        session.execute(
            update(Notification)
            .where(among(session, Notification.id, over))
            .values(status=NotificationState.SKIPPED.value)
            .execution_options(synchronize_session=False)
        )
    outcomes = {nid: Outcome(Delivery.SKIPPED) for nid in over}
    send = [int(row.id) for row in locked if int(row.id) not in outcomes]
    if send:
        outcomes |= deliverer.deliver_many(session, send, now, sweep=False, batch=True)
    return outcomes
