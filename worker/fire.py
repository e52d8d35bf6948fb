"""Firing claimed checkpoints: re-check each in the database, mark it fired, write the outbox.

A claim can be stale: a reply may have met the metric (the row is gone) or a pause moved it
later a millisecond before the claim. So each checkpoint is re-read under a row lock, and only
one still armed and due fires. Firing writes one notification per route and channel, keyed
by `worker.notify.outbox`; the key is unique, so a fire task that runs twice for the
same checkpoint (a redelivery) writes nothing the second time. A batch's notifications are
written together, in one multi-row INSERT per 500 (a burst of 100,000 checkpoints is about a
thousand statements, not a hundred thousand round trips).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.db.models import Checkpoint, CheckpointState, Ticket
from worker.notify.outbox import Outgoing, write_notifications
from worker.notify.routing import Fired, routes_for
from worker.policies import PolicyBook


@dataclass
class FireResult:
    fired: list[int] = field(default_factory=list)
    notifications: list[int] = field(default_factory=list)  # new notification ids, to deliver
    later: list[tuple[int, datetime]] = field(default_factory=list)  # moved later: re-arm
    skipped: list[int] = field(default_factory=list)  # met, cancelled or already fired


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
    outgoing: list[Outgoing] = []
    for checkpoint, ticket in session.execute(query).all():
        found.add(checkpoint.id)
        if checkpoint.state != CheckpointState.ARMED.value:
            result.skipped.append(checkpoint.id)
        elif checkpoint.due_at > now:
            result.later.append((checkpoint.id, checkpoint.due_at))
        else:
            checkpoint.state, checkpoint.fired_at = CheckpointState.FIRED.value, now
            result.fired.append(checkpoint.id)
            outgoing += _outgoing(policies, checkpoint, ticket)
    result.skipped += [cid for cid in ids if cid not in found]
    if outgoing:
        session.flush()  # the state changes first, then the outbox rows
        result.notifications = write_notifications(session, outgoing, now)
    return result


def _outgoing(policies: PolicyBook, checkpoint: Checkpoint, ticket: Ticket) -> list[Outgoing]:
    """One notification per route that takes this checkpoint and per channel of the route."""
    policy = policies.named(ticket.policy).policy
    fired = Fired(
        kind=checkpoint.kind,
        metric=checkpoint.metric,
        tier=checkpoint.tier,
        priority=ticket.priority or "",
        plan=ticket.plan or "",
    )
    return [
        Outgoing(checkpoint.id, route.name, channel)
        for route in routes_for(policy, fired)
        for channel in route.channels
    ]
