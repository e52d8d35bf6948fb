"""Firing claimed checkpoints: re-check each in the database, mark it fired, write the outbox.

A claim can be stale: a reply may have met the metric (the row is gone) or a pause moved it
later a millisecond before the claim. So each checkpoint is re-checked under a row lock (one
conditional UPDATE for the batch), and only one still armed and due fires. Firing writes one
notification per route and channel, keyed by `worker.notify.outbox`; the key is unique, so a
fire task that runs twice for the same checkpoint (a redelivery) writes nothing the second
time. A batch's notifications are written together, in one statement (a burst of 100,000
checkpoints is a hundred statements, not two hundred thousand round trips), and the task that
fired them delivers them (`worker.tasks.fire_checkpoints_task`). A route that tells the ticket's
assignee or group (``to``) finds their channels in the directory (`worker.notify.routing`); one
it does not know goes to the route's ``channels``, and a log line says so.

A checkpoint found due with a later one of its clock (events that arrived late), or older than
the policy's ``max_catch_up``, fires without notifications: `worker.notify.catch_up` decides,
from the checkpoints due in the database (one more query, only when a batch holds a warning or
a reminder of a ``catch_up: latest`` policy), and the row keeps why (``not_paged``).

A route in its quiet hours (``quiet_outside``) holds its notifications: they are written
``held`` until its calendar's next opening (`worker.notify.quiet`), never delivered here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session

from shared.db.models import Checkpoint, CheckpointState, Notification, Ticket
from shared.db.statements import among, is_postgresql, update_rows
from shared.directory import EMPTY, Directory, Resolved
from shared.policy_routes import RouteSpec
from worker.notify.batch_rows import Note
from worker.notify.catch_up import CatchUpRule, Due, Silence, silence
from worker.notify.facts import ABOUT, checkpoints_about
from worker.notify.outbox import Outgoing, write_notes
from worker.notify.quiet import hold_quiet
from worker.notify.retry import UNFINISHED
from worker.notify.routing import Fired, channels_of, log_missing, routes_for
from worker.policies.book import PolicyBook

_CAUGHT_UP_KINDS = ("warning", "reminder")  # the kinds `CatchUpRule.may_catch_up` can silence


@dataclass
class FireResult:
    fired: list[int] = field(default_factory=list)
    # the fired checkpoints' `worker.notify.facts.ABOUT` rows, by id: what their messages say
    about: dict[int, Any] = field(default_factory=dict)
    notes: list[Note] = field(default_factory=list)  # the notifications to deliver, stored
    held: list[int] = field(default_factory=list)  # written held: their route is quiet now
    # fired without notifications (caught up by a later checkpoint, or too old), by id
    not_paged: dict[int, Silence] = field(default_factory=dict)
    later: list[tuple[int, datetime]] = field(default_factory=list)  # moved later: re-arm
    skipped: list[int] = field(default_factory=list)  # met, cancelled or already fired
    fired_before: list[int] = field(default_factory=list)  # of `skipped`: claimed again
    # notifications of an already fired checkpoint still never tried: the task that fired it
    # died after its commit and before delivering them (found by tests/chaos)
    undelivered: list[int] = field(default_factory=list)

    @property
    def notifications(self) -> list[int]:
        return [note.id for note in self.notes]


def fire_checkpoints(
    session: Session,
    policies: PolicyBook,
    ids: Sequence[int],
    now: datetime,
    *,
    directory: Directory = EMPTY,
) -> FireResult:
    """Fire the checkpoints among ``ids`` that are still armed and due (the caller commits).

    Their notifications are written pending, for the caller to send once this transaction
    committed (`worker.notify.deliver.Deliverer.deliver_written`): nothing is sent while the
    checkpoints are locked. ``directory``: the operator's, for routes that tell the ticket's
    assignee or group (``to``).

    One ``UPDATE … WHERE state = 'armed' AND due_at <= now RETURNING`` checks and marks them,
    and returns, joined with their tickets, all their messages need: it locks each row, and a
    second fire task racing this one re-checks the row after this commits and finds it fired.
    """
    result = FireResult()
    checkpoints = Checkpoint.__table__.c  # Core: the rows come back plain, not through the ORM
    fire = (
        update(cast(Table, Checkpoint.__table__))
        .where(
            among(session, checkpoints.id, ids),
            checkpoints.state == CheckpointState.ARMED.value,
            checkpoints.due_at <= now,
        )
        .values(state=CheckpointState.FIRED.value, fired_at=now)
    )
    if is_postgresql(session):  # UPDATE … FROM tickets … RETURNING both tables' columns
        marked = session.execute(
            fire.where(checkpoints.ticket_pk == Ticket.__table__.c.id).returning(*ABOUT)
        ).all()
    else:  # SQLite returns only the updated table's columns: read the rest after
        fired_ids = list(session.scalars(fire.returning(checkpoints.id)))
        marked = list(checkpoints_about(session, fired_ids).values()) if fired_ids else []
    fired = sorted(marked, key=lambda row: int(row.id))
    result.fired = [int(row.id) for row in fired]
    result.about = {int(row.id): row for row in fired}
    if len(fired) < len(set(ids)):  # a burst fires whole batches: these two queries are rare
        now_fired = set(result.fired)
        rest = [
            row
            for row in session.execute(
                select(Checkpoint.id, Checkpoint.due_at, Checkpoint.state)
                .where(among(session, Checkpoint.id, ids))
                .order_by(Checkpoint.id)
            )
            if int(row.id) not in now_fired
        ]
        result.later = [(int(r.id), r.due_at) for r in rest if r.state == CheckpointState.ARMED]
        result.fired_before = [int(r.id) for r in rest if r.state == CheckpointState.FIRED]
        done = {cid for cid, _ in result.later} | now_fired
        result.skipped = [cid for cid in ids if cid not in done]
        result.undelivered = _never_tried(session, result.skipped)
    result.not_paged = _not_paged(session, policies, fired, now)
    outgoing: list[Outgoing] = []
    routed: dict[tuple[Any, ...], list[RouteSpec]] = {}
    told: dict[tuple[Any, ...], Resolved] = {}
    for row in (row for row in fired if int(row.id) not in result.not_paged):
        what = (row.policy, row.kind, row.metric, row.tier, row.priority or "", row.plan or "")
        if what not in routed:  # a storm is many checkpoints of few kinds: route each kind once
            routed[what] = routes_for(policies.named(row.policy).policy, Fired(*what[1:]))
        for route in routed[what]:
            # the channels a route tells first (an escalation chain: its first step's), and for
            # `to`, the ticket's: per (route, group, assignee), so a storm looks up each once
            whom = (row.policy, route.name, row.group_name, row.assignee)
            if whom not in told:
                told[whom] = channels_of(
                    policies.named(row.policy).policy,
                    route,
                    0,
                    group=row.group_name,
                    assignee=row.assignee,
                    directory=directory,
                )
            resolved = told[whom]
            outgoing += [Outgoing(int(row.id), route.name, c) for c in resolved.channels]
            for missing in resolved.missing:
                log_missing(row, route.name, 0, missing)
    outgoing = list(dict.fromkeys(outgoing))  # a route naming a channel twice: one notification
    policy_of = {int(row.id): row.policy for row in fired}
    outgoing, held = hold_quiet(policies, outgoing, policy_of, now)
    if held:
        result.held = [note.id for note in write_notes(session, held, now)]
    if outgoing:
        result.notes = write_notes(session, outgoing, now)
    return result


def _not_paged(
    session: Session, policies: PolicyBook, fired: Sequence[Any], now: datetime
) -> dict[int, Silence]:
    """The fired checkpoints (`ABOUT` rows) that page nobody, and why, recorded on their rows."""
    rules = {
        name: CatchUpRule.of(policies.named(name).policy) for name in {r.policy for r in fired}
    }
    # only a warning or a reminder is caught up, and only a policy with max_catch_up makes a
    # checkpoint too old: of a storm of breaches under a policy without it, none is looked at
    asked = [
        row
        for row in fired
        if rules[row.policy].max_age is not None or row.kind in _CAUGHT_UP_KINDS
    ]
    due = {int(row.id): (Due(row.ticket_pk, row.key, row.kind, row.due_at), row) for row in asked}
    others = _due_by(
        session, [c for c, row in due.values() if rules[row.policy].may_catch_up(c)], now
    )
    silenced: dict[int, Silence] = {}
    for cid, (checkpoint, row) in due.items():
        why = silence(checkpoint, rules[row.policy], others.get(checkpoint.ticket_pk, []), now)
        if why is not None:
            silenced[cid] = why
    rows = [
        {"id": cid, "not_paged": s.reason.value, "caught_up_by": s.by}
        for cid, s in silenced.items()
    ]
    update_rows(session, Checkpoint.__table__, rows)
    return silenced


def _due_by(session: Session, asking: Sequence[Due], now: datetime) -> dict[int, list[Due]]:
    """The fired checkpoints of ``asking``'s tickets due after the earliest of them and by
    ``now`` (this batch's included: marked fired above, in this transaction), by ticket: one
    query on the (ticket, key) index. One still armed does not count: an event waiting in the
    queue (a reply that arrived late) may yet meet it, and then nothing would page."""
    if not asking:
        return {}
    query = select(Checkpoint.ticket_pk, Checkpoint.key, Checkpoint.kind, Checkpoint.due_at).where(
        among(session, Checkpoint.ticket_pk, sorted({c.ticket_pk for c in asking})),
        Checkpoint.due_at > min(c.due_at for c in asking),
        Checkpoint.due_at <= now,
        Checkpoint.state == CheckpointState.FIRED.value,
    )
    by_ticket: dict[int, list[Due]] = {}
    for row in session.execute(query):
        by_ticket.setdefault(int(row.ticket_pk), []).append(Due(*row))
    return by_ticket


def _never_tried(session: Session, checkpoint_ids: Sequence[int]) -> list[int]:
    """Unfinished notifications of checkpoints fired before: pending (the task that fired them
    died after its commit and before delivering them, found by tests/chaos) or retrying (it
    died before queueing the retry). Delivering one that is being sent meanwhile sends it once
    (its row is locked and its targets recorded)."""
    if not checkpoint_ids:
        return []
    query = (
        select(Notification.id)
        .where(
            among(session, Notification.checkpoint_id, checkpoint_ids),
            # retrying: its retry was to be queued after the commit that the task did not outlive
            Notification.status.in_([state.value for state in UNFINISHED]),
        )
        .order_by(Notification.id)
    )
    return list(session.scalars(query))
