"""Beat's minute finds the long-overdue tries through their partial index, on SQLite too.

`worker.notify.overdue.overdue_tries` runs every minute over the notifications table, which
keeps every notification ever sent. Migration 0012 gave it a partial index of the unfinished
rows (``status IN ('pending', 'retrying')``) so that minute reads only the few rows pending or
retrying now. SQLite uses a partial index only when the query's condition matches the index's
own; a condition it cannot match (bound parameters in an ``IN`` list) makes it read the whole
table every minute, sorting it as well.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event

from shared.db.engine import make_engine, session_factory
from shared.db.migrate import upgrade
from worker.notify.overdue import overdue_tries


def test_the_sweep_reads_the_unfinished_rows_by_their_index_not_the_whole_table(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'escalera.db'}"
    upgrade(url)  # the schema as the migrations make it, with its partial index
    engine = make_engine(url)
    queries: list[tuple[str, Any]] = []

    def seen(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            queries.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", seen)
    with session_factory(engine).begin() as session:
        assert overdue_tries(session, datetime.now(UTC)) == []
    event.remove(engine, "before_cursor_execute", seen)

    [(statement, parameters)] = queries
    with engine.connect() as connection:
        plan = [
            row[-1]
            for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        ]
    engine.dispose()
    # by the index, in its order: no scan of every notification, no sort of them
    assert len(plan) == 1, plan
    assert plan[0].startswith("SEARCH notifications USING INDEX ix_notifications_next_try_at")
