"""The apply_event Celery task's contract: nothing accepted is ever dropped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from shared.db.models import Checkpoint, DeadLetter, StoredEvent
from tests.support import event
from worker import tasks
from worker.runtime import runtime

CREATED = event("created", datetime(2026, 3, 2, 15, 0, tzinfo=UTC), "K-1", priority="P1")


def test_an_event_is_applied_by_the_task_and_its_checkpoints_armed(configured: None) -> None:
    """The task stores the event, then the timer index holds its checkpoints; a reply disarms them."""
    assert tasks.apply_event_task.run(CREATED.model_dump(mode="json")) == "applied"
    with runtime().sessions() as s:
        assert s.scalars(select(StoredEvent.event_id)).all() == [CREATED.event_id]
    assert runtime().timers.count() == (3, 0)  # first response 75 %, 90 % and breach
    assert (
        runtime().timers.next_due()
        == (CREATED.occurred_at + timedelta(minutes=22, seconds=30)).timestamp()
    )
    reply = event("agent_replied", CREATED.occurred_at + timedelta(minutes=10), "K-1")
    tasks.apply_event_task.run(reply.model_dump(mode="json"))
    with runtime().sessions() as s:
        armed = s.scalars(select(Checkpoint.key).where(Checkpoint.state == "armed")).all()
    assert sorted(armed) == [
        "escalation:tier2",
        "escalation:tier3",
        "update#1:breach",
        "update#1:reminder:1",  # planned ahead: a missed update is reminded three times
        "update#1:reminder:2",
        "update#1:reminder:3",
        "update#1:warning:75",
        "update#1:warning:90",
    ]
    assert runtime().timers.count() == (8, 0)
    assert runtime().timers.next_due() == (reply.occurred_at + timedelta(minutes=90)).timestamp()


def test_a_bug_in_evaluation_dead_letters_the_event_instead_of_dropping_it(
    configured: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Celery would ack a task that raised and lose the event: it is dead-lettered with the error."""

    def broken(*_args: object) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(tasks, "apply_event", broken)
    assert tasks.apply_event_task.run(CREATED.model_dump(mode="json")) == "dead_lettered"
    with runtime().sessions() as s:
        dead = s.scalars(select(DeadLetter)).one()
    assert (dead.event_id, dead.error) == (CREATED.event_id, "ZeroDivisionError: a bug")


def test_a_database_error_propagates_so_the_task_is_retried(
    configured: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database outage is not the event's fault: it is retried, not dead-lettered."""

    def down(*_args: object) -> None:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(tasks, "apply_event", down)
    with pytest.raises(OperationalError):
        tasks.apply_event_task.run(CREATED.model_dump(mode="json"))
    with runtime().sessions() as s:
        assert s.scalars(select(DeadLetter)).all() == []
