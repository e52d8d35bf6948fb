"""Statements both databases need in their own dialect."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session


def insert_ignore(
    session: Session, table: Any, values: dict[str, Any], keys: list[str]
) -> int | None:
    """INSERT … ON CONFLICT (keys) DO NOTHING; the new row's id, or None if it existed."""
    assert isinstance(table, Table)
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(table).values(**values).on_conflict_do_nothing(index_elements=keys)
    # rowcount is -1 under psycopg's implicit RETURNING: ask for the row instead
    row = session.execute(statement.returning(table.c.id)).first()
    return None if row is None else int(row[0])


def insert_ignore_many(
    session: Session,
    table: Any,
    rows: Sequence[dict[str, Any]],
    keys: list[str],
    returning: Sequence[str] = (),
) -> list[Row[Any]]:
    """One multi-row INSERT … ON CONFLICT (keys) DO NOTHING; ``returning`` of the new rows."""
    assert isinstance(table, Table)
    if not rows:
        return []
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(table).values(list(rows)).on_conflict_do_nothing(index_elements=keys)
    if not returning:
        session.execute(statement)
        return []
    return list(session.execute(statement.returning(*(table.c[name] for name in returning))))
