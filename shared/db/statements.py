"""Statements both databases need in their own dialect.

On PostgreSQL the worker's batch statements keep their SQL text short and fixed: a list of
values travels as one array parameter (``= ANY(:values)``) and many rows as an executemany of
one statement. psycopg parses a statement's text in Python each time unless it is short, so a
multi-row VALUES or a long IN list cost more than the database's own work
(bench/apply_bench.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    any_,
    bindparam,
    func,
    literal_column,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session


def is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def insert_ignore(
    session: Session, table: Any, values: dict[str, Any], keys: list[str]
) -> int | None:
    """INSERT … ON CONFLICT (keys) DO NOTHING; the new row's id, or None if it existed."""
    assert isinstance(table, Table)
    insert = pg_insert if is_postgresql(session) else sqlite_insert
    statement = insert(table).values(**values).on_conflict_do_nothing(index_elements=keys)
    # rowcount is -1 under psycopg's implicit RETURNING: ask for the row instead
    row = session.execute(statement.returning(table.c.id)).first()
    return None if row is None else int(row[0])


def insert_ignore_many(
    session: Session, table: Any, rows: Sequence[dict[str, Any]], keys: list[str]
) -> None:
    """INSERT … ON CONFLICT (keys) DO NOTHING of many rows, as one executemany."""
    assert isinstance(table, Table)
    if rows:
        insert = pg_insert if is_postgresql(session) else sqlite_insert
        # inline(): no RETURNING of the new ids, which would make psycopg parse long SQL
        statement = insert(table).inline().on_conflict_do_nothing(index_elements=keys)
        session.execute(statement, list(rows))


def among(session: Session, column: Any, values: Sequence[Any]) -> ColumnElement[bool]:
    """``column IN values``: one array parameter on PostgreSQL, a plain IN list elsewhere."""
    if is_postgresql(session):
        array = bindparam(None, list(values), type_=ARRAY(column.type))
        return column == any_(array)  # type: ignore[no-any-return]
    return column.in_(list(values))  # type: ignore[no-any-return]


def next_ids(session: Session, table: Any, count: int) -> list[int] | None:
    """``count`` fresh ids from the table's sequence (PostgreSQL), or None: let INSERT pick."""
    if not is_postgresql(session) or count == 0:
        return None
    sequence = func.pg_get_serial_sequence(table.name, "id")
    query = select(func.nextval(sequence)).select_from(func.generate_series(1, count))
    return [int(row[0]) for row in session.execute(query)]


def insert_rows(
    session: Session,
    table: Any,
    rows: Sequence[dict[str, Any]],
    ignore_conflicts_on: list[str] | None = None,
) -> None:
    """Many rows (same keys) in one ``INSERT … SELECT FROM unnest(arrays)`` on PostgreSQL.

    One short statement with an array per column: no per-row round trip in psycopg's pipeline,
    no long SQL to parse. Elsewhere, an executemany. ``ignore_conflicts_on``: ON CONFLICT (those
    columns) DO NOTHING.
    """
    assert isinstance(table, Table)
    if not rows:
        return
    if not is_postgresql(session):
        if ignore_conflicts_on is None:
            session.execute(table.insert(), list(rows))
        else:
            insert_ignore_many(session, table, rows, ignore_conflicts_on)
        return
    names = list(rows[0])
    arrays = [
        bindparam(None, [row[name] for row in rows], type_=ARRAY(table.c[name].type))
        for name in names
    ]
    source: Select[Any] = select(literal_column("*")).select_from(func.unnest(*arrays).alias("u"))
    statement = pg_insert(table).from_select(names, source)
    if ignore_conflicts_on is not None:
        statement = statement.on_conflict_do_nothing(index_elements=ignore_conflicts_on)
    session.execute(statement)


def update_rows(
    session: Session,
    table: Any,
    rows: Sequence[dict[str, Any]],
    *,
    key: str = "id",
    also: dict[str, Any] | None = None,
    only: ColumnElement[bool] | None = None,
) -> None:
    """UPDATE many rows by ``key``, each to its own values (same columns in every row).

    PostgreSQL: one ``UPDATE … FROM unnest(arrays)``; elsewhere an executemany. ``also``: the
    same extra assignments for every row (SQL expressions, e.g. ``version + 1``); ``only``: a
    condition a row must still meet to be updated (re-checked on a row another transaction
    changed meanwhile).
    """
    condition = true() if only is None else only
    assert isinstance(table, Table)
    if not rows:
        return
    names = [name for name in rows[0] if name != key]
    if not is_postgresql(session):
        statement = (
            table.update()
            .where(table.c[key] == bindparam(f"b_{key}"), condition)
            .values({**{name: bindparam(f"b_{name}") for name in names}, **(also or {})})
        )
        session.execute(statement, [{f"b_{k}": v for k, v in row.items()} for row in rows])
        return
    columns = [key, *names]
    arrays = [
        bindparam(None, [row[name] for row in rows], type_=ARRAY(table.c[name].type))
        for name in columns
    ]
    source = func.unnest(*arrays).table_valued(*columns).render_derived(name="u")
    statement = (
        table.update()
        .where(table.c[key] == source.c[key], condition)
        .values({**{name: source.c[name] for name in names}, **(also or {})})
    )
    session.execute(statement)
