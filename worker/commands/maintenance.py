"""Operating a deployment: ``db upgrade``, ``dead-letters``, ``recompute`` (and its dry run)."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from shared.config import settings
from shared.db.engine import make_engine, session_factory
from shared.db.migrate import upgrade
from shared.db.models import DeadLetter, Ticket
from shared.errors import EscaleraError
from shared.events import Event
from shared.policy_file import load_policy
from worker.commands.compare import show, zone_of
from worker.commands.report import DEFAULT_DAYS
from worker.events.apply import Applied, Outcome, apply_event, reevaluate, stored_events
from worker.events.reconcile import reconcile_repeats, reconcile_timers
from worker.policies.book import LoadedPolicy, PolicyBook
from worker.report.compare import Side, compare
from worker.report.compare_views import comparison_json
from worker.report.render import iso
from worker.runtime import runtime

_DONE = ("solved", "closed")
# What only a dry run reads: recompute itself re-applies the policies in force, nothing else.
_DRY_RUN_ONLY = (
    ("all", "--all"),
    ("policy", "--policy"),
    ("from_", "--from"),
    ("to", "--to"),
    ("at", "--at"),
    ("format", "--format"),
)


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
    """Re-arm the Redis timer indexes from the database (after a Redis restart or flush):
    armed checkpoints, and pages' coming repeats and chain steps."""
    rt = runtime()
    with rt.sessions() as session:
        missing = reconcile_timers(session, rt.timers)
        repeats = reconcile_repeats(session, rt.repeats)
    armed, leased = rt.timers.count()
    print(
        f"{missing} armed checkpoints were missing from Redis and are armed again "
        f"({armed} armed, {leased} being fired)"
    )
    coming, repeating = rt.repeats.count()
    print(
        f"{repeats} page repeats were missing from Redis and are armed again "
        f"({coming} coming, {repeating} being sent)"
    )
    return 0


def recompute_command(args: argparse.Namespace) -> int:
    """Re-apply the current policy to stored tickets and print what changed (with
    ``--dry-run``, what another policy would change, writing nothing)."""
    if args.dry_run:
        return _dry_run(args)
    given = [flag for name, flag in _DRY_RUN_ONLY if getattr(args, name)]
    if given:
        raise EscaleraError(
            f"{given[0]} goes with --dry-run: recompute itself re-applies the policies in force"
        )
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
    if args.all:
        return query.where(Ticket.waiting.is_(False))
    return query.where(Ticket.waiting.is_(False), Ticket.status.not_in(_DONE))


def _dry_run(args: argparse.Namespace) -> int:
    """The chosen tickets judged under the policy each is stored under (as the reports judge
    it) and under ``--policy FILE``. It only reads: no Redis, no transaction that writes, and
    the policy folder is read without being saved as a starting process saves it."""
    if args.policy is None:
        raise EscaleraError("recompute --dry-run needs --policy FILE: the policy to compare")
    new = Side.of(args.policy, load_policy(args.policy))
    zone = zone_of(new)
    at: datetime = args.at or datetime.now(UTC)
    created = _created(args, zone, at)
    config = settings()
    book = PolicyBook.from_settings(config)
    engine = make_engine(config.database_url)
    try:
        with session_factory(engine)() as session:
            stored = _stored_histories(session, book, _chosen(args, at, created))
    finally:
        engine.dispose()
    reports = [
        compare(
            Side(loaded.name, loaded.policy, loaded.calendars), new, tickets, at, created=created
        )
        for loaded, tickets in stored
    ]
    document = {
        "new": new.label,
        "at": iso(at, zone),
        "comparisons": [comparison_json(report, zone) for report in reports],
    }
    show(reports, zone, args.format or "table", document)
    if not reports and args.format in (None, "table"):
        print("no stored ticket matches")
    return 0


def _chosen(
    args: argparse.Namespace, at: datetime, created: tuple[datetime, datetime] | None
) -> Select[Ticket]:
    query: Select[Ticket] = _selection(args).where(Ticket.created_at <= at)
    if created is not None:
        query = query.where(Ticket.created_at >= created[0], Ticket.created_at < created[1])
    return query


def _stored_histories(
    session: Session, book: PolicyBook, query: Select[Ticket]
) -> list[tuple[LoadedPolicy, list[list[Event]]]]:
    """The chosen tickets' events, grouped by the policy each is stored under (its source's
    policy if that one is no longer in the folder)."""
    groups: dict[str, tuple[LoadedPolicy, list[list[Event]]]] = {}
    for ticket in session.scalars(query):
        try:
            loaded = book.named(ticket.policy)
        except KeyError:
            loaded = book.for_source(ticket.source)
        groups.setdefault(loaded.name, (loaded, []))[1].append(stored_events(session, ticket))
    return list(groups.values())


def _created(
    args: argparse.Namespace, zone: ZoneInfo, at: datetime
) -> tuple[datetime, datetime] | None:
    """``[--from, --to)`` as ``report compliance`` reads them (a day is its midnight in
    ``zone``; --to defaults to --at, --from to 30 days before --to); None when neither is
    given: every chosen ticket created by ``--at``."""
    if args.from_ is None and args.to is None:
        return None
    end = _instant(args.to, zone) if args.to is not None else at
    start = (
        _instant(args.from_, zone) if args.from_ is not None else end - timedelta(days=DEFAULT_DAYS)
    )
    if end <= start:
        raise EscaleraError(f"--from ({start.isoformat()}) must be before --to ({end.isoformat()})")
    return start, end


def _instant(value: date | datetime, zone: ZoneInfo) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.combine(value, time(0), tzinfo=zone)


def _describe(result: Applied) -> tuple[str, str, str]:
    changes = result.changes
    added = "\n".join(f"{c.key} {c.due_at:%Y-%m-%d %H:%M}" for c in changes.added)
    moved = "\n".join(
        f"{c.key} {old:%m-%d %H:%M} → {c.due_at:%m-%d %H:%M}" for c, old in changes.moved
    )
    cancelled = "\n".join(c.key for c in changes.cancelled)
    return added, moved, cancelled
