"""The last good policy folder, kept in the database, so a restart on a broken folder still runs.

Every process that loads a folder that validates saves it (an upsert by hash: the same folder
saved by three processes is one row). A process that starts while the folder does not validate
runs on the newest saved copy, loudly; with no saved copy at all (a first start) it refuses to
start, naming the file, line and field, as ``escalera policy check`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from types import ModuleType

import structlog
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from shared.config import Settings
from shared.db.models import PolicySnapshot
from shared.db.statements import is_postgresql
from shared.errors import PolicyError
from worker.policies.book import Clock, Edition, Outcome, PolicyBook, utc_now

log = structlog.get_logger("escalera.policies")


@dataclass(frozen=True)
class Saved:
    hash: str
    files: dict[str, str]
    saved_at: datetime


def save(sessions: sessionmaker[Session], edition: Edition) -> bool:
    """Keep ``edition``'s files as the last good copy; False (logged) if the database refused."""
    row = {"hash": edition.hash, "files": dict(edition.files), "saved_at": edition.loaded_at}
    try:
        with sessions.begin() as session:
            insert = pg_insert if is_postgresql(session) else sqlite_insert
            statement = insert(PolicySnapshot).values(**row)
            session.execute(
                statement.on_conflict_do_update(
                    index_elements=["hash"], set_={"saved_at": statement.excluded.saved_at}
                )
            )
    except SQLAlchemyError as exc:
        log.warning("policy_snapshot_not_saved", hash=edition.hash, error=type(exc).__name__)
        return False
    return True


def newest(sessions: sessionmaker[Session]) -> Saved | None:
    """The last good copy saved most recently; None if there is none or the database is out."""
    query = select(PolicySnapshot).order_by(
        PolicySnapshot.saved_at.desc(), PolicySnapshot.id.desc()
    )
    try:
        with sessions() as session:
            row = session.scalars(query.limit(1)).first()
    except SQLAlchemyError as exc:
        log.warning("policy_snapshot_unreadable", error=type(exc).__name__)
        return None
    if row is None:
        return None
    return Saved(row.hash, {str(k): str(v) for k, v in row.files.items()}, row.saved_at)


def book_at_start(
    config: Settings, sessions: sessionmaker[Session], clock: Clock = utc_now
) -> PolicyBook:
    """The folder's policies, saved as the last good copy; else that copy; else `PolicyError`."""
    try:
        book = PolicyBook.from_settings(config, clock)
    except PolicyError as error:
        return _on_last_good(config, sessions, error, clock)
    save(sessions, book.edition)
    return book


def _on_last_good(
    config: Settings, sessions: sessionmaker[Session], error: PolicyError, clock: Clock
) -> PolicyBook:
    saved = newest(sessions)
    if saved is None:
        raise error  # a first start: nothing to fall back on
    try:
        book = PolicyBook.last_good(saved.files, config, clock)
    except PolicyError:
        raise error from None  # the copy no longer fits (this version, these settings)
    _metrics().policy_load(Outcome.REFUSED.value)
    log_refused("policies_stale", error, book.edition, saved_at=saved.saved_at.isoformat())
    return book


def log_refused(event: str, error: PolicyError, in_force: Edition, **context: object) -> None:
    """One error line per problem: the file, line and field, and the policies kept in force."""
    for problem in error.problems:
        log.error(
            event,
            file=error.path,
            line=problem.line,
            field=problem.field,
            message=problem.message,
            hash=in_force.hash,
            origin=in_force.origin.value,
            **context,
        )


def _metrics() -> ModuleType:
    """`shared.metrics`, imported late: prometheus_client must not be imported before
    ``escalera worker``/``ingest`` choose where its samples go (`worker.commands.serve`)."""
    from shared import metrics  # noqa: PLC0415 - see the docstring

    return metrics
