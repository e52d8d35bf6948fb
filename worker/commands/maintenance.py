"""Operating a deployment: ``db upgrade``, ``dead-letters``, ``recompute``."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from shared.config import settings
from shared.db.migrate import upgrade
from shared.db.models import DeadLetter, Ticket
from shared.events import Event
from worker.events.apply import Applied, Outcome, apply_event, reevaluate
from worker.events.reconcile import reconcile_timers
from worker.runtime import runtime

_DONE = ("solved", "closed")


def db_upgrade_command(_args: argparse.Namespace) -> int:
    upgrade(settings().database_url)
    print("database is at the latest schema")
    return 0


def dead_letters_command(args: argparse.Namespace) -> int:
    if args.retry is not None:
        return _retry(args.retry)
    rt = runtime()
    with rt.sessions() as session:
        rows = session.scalars(select(DeadLetter).order_by(DeadLetter.id)).all()
    print(
        f"{len(rows)} dead letters"
        + (" (retry one with: escalera dead-letters --retry ID)" if rows else "")
    )
    for row in rows:  # one line each, so an operator can grep and copy the error whole
        retried = f", retried {row.retried_at:%Y-%m-%d %H:%M}" if row.retried_at else ""
        print(
            f"#{row.id} {row.source}/{row.ticket_id} event {row.event_id} "
            f"({row.created_at:%Y-%m-%d %H:%M}{retried}): {row.error}"
        )
    return 0


def _retry(dead_id: int) -> int:
    """Apply a dead letter again (after the policy was fixed); it stays listed, marked retried."""
    rt = runtime()
    with rt.sessions.begin() as session:
        row = session.get(DeadLetter, dead_id)
        if row is None:
            print(f"no dead letter {dead_id}")
            return 2
        try:
            event = Event.model_validate(row.payload)
        except ValidationError as exc:  # kept for what it held (a NUL, an unreadable message)
            print(f"dead letter {dead_id} holds no event that can be applied: {exc.errors()[0]}")
            return 1
        savepoint = session.begin_nested()
        result = apply_event(session, rt.policies, event, datetime.now(UTC))
        if result.outcome is Outcome.DEAD_LETTERED:
            savepoint.rollback()  # still poison: keep the one dead letter we have
            print(f"dead letter {dead_id} still fails: {result.error}")
            return 1
        savepoint.commit()
        row.retried_at = datetime.now(UTC)
    print(f"dead letter {dead_id}: {result.outcome.value}")
    return 0


def timers_reconcile_command(_args: argparse.Namespace) -> int:
    """Re-arm the Redis timer index from the database (after a Redis restart or flush)."""
    rt = runtime()
    with rt.sessions() as session:
        missing = reconcile_timers(session, rt.timers)
    armed, leased = rt.timers.count()
    print(
        f"{missing} armed checkpoints were missing from Redis and are armed again "
        f"({armed} armed, {leased} being fired)"
    )
    return 0


def recompute_command(args: argparse.Namespace) -> int:
    """Re-apply the current policy to stored tickets and print what changed."""
    rt = runtime()
    now = datetime.now(UTC)
    table = Table(title="recompute")
    for header in ("ticket", "policy", "added", "moved", "cancelled"):
        table.add_column(header)
    count = 0
    with rt.sessions.begin() as session:
        for ticket in session.scalars(_selection(args).with_for_update()):
            loaded = rt.policies.for_source(ticket.source)
            ticket.policy = loaded.name
            result = reevaluate(session, ticket, loaded, now)
            count += 1
            if result.changes:
                table.add_row(
                    f"{ticket.source}/{ticket.ticket_id}", loaded.name, *_describe(result)
                )
    console = Console()
    console.print(table)
    console.print(f"{count} tickets recomputed")
    return 0


def _selection(args: argparse.Namespace):  # type: ignore[no-untyped-def]  # a Select of Ticket
    query = select(Ticket).order_by(Ticket.id)
    if args.ticket:
        source, _, ticket_id = args.ticket.rpartition("/")
        query = query.where(Ticket.ticket_id == ticket_id)
        return query.where(Ticket.source == source) if source else query
    return query.where(Ticket.waiting.is_(False), Ticket.status.not_in(_DONE))


def _describe(result: Applied) -> tuple[str, str, str]:
    changes = result.changes
    added = "\n".join(f"{c.key} {c.due_at:%Y-%m-%d %H:%M}" for c in changes.added)
    moved = "\n".join(
        f"{c.key} {old:%m-%d %H:%M} → {c.due_at:%m-%d %H:%M}" for c, old in changes.moved
    )
    cancelled = "\n".join(c.key for c in changes.cancelled)
    return added, moved, cancelled
