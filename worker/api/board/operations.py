"""What the operations page reads: dead letters, pages nobody acknowledged, the timer index and
the queues, the policies in force. Reads only; a dead letter's retry is the caller's (it goes
back on the events queue, the way every event is applied).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from scheduler.timer_index import TimerIndex
from shared.db.models import (
    Acknowledgement,
    Checkpoint,
    CheckpointState,
    DeadLetter,
    Notification,
    Ticket,
)
from shared.metrics_export import QueueDepth
from worker.policies.book import PolicyBook
from worker.report.tickets import DONE

SHOWN = 200  # rows of a list on the page: the newest first


@dataclass(frozen=True)
class UnackedPage:
    source: str
    ticket_id: str
    checkpoint: str
    checkpoint_id: int
    route: str
    channel: str
    first_sent: datetime
    repeats: int


@dataclass(frozen=True)
class TimerState:
    armed_in_database: int
    armed: int | None  # None: Redis did not answer
    leased: int | None
    earliest_due: datetime | None
    repeats_armed: int | None
    queues: dict[str, int]


def dead_letters(session: Session) -> list[DeadLetter]:
    query = select(DeadLetter).order_by(DeadLetter.id.desc()).limit(SHOWN)
    return list(session.scalars(query))


def unacked_pages(session: Session, policies: PolicyBook) -> list[UnackedPage]:
    """Pages of open tickets, on a route that repeats, that nobody acknowledged: one per
    checkpoint and route, with how many times it was sent again."""
    query = (
        select(Notification, Checkpoint.key, Ticket.source, Ticket.ticket_id, Ticket.policy)
        .join(Checkpoint, Notification.checkpoint_id == Checkpoint.id)
        .join(Ticket, Checkpoint.ticket_pk == Ticket.id)
        .outerjoin(
            Acknowledgement,
            (Acknowledgement.checkpoint_id == Notification.checkpoint_id)
            & (Acknowledgement.route == Notification.route),
        )
        .where(Acknowledgement.id.is_(None), Notification.acknowledged_at.is_(None))
        .where(Ticket.status.is_(None) | Ticket.status.not_in(DONE))
        .order_by(Notification.id.desc())
        .limit(SHOWN * 10)
    )
    pages: dict[tuple[int, str], UnackedPage] = {}
    for note, key, source, ticket_id, policy in session.execute(query):
        if not _repeats(policies, policy, note.route):
            continue
        where = (note.checkpoint_id, note.route)
        known = pages.get(where)
        first = min(note.created_at, known.first_sent) if known else note.created_at
        repeats = max(note.repeat, known.repeats) if known else note.repeat
        pages[where] = UnackedPage(
            source, ticket_id, key, note.checkpoint_id, note.route, note.channel, first, repeats
        )
    return sorted(pages.values(), key=lambda p: p.first_sent)[:SHOWN]


def timer_state(
    session: Session,
    timers: TimerIndex | None,
    repeats: TimerIndex | None,
    depth: QueueDepth | None,
) -> TimerState:
    armed_db = session.scalar(
        select(func.count())
        .select_from(Checkpoint)
        .where(Checkpoint.state == CheckpointState.ARMED)
    )
    try:
        armed, leased = timers.count() if timers else (None, None)
        earliest = timers.next_due() if timers else None
        repeats_armed = repeats.count()[0] if repeats else None
        queues = depth.depths() if depth else {}
    except Exception:  # Redis not answering is what the page shows, not an error page
        armed = leased = repeats_armed = None
        earliest, queues = None, {}
    return TimerState(
        int(armed_db or 0),
        armed,
        leased,
        datetime.fromtimestamp(earliest, UTC) if earliest is not None else None,
        repeats_armed,
        queues,
    )


def policy_rows(
    policies: PolicyBook, default: str, sources: dict[str, str]
) -> list[tuple[str, str, list[str]]]:
    """Each policy in force: its name, its language, the sources it judges."""
    edition = policies.edition
    rows: list[tuple[str, str, list[str]]] = []
    for name, loaded in sorted(edition.policies.items()):
        judged = sorted(source for source, policy in sources.items() if policy == name)
        if name == default:
            judged.insert(0, "*")
        rows.append((name, loaded.policy.language, judged))
    return rows


def _repeats(policies: PolicyBook, policy: str, route: str) -> bool:
    try:
        loaded = policies.named(policy)
    except KeyError:
        return False
    return any(r.name == route and r.repeat is not None for r in loaded.policy.routes)
