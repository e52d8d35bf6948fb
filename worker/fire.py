"""Firing claimed checkpoints: re-check each in the database, mark it fired, write the outbox.

A claim can be stale: a reply may have met the metric (the row is gone) or a pause moved it
later a millisecond before the claim. So each checkpoint is re-read under a row lock, and only
one still armed and due fires. Firing writes one notification per route and channel, keyed
by `worker.notify.outbox`; the key is unique, so a fire task that runs twice for the
same checkpoint (a redelivery) writes nothing the second time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.db.models import Checkpoint, CheckpointState, Notification, Ticket
from worker.notify.outbox import write_notification
from worker.notify.routing import Fired, routes_for
from worker.policies import PolicyBook


@dataclass
class FireResult:
    fired: list[int] = field(default_factory=list)
    notifications: list[int] = field(default_factory=list)  # new notification ids, to deliver
    later: list[tuple[int, datetime]] = field(default_factory=list)  # moved later: re-arm
    skipped: list[int] = field(default_factory=list)  # met, cancelled or already fired
    # notifications of an already fired checkpoint still never tried: the task that fired it
    # died after its commit and before handing them to delivery (found by tests/chaos)
    undelivered: list[int] = field(default_factory=list)


def fire_checkpoints(
    session: Session, policies: PolicyBook, ids: Sequence[int], now: datetime
) -> FireResult:
    """Fire the checkpoints among ``ids`` that are still armed and due (the caller commits)."""
    result = FireResult()
    query = (
        select(Checkpoint, Ticket)
        .join(Ticket, Checkpoint.ticket_pk == Ticket.id)
        .where(Checkpoint.id.in_(ids))
        .order_by(Checkpoint.id)
        .with_for_update(of=Checkpoint)
    )
    found = set()
    for checkpoint, ticket in session.execute(query).all():
        found.add(checkpoint.id)
        if checkpoint.state != CheckpointState.ARMED.value:
            result.skipped.append(checkpoint.id)
            if checkpoint.state == CheckpointState.FIRED.value:
                result.undelivered += _never_tried(session, checkpoint.id)
        elif checkpoint.due_at > now:
            result.later.append((checkpoint.id, checkpoint.due_at))
        else:
            _fire(session, policies, checkpoint, ticket, now=now, result=result)
    result.skipped += [cid for cid in ids if cid not in found]
    return result


def _never_tried(session: Session, checkpoint_id: int) -> list[int]:
    """Pending notifications of a fired checkpoint (delivering one twice sends it once)."""
    query = (
        select(Notification.id)
        .where(Notification.checkpoint_id == checkpoint_id, Notification.status == "pending")
        .order_by(Notification.id)
    )
    return list(session.scalars(query))


def _fire(
    session: Session,
    policies: PolicyBook,
    checkpoint: Checkpoint,
    ticket: Ticket,
    *,
    now: datetime,
    result: FireResult,
) -> None:
    checkpoint.state, checkpoint.fired_at = CheckpointState.FIRED.value, now
    result.fired.append(checkpoint.id)
    policy = policies.named(ticket.policy).policy
    fired = Fired(
        kind=checkpoint.kind,
        metric=checkpoint.metric,
        tier=checkpoint.tier,
        priority=ticket.priority or "",
        plan=ticket.plan or "",
    )
    for route in routes_for(policy, fired):
        for channel in route.channels:
            new_id = write_notification(
                session,
                checkpoint_id=checkpoint.id,
                route=route.name,
                channel=channel,
                repeat=0,
                now=now,
            )
            if new_id is not None:
                result.notifications.append(new_id)
