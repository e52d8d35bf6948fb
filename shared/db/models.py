"""The database is the source of truth: tickets, their events, checkpoints, notifications.

Every change here comes with an Alembic migration in ``shared/migrations/versions``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite has no BIGINT autoincrement: ids there are plain INTEGER (64-bit anyway).
Id = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON().with_variant(JSONB(), "postgresql")


class UtcDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on every database (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} cannot be stored")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime, dict[str, Any]: Json}


class CheckpointState(StrEnum):
    """An armed checkpoint that stops being due (met, paused, re-targeted) is deleted."""

    ARMED = "armed"  # waiting for its due instant
    FIRED = "fired"  # notified (set by fire_checkpoints); kept forever


class NotPaged(StrEnum):
    """Why a fired checkpoint paged nobody (`worker.notify.catch_up` decides it at firing)."""

    CAUGHT_UP = "caught_up"  # a later checkpoint of its clock was due too: that one paged
    TOO_OLD = "too_old"  # due longer ago than the policy's max_catch_up


class NotificationState(StrEnum):
    """A notification's ``status``: where its delivery stands (`worker.notify.retry` decides
    what a failed try leads to)."""

    PENDING = "pending"  # written, not tried yet
    RETRYING = "retrying"  # some targets failed: they are tried again after a backoff
    SENT = "sent"  # every target accepted it
    DEAD = "dead"  # out of attempts, or its channel is not configured: never tried again
    SKIPPED = "skipped"  # a repeat or a chain's step its page's acknowledgement made needless
    HELD = "held"  # written in its route's quiet hours: sent at ``release_at`` (a digest)


# The rows a try is still to come for (pending, retrying): the partial index's condition.
UNFINISHED_ROWS = "status IN ('pending', 'retrying')"


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (UniqueConstraint("source", "ticket_id", name="uq_tickets_source_ticket"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(64))
    ticket_id: Mapped[str] = mapped_column(String(256))
    policy: Mapped[str] = mapped_column(String(64))
    plan: Mapped[str | None] = mapped_column(String(64))
    priority: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime | None]
    # Events have arrived but no `created` yet: they are kept and applied when it comes.
    waiting: Mapped[bool] = mapped_column(default=True)
    sla: Mapped[dict[str, Any] | None]
    evaluated_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # The ticket's context as its events last told it (`scheduler.context.TicketContext`,
    # written with the SLA snapshot; NULL: no event said). Lengths are the event's limits.
    subject: Mapped[str | None] = mapped_column(String(1000))
    group_name: Mapped[str | None] = mapped_column(String(256))  # the event's `group`
    assignee: Mapped[str | None] = mapped_column(String(256))
    tags: Mapped[str | None] = mapped_column(Text)  # a JSON array of strings, on every database
    ticket_type: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str | None] = mapped_column(String(64))
    requester_id: Mapped[str | None] = mapped_column(String(256))


class StoredEvent(Base):
    """Append-only: every accepted canonical event, once per (source, event_id)."""

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("source", "event_id", name="uq_events_source_event"),
        Index("ix_events_ticket", "ticket_pk"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[str] = mapped_column(String(256))
    ticket_pk: Mapped[int] = mapped_column(Id, ForeignKey("tickets.id"))
    type: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    payload: Mapped[dict[str, Any]]


class Checkpoint(Base):
    __tablename__ = "checkpoints"
    __table_args__ = (
        UniqueConstraint("ticket_pk", "key", name="uq_checkpoints_ticket_key"),
        Index("ix_checkpoints_state_due", "state", "due_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    ticket_pk: Mapped[int] = mapped_column(Id, ForeignKey("tickets.id"))
    key: Mapped[str] = mapped_column(String(300))
    metric: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    percent: Mapped[int | None] = mapped_column(Integer)
    tier: Mapped[int | None] = mapped_column(Integer)
    due_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(16), default=CheckpointState.ARMED.value)
    fired_at: Mapped[datetime | None]
    # A `NotPaged`: fired without notifications, and why (reports show it); NULL otherwise.
    not_paged: Mapped[str | None] = mapped_column(String(16))
    caught_up_by: Mapped[str | None] = mapped_column(String(300))  # the key that paged instead
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Notification(Base):
    """One message to one channel for one checkpoint (the outbox the notifier drains)."""

    __tablename__ = "notifications"
    # By checkpoint: a page's repeats and acks, a re-fired checkpoint's pending rows, and the
    # foreign key's check when re-planning deletes a cancelled checkpoint (else a full scan).
    # By next repeat, of the few rows that have one: what reconcile re-arms.
    __table_args__ = (
        Index("ix_notifications_checkpoint", "checkpoint_id"),
        Index(
            "ix_notifications_repeat_at",
            "repeat_at",
            postgresql_where=text("repeat_at IS NOT NULL"),
            sqlite_where=text("repeat_at IS NOT NULL"),
        ),
        # Held in quiet hours, of the few rows held now: what beat's minute releases.
        Index(
            "ix_notifications_release_at",
            "release_at",
            postgresql_where=text("status = 'held'"),
            sqlite_where=text("status = 'held'"),
        ),
        # Unfinished, of the few rows pending or retrying now: those whose try is long overdue
        # (its task lost with Redis) are what beat's minute queues again.
        Index(
            "ix_notifications_next_try_at",
            "next_try_at",
            postgresql_where=text(UNFINISHED_ROWS),
            sqlite_where=text(UNFINISHED_ROWS),
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    checkpoint_id: Mapped[int] = mapped_column(Id, ForeignKey("checkpoints.id"))
    route: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(64))
    repeat: Mapped[int] = mapped_column(Integer, default=0)
    # (checkpoint, route, repeat): a retried or re-fired task never notifies twice
    dedupe_key: Mapped[str] = mapped_column(String(400), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=NotificationState.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # target index (within the channel's URLs) -> delivered?; a retry resends only the others
    results: Mapped[dict[str, Any] | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]
    # A page acknowledged by a person stops repeating (PagerDuty/Opsgenie semantics).
    acknowledged_at: Mapped[datetime | None]
    # When this page's next repeat (or a chain's next step) is due: set in the transaction that
    # records it sent, cleared once that is written, acknowledged or over. Redis's repeats lane
    # is an index of these (`worker.events.reconcile` rebuilds it).
    repeat_at: Mapped[datetime | None]
    # When a notification held in its route's quiet hours is sent: its calendar's next opening
    # (`scheduler.quiet_hours`); kept once sent, to say how long it waited.
    release_at: Mapped[datetime | None]
    # When its next try is due, while it is pending (written: now) or retrying (its backoff,
    # to the minute above, so a storm's rows still write back together); None once it is
    # sent, dead or skipped. The try itself is a task in Redis: one lost with Redis (flushed,
    # failed over) is found long overdue here and queued again (`worker.notify.overdue`).
    next_try_at: Mapped[datetime | None]


class Acknowledgement(Base):
    """A person's acknowledgement of a page: its checkpoint on its route, whatever notification
    rows it has now or later (a link works before its row is stored, and after a rollback).

    The first acknowledgement is kept (who and when); a second one changes nothing.
    """

    __tablename__ = "acknowledgements"
    __table_args__ = (
        UniqueConstraint("checkpoint_id", "route", name="uq_acknowledgements_checkpoint_route"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    # a checkpoint re-planned away (armed again after a rolled-back send) takes its ack along
    checkpoint_id: Mapped[int] = mapped_column(Id, ForeignKey("checkpoints.id", ondelete="CASCADE"))
    route: Mapped[str] = mapped_column(String(64))
    dedupe_key: Mapped[str] = mapped_column(String(400))  # the notification acknowledged by
    acknowledged_at: Mapped[datetime]
    acknowledged_by: Mapped[str] = mapped_column(String(120))  # a name, or the API key's name
    via: Mapped[str] = mapped_column(String(8))  # link or api


class DeadLetter(Base):
    """An event that could not be applied (it fails evaluation, or the database cannot hold it):
    kept with the error, retryable. Its text columns are made storable (a control character
    shows as U+FFFD); ``raw`` is the queue message exactly as it was queued."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[str] = mapped_column(String(256))
    ticket_id: Mapped[str] = mapped_column(String(256))
    payload: Mapped[dict[str, Any]]
    error: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    retried_at: Mapped[datetime | None]
    raw: Mapped[bytes | None] = mapped_column(LargeBinary)


class PolicySnapshot(Base):
    """A policy folder that validated, file name -> text: a process whose folder no longer
    validates starts on the newest one instead of exiting (``worker.policies.store``)."""

    __tablename__ = "policy_snapshots"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    files: Mapped[dict[str, Any]]
    saved_at: Mapped[datetime] = mapped_column(default=utcnow)
