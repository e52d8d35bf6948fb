"""Firing claimed checkpoints: re-check each in the database, mark it fired, write the outbox.

A claim can be stale: a reply may have met the metric (the row is gone) or a pause moved it
later a millisecond before the claim. So each checkpoint is re-checked under a row lock (one
conditional UPDATE for the batch), and only one still armed and due fires. Firing writes one
notification per route and channel, keyed by `worker.notify.outbox`; the key is unique, so a
fire task that runs twice for the same checkpoint (a redelivery) writes nothing the second
time. A batch's notifications are written together, in one statement (a burst of 100,000
checkpoints is about a thousand statements, not two hundred thousand round trips).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shared.db.models import Checkpoint, CheckpointState, Notification, Ticket
from shared.db.statements import among
from worker.notify.outbox import Outgoing, write_notifications
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
    """Fire the checkpoints among ``ids`` that are still armed and due (the caller commits).

    One ``UPDATE … WHERE state = 'armed' AND due_at <= now RETURNING`` checks and marks them:
    it locks each row, and a second fire task racing this one re-checks the row after this
    commits and finds it fired.
    """
    result = FireResult()
    marked = session.execute(
        update(Checkpoint)
        .where(
            among(session, Checkpoint.id, ids),
            Checkpoint.state == CheckpointState.ARMED.value,
            Checkpoint.due_at <= now,
        )
        .values(state=CheckpointState.FIRED.value, fired_at=now)
        .returning(
            Checkpoint.id, Checkpoint.ticket_pk, Checkpoint.kind, Checkpoint.metric, Checkpoint.tier
        )
        .execution_options(synchronize_session=False)
    ).all()
    fired = sorted(marked, key=lambda row: int(row.id))
    result.fired = [int(row.id) for row in fired]
    result.later = [
        (int(cid), due)
        for cid, due in session.execute(
            select(Checkpoint.id, Checkpoint.due_at)
            .where(
                among(session, Checkpoint.id, ids),
                Checkpoint.state == CheckpointState.ARMED.value,
            )
            .order_by(Checkpoint.id)
        )
    ]
    moved = {cid for cid, _ in result.later}
    done = moved | set(result.fired)
    result.skipped = [cid for cid in ids if cid not in done]
    result.undelivered = _never_tried(session, result.skipped)
    if not fired:
        return result
    tickets = {
        ticket.id: ticket
        for ticket in session.execute(
            select(Ticket.id, Ticket.policy, Ticket.priority, Ticket.plan).where(
                among(session, Ticket.id, sorted({row.ticket_pk for row in fired}))
            )
        )
    }
    outgoing: list[Outgoing] = []
    for row in fired:
        ticket = tickets[row.ticket_pk]
        outgoing += _outgoing(
            policies,
            int(row.id),
            ticket.policy,
            Fired(
                kind=row.kind,
                metric=row.metric,
                tier=row.tier,
                priority=ticket.priority or "",
                plan=ticket.plan or "",
            ),
        )
    if outgoing:
        result.notifications = write_notifications(session, outgoing, now)
    return result


def _outgoing(
    policies: PolicyBook, checkpoint_id: int, policy_name: str, fired: Fired
) -> list[Outgoing]:
    """One notification per route that takes this checkpoint and per channel of the route."""
    policy = policies.named(policy_name).policy
    return [
        Outgoing(checkpoint_id, route.name, channel)
        for route in routes_for(policy, fired)
        for channel in route.channels
    ]


def _never_tried(session: Session, checkpoint_ids: Sequence[int]) -> list[int]:
    """Pending notifications of checkpoints fired before: the task that fired them died after
    its commit and before handing them to delivery (found by tests/chaos). Delivering one that
    is being sent meanwhile sends it once (its row is locked and its targets recorded)."""
    if not checkpoint_ids:
        return []
    query = (
        select(Notification.id)
        .where(
            among(session, Notification.checkpoint_id, checkpoint_ids),
            Notification.status == "pending",
        )
        .order_by(Notification.id)
    )
    return list(session.scalars(query))
