"""What a recurring incident's message lists, read when it is delivered: the run's tickets, or
the customers who reported a problem now solved. Worded from the checkpoint's key alone
(`worker.notify.problem_rule.Told`): a message needs no policy to say it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from worker.notify.problem_rule import NOTICE, SOLVED, Told, reporters, run_at
from worker.notify.problem_tickets import occurrences


def problem_listings(session: Session, rows: Sequence[Any]) -> dict[int, dict[str, Any]]:
    """For the `ABOUT` rows of kind ``problem`` or ``problem_solved``, by checkpoint id: the
    problem key and its listing (no query for rows of another kind)."""
    return {int(row.id): _listing(session, row) for row in rows if row.kind in (NOTICE, SOLVED)}


def _listing(session: Session, row: Any) -> dict[str, Any]:
    told = Told.parse(row.key)
    found = occurrences(session, row.policy, told.field, told.problem)
    if told.kind == SOLVED:
        return {"problem": told.problem, "listing": tuple(reporters(found))}
    run = None
    if told.start is not None and told.window is not None:
        run = run_at(found, told.window, told.start)
    tickets = tuple(o.ticket for o in run.tickets) if run else ()
    return {"problem": told.problem, "listing": tickets}
