"""Paging semantics: an unacknowledged page repeats on its route's interval, or walks its
route's escalation chain step by step; a person's acknowledgement stops it (as PagerDuty and
Opsgenie do), and so does the end of what it pages about.

An acknowledgement counts for a checkpoint on a route (an `Acknowledgement` row), whatever
notification rows it has: those written later (a repeat, a page stored after its send) are
covered too. The first one is kept, with who and when; acknowledging again changes nothing.

A page's repeats and a chain's steps are one sequence (the notification's ``repeat``: 0 is the
first message; `shared.policy_routes.RouteSpec` says which channels each number tells and when
the next one is due). The database holds when a sent page goes on (``repeat_at``, written with
its sent state); Redis's repeats lane only indexes it, and reconcile rebuilds the lane from it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

import structlog
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from scheduler.timer_index import TimerIndex
from shared.db.models import (
    Acknowledgement,
    Checkpoint,
    Notification,
    NotificationState,
    Ticket,
)
from shared.db.statements import among, insert_ignore
from shared.directory import EMPTY, Directory
from shared.policy_routes import RouteSpec
from worker.notify.outbox import ACK_NOTICE, Outgoing, dedupe_key, write_notifications
from worker.notify.quiet import hold_quiet
from worker.notify.retry import UNFINISHED
from worker.notify.routing import channels_of, log_missing
from worker.policies.book import PolicyBook

log = structlog.get_logger("escalera.paging")


class Page(Protocol):
    repeat: int
    acknowledged_at: datetime | None


def next_repeat(
    route: RouteSpec | None,
    notification: Page,
    sent_at: datetime,
    waits: dict[tuple[int, int], timedelta | None] | None = None,
) -> datetime | None:
    """When a page sent at ``sent_at`` goes on (its next repeat, or its chain's next step);
    None without a repeat, past the last one, or once acknowledged. ``waits``: the routes'
    waits worked out so far, by (route's id, message number), for a batch of the same routes."""
    if route is None or notification.acknowledged_at is not None:
        return None
    if waits is None:
        wait = route.wait_after(notification.repeat)
    else:
        key = (id(route), notification.repeat)
        if key not in waits:
            waits[key] = route.wait_after(notification.repeat)
        wait = waits[key]
    return None if wait is None else sent_at + wait


class StopReason(StrEnum):
    ACKNOWLEDGED = "acknowledged"  # a person acknowledged one of its messages
    OVER = "over"  # what it pages about is over: the clock met, the ticket resolved, escalated


@dataclass(frozen=True)
class Stopped:
    """A page that does not go on: its next message (number ``repeat``) is not sent."""

    source: str
    ticket_id: str
    checkpoint_id: int
    checkpoint: str  # the checkpoint's key
    route: str
    repeat: int
    reason: StopReason
    by: str | None = None  # who acknowledged it, and when
    at: datetime | None = None


@dataclass
class Repeated:
    """What `repeat_pages` did with the pages that fell due."""

    written: list[int] = field(default_factory=list)  # their next messages, to deliver
    held: list[int] = field(default_factory=list)  # next messages their quiet route holds
    # next messages written before and never sent (the task that wrote them died first)
    unsent: list[int] = field(default_factory=list)
    later: list[tuple[int, datetime]] = field(default_factory=list)  # not due yet: re-arm
    stopped: list[Stopped] = field(default_factory=list)
    # who acknowledged, to a channel a step reached as the acknowledgement committed
    notices: list[int] = field(default_factory=list)

    @property
    def to_deliver(self) -> list[int]:
        return [*self.written, *self.unsent, *self.notices]


def repeat_pages(
    session: Session,
    policies: PolicyBook,
    ids: Sequence[int],
    now: datetime,
    *,
    directory: Directory = EMPTY,
) -> Repeated:
    """Write the next message of each page in ``ids`` whose time came, unless acknowledged or
    over (the caller commits): a repeat on the page's own channel, or the channels of its
    chain's next step (a step's ``to``: the ticket's, through ``directory``, the operator's).
    Each page's ``repeat_at`` is cleared: it went on, or it stops.

    At-least-once: a second run writes nothing again (dedupe keys) and hands back the next
    messages still unsent. A storm's pages fall due together: one query for the pages, one for
    their acknowledgements, one multi-row INSERT.
    """
    pages = session.execute(
        select(
            Notification.id,
            Notification.checkpoint_id,
            Notification.route,
            Notification.channel,
            Notification.repeat,
            Notification.repeat_at,
            Notification.status,
            Checkpoint.key,
            Ticket.policy,
            Ticket.source,
            Ticket.ticket_id,
            Ticket.group_name,
            Ticket.assignee,
        )
        .join(Checkpoint, Checkpoint.id == Notification.checkpoint_id)
        .join(Ticket, Ticket.id == Checkpoint.ticket_pk)
        .where(among(session, Notification.id, ids))
        .order_by(Notification.id)
    ).all()
    acks = acknowledged(session, {page.checkpoint_id for page in pages})
    done = Repeated()
    handled: list[int] = []
    outgoing: list[Outgoing] = []
    stopped: dict[tuple[int, str], Stopped] = {}
    for page in pages:
        # NULL: armed before the database kept the time, or handled before (its next message
        # exists, and the dedupe key writes nothing)
        if page.repeat_at is not None and page.repeat_at > now:
            done.later.append((int(page.id), page.repeat_at))
            continue
        handled.append(int(page.id))
        if page.repeat == ACK_NOTICE:  # who acknowledged: told once, whatever comes after
            if page.status in UNFINISHED:
                done.unsent.append(int(page.id))
            continue
        route = _route(policies, page.policy, page.route)
        if route is None or route.wait_after(page.repeat) is None:
            continue  # gone from the policy, or it was the last message
        where, number = (page.checkpoint_id, page.route), page.repeat + 1
        ack = acks.get(where)
        if ack is not None or not still_stands(session, page.checkpoint_id):
            reason = StopReason.OVER if ack is None else StopReason.ACKNOWLEDGED
            by, at = (None, None) if ack is None else ack
            if ack is not None and route.chain and where not in stopped:
                # a step sent as it was acknowledged: the channel it reached hears who has it
                done.notices += write_notices(session, page.checkpoint_id, page.route, now)
            stopped.setdefault(where, Stopped(*_about(page), number, reason, by, at))
            continue
        # a step with `to` tells the ticket's assignee or group as it is now (reassigned: the
        # new one), through the directory, else the step's channels
        told = channels_of(
            policies.named(page.policy).policy,
            route,
            number,
            group=page.group_name,
            assignee=page.assignee,
            directory=directory,
            channel=page.channel,
        )
        for missing in told.missing:
            log_missing(page, page.route, number, missing, checkpoint_id=page.checkpoint_id)
        outgoing += [Outgoing(page.checkpoint_id, page.route, c, number) for c in told.channels]
    outgoing = list(dict.fromkeys(outgoing))  # two channels of a step lead to the same next
    # a quiet route's repeats and steps wait for its opening too (`worker.notify.quiet`)
    policy_of = {int(page.checkpoint_id): page.policy for page in pages}
    outgoing, held = hold_quiet(policies, outgoing, policy_of, now)
    if held:
        done.held = write_notifications(session, held, now)
    if outgoing:
        done.written = write_notifications(session, outgoing, now)
        done.unsent += _unsent(session, outgoing, set(done.written))
    if handled:
        session.execute(
            update(Notification)
            .where(among(session, Notification.id, handled), Notification.repeat_at.is_not(None))
            .values(repeat_at=None)
            .execution_options(synchronize_session=False)
        )
    done.stopped = list(stopped.values())
    return done


def _about(page: Any) -> tuple[str, str, int, str, str]:
    return page.source, page.ticket_id, int(page.checkpoint_id), page.key, page.route


def _route(policies: PolicyBook, policy: str, name: str) -> RouteSpec | None:
    """The route ``name`` of the policy in force (None: the policy or the route is gone)."""
    try:
        routes = policies.named(policy).policy.routes
    except KeyError:
        return None
    return next((route for route in routes if route.name == name), None)


def _unsent(session: Session, outgoing: Sequence[Outgoing], written: set[int]) -> list[int]:
    """Of ``outgoing``, those written before (not now) and not sent yet."""
    keys = [dedupe_key(o.checkpoint_id, o.route, o.channel, o.repeat) for o in outgoing]
    found = session.scalars(
        select(Notification.id)
        .where(
            among(session, Notification.dedupe_key, keys),
            Notification.status.in_([state.value for state in UNFINISHED]),
        )
        .order_by(Notification.id)
    )
    return [nid for nid in found if nid not in written]


def acknowledged(
    session: Session, checkpoint_ids: Iterable[int]
) -> dict[tuple[int, str], tuple[str, datetime]]:
    """Who acknowledged each page of these checkpoints, and when, by (checkpoint, route)."""
    ids = sorted(set(checkpoint_ids))
    if not ids:
        return {}
    query = select(
        Acknowledgement.checkpoint_id,
        Acknowledgement.route,
        Acknowledgement.acknowledged_by,
        Acknowledgement.acknowledged_at,
    ).where(among(session, Acknowledgement.checkpoint_id, ids))
    return {(row[0], row[1]): (row[2], row[3]) for row in session.execute(query)}


ANONYMOUS = "anonymous via link"


@dataclass(frozen=True)
class Acknowledged:
    """The acknowledgement of a page that stands: the first one (who, when, how)."""

    at: datetime
    by: str
    via: str  # link or api
    first: bool  # False: it was acknowledged before, and this is who and when
    notifications: list[int]  # the route's notification rows now: their repeats are disarmed
    stopped: int | None = None  # the message number that was to come next and never will
    # notices to the channels a chain had told: who acknowledged it (`arm_after_ack` sends them)
    notices: list[int] = field(default_factory=list)


def acknowledge_page(
    session: Session,
    checkpoint_id: int,
    route: str,
    *,
    key: str,
    now: datetime,
    by: str,
    via: str,
    policies: PolicyBook | None = None,
) -> Acknowledged | None:
    """Acknowledge the page of ``checkpoint_id`` on ``route`` (None: no such checkpoint).

    One row per (checkpoint, route), the first kept (``INSERT … ON CONFLICT DO NOTHING``: two
    clicks at once store one). The route's notification rows stored now, but for those being
    sent, get its instant too; their next repeat or step is cancelled, and one written but not
    sent yet is skipped (``chain_stopped`` is logged if one was to come).

    When this first acknowledgement stops an escalation chain (of ``policies``' route) before
    its end, every channel the chain had told gets a notice, written here: who acknowledged it,
    and that nobody else will be told. Its ``repeat_at`` is now: the repeats lane sends it
    (`arm_after_ack`), and reconcile finds it in the database if that is lost.
    """
    checkpoint = session.get(Checkpoint, checkpoint_id)
    if checkpoint is None:
        return None
    values = {
        "checkpoint_id": checkpoint_id,
        "route": route,
        "dedupe_key": key,
        "acknowledged_at": now,
        "acknowledged_by": by,
        "via": via,
    }
    first = insert_ignore(session, Acknowledgement.__table__, values, ["checkpoint_id", "route"])
    stands = acknowledgement(session, checkpoint_id, route)
    assert stands is not None  # just written, or written before
    of_route = (Notification.checkpoint_id == checkpoint_id, Notification.route == route)
    # rows a delivery holds while it sends are skipped, not waited for: the acknowledgement row
    # is what stops the repeats, the rows' column only mirrors it
    free = session.execute(
        select(Notification.id, Notification.repeat, Notification.status, Notification.repeat_at)
        .where(*of_route, Notification.acknowledged_at.is_(None))
        .with_for_update(skip_locked=True)
    ).all()
    if free:
        session.execute(
            update(Notification)
            .where(Notification.id.in_([row.id for row in free]))
            .values(acknowledged_at=stands.acknowledged_at, repeat_at=None)
            .execution_options(synchronize_session=False)
        )
    waiting = _waiting(free)
    if waiting:
        session.execute(
            update(Notification)
            .where(Notification.id.in_(waiting))
            .values(status=NotificationState.SKIPPED.value)
            .execution_options(synchronize_session=False)
        )
    stopped = _next_message(free)
    if stopped is not None:
        ticket = session.get_one(Ticket, checkpoint.ticket_pk)
        log.info(
            "chain_stopped",
            source=ticket.source,
            ticket_id=ticket.ticket_id,
            checkpoint=checkpoint.key,
            checkpoint_id=checkpoint_id,
            route=route,
            repeat=stopped,
            reason=StopReason.ACKNOWLEDGED.value,
            by=stands.acknowledged_by,
            acknowledged_at=stands.acknowledged_at.isoformat(),
        )
    # every message of the page so far, those a delivery is sending now too
    told = session.execute(
        select(Notification.id, Notification.repeat).where(*of_route).order_by(Notification.id)
    ).all()
    notices = []
    chain = _chain(session, policies, checkpoint, route)
    # a chain stopped short of its last message: who was told hears who has it
    last = max((row.repeat for row in told), default=0)
    if first is not None and chain is not None and last < chain.last_repeat:
        notices = write_notices(session, checkpoint_id, route, now, due=True)
    return Acknowledged(
        stands.acknowledged_at,
        stands.acknowledged_by,
        stands.via,
        first is not None,
        [int(row.id) for row in told],
        stopped,
        notices,
    )


def _chain(
    session: Session, policies: PolicyBook | None, checkpoint: Checkpoint, name: str
) -> RouteSpec | None:
    """The route ``name`` if it is an escalation chain in the policy of the checkpoint's ticket."""
    if policies is None:
        return None
    route = _route(policies, session.get_one(Ticket, checkpoint.ticket_pk).policy, name)
    return route if route is not None and route.chain else None


def write_notices(
    session: Session, checkpoint_id: int, route: str, now: datetime, *, due: bool = False
) -> list[int]:
    """One acknowledgement notice per channel the chain's messages reached or are reaching,
    due now; their ids. Sent, and also pending or retrying (read after the steps the
    acknowledgement skips): a message a delivery is sending as it commits is told all the same,
    so whoever it reached hears who has it. Not those held in quiet hours, given up, or skipped.

    A channel told before (the dedupe key) gets none again. ``due``: written for the repeats
    lane to send (``repeat_at`` now); else the caller delivers them."""
    reached = [
        NotificationState.SENT.value,
        NotificationState.PENDING.value,
        NotificationState.RETRYING.value,
    ]
    told = session.scalars(
        select(Notification.channel)
        .where(
            Notification.checkpoint_id == checkpoint_id,
            Notification.route == route,
            Notification.repeat >= 0,
            Notification.status.in_(reached),
        )
        .order_by(Notification.id)
    )
    channels = list(dict.fromkeys(told))
    if not channels:
        return []
    outgoing = [Outgoing(checkpoint_id, route, channel, ACK_NOTICE) for channel in channels]
    ids = write_notifications(session, outgoing, now)
    if ids:  # acknowledged already: no repeat after it is sent
        session.execute(
            update(Notification)
            .where(Notification.id.in_(ids))
            .values(acknowledged_at=now, repeat_at=now if due else None)
            .execution_options(synchronize_session=False)
        )
    return ids


def arm_after_ack(lane: TimerIndex | None, done: Acknowledged, now: datetime) -> None:
    """After the acknowledgement committed: its page's repeats leave the repeats lane, and its
    notices join it, due now."""
    if lane is None:
        return
    if done.notifications:
        lane.disarm(done.notifications)
    if done.notices:
        lane.arm([(nid, now) for nid in done.notices])


def _waiting(rows: Sequence[Any]) -> list[int]:
    """Repeats and steps written but not sent yet (the first message is always sent)."""
    unfinished = {state.value for state in UNFINISHED}
    return [int(row.id) for row in rows if row.repeat > 0 and row.status in unfinished]


def _next_message(rows: Sequence[Any]) -> int | None:
    """The first message number of a page that an acknowledgement keeps from going out: one
    written and waiting, or one a sent message was to be followed by."""
    unfinished = {state.value for state in UNFINISHED}
    numbers = [row.repeat + 1 for row in rows if row.repeat_at is not None]
    numbers += [row.repeat for row in rows if row.repeat > 0 and row.status in unfinished]
    return min(numbers, default=None)


def acknowledge(
    session: Session, notification_id: int, now: datetime, *, by: str = "api", via: str = "api"
) -> list[int]:
    """Acknowledge a page by one of its notifications: the ids of its route's notifications
    (none if there is no such notification)."""
    page = session.get(Notification, notification_id)
    if page is None:
        return []
    done = acknowledge_page(
        session, page.checkpoint_id, page.route, key=page.dedupe_key, now=now, by=by, via=via
    )
    return done.notifications if done else []


def acknowledgement(session: Session, checkpoint_id: int, route: str) -> Acknowledgement | None:
    """The acknowledgement of a checkpoint's page on a route, if any."""
    query = select(Acknowledgement).where(
        Acknowledgement.checkpoint_id == checkpoint_id, Acknowledgement.route == route
    )
    return session.scalars(query).first()


def ack_signature(secret: str, notification_id: int) -> str:
    """The signature of a notification's acknowledgement link as sent before links named
    their dedupe key (``/v1/notifications/{id}/ack?sig=``): still honoured until they expire."""
    return hmac.new(secret.encode(), f"ack:{notification_id}".encode(), hashlib.sha256).hexdigest()


def ack_signature_valid(secret: str, notification_id: int, presented: str) -> bool:
    """Constant-time; any text may be presented (compared as bytes: non-ASCII is no error)."""
    expected = ack_signature(secret, notification_id).encode()
    return hmac.compare_digest(expected, presented.encode("utf-8", "surrogatepass"))


_DONE = frozenset({"solved", "closed"})


def page_stands(
    kind: str,
    key: str,
    tier: int | None,
    *,
    status: str | None,
    sla: Mapping[str, Any],
    latest_update: int | None,
    latest_next_reply: int | None = None,
) -> bool:
    """Whether a page is still about something open, from its checkpoint and its ticket's last
    evaluation (``sla``, the `TicketSla` JSON; ``latest_update`` and ``latest_next_reply``, the
    ticket's last cycle of each). Pure."""
    if status in _DONE:
        return False
    if kind == "escalation":
        return tier is None or int(sla.get("tier", 1)) < tier
    # first_response, update#2, next_reply#3, resolution
    clock, cycled, cycle = key.split(":", 1)[0].partition("#")
    latest = {"update": latest_update, "next_reply": latest_next_reply}
    if cycled and int(cycle) != latest.get(clock):
        return False  # a later cycle began (a reply; a new message): this one is over
    return sla.get("metrics", {}).get(clock, {}).get("completed_at") is None


def still_stands(session: Session, checkpoint_id: int) -> bool:
    """A page stops when what it is about is over (met, escalated, resolved), not only on ack."""
    checkpoint = session.get_one(Checkpoint, checkpoint_id)
    ticket = session.get_one(Ticket, checkpoint.ticket_pk)
    cycles = session.scalars(
        select(Checkpoint.key).where(
            Checkpoint.ticket_pk == ticket.id,
            Checkpoint.key.like("update#%") | Checkpoint.key.like("next_reply#%"),
        )
    )
    latest: dict[str, int] = {}
    for key in cycles:
        clock, _, cycle = key.split(":", 1)[0].partition("#")
        latest[clock] = max(latest.get(clock, 0), int(cycle))
    return page_stands(
        checkpoint.kind,
        checkpoint.key,
        checkpoint.tier,
        status=ticket.status,
        sla=ticket.sla or {},
        latest_update=latest.get("update"),
        latest_next_reply=latest.get("next_reply"),
    )
