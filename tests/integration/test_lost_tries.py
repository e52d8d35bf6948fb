"""A notification whose next try was lost with Redis is tried again, from the database.

A failed page's retry, and a delivery task queued for pending rows, are Celery tasks in Redis.
Redis flushed (or failed over to a replica behind) loses those no worker had taken, and the row
stayed ``retrying`` (or ``pending``) for good: nobody paged, no fallback told. Now the row keeps
when its next try is due, and beat's minute (`tasks.reconcile_timers_task`) queues again the
tries overdue by more than `overdue.LOST_AFTER`.

The tasks queued are kept, not run, which is what losing them looks like to the row; the test
moves the rows' times back instead of waiting (the clock is the database's column).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from shared.config import settings
from shared.db.models import Notification
from tests.integration.breach import BREACH_AT, START, add_routes, fire_breach
from tests.integration.services import apply_now
from tests.integration.sinks import JsonSink
from tests.support import event
from worker import tasks
from worker.notify.overdue import LOST_AFTER
from worker.runtime import runtime

PAGING = """
channels:
  oncall_phone: {}
routes:
  - {name: p1-page, when: {priorities: [P1], kinds: [breach]}, channels: [oncall_phone], attempts: 5}
catch_up: all
"""


@pytest.fixture
def phone(
    policy_dir: Path, configured: None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[JsonSink, list[list[Any]]]]:
    """The on-call phone (a webhook) and the delivery tasks queued (their arguments), not run."""
    add_routes(policy_dir, PAGING)
    sink = JsonSink()
    monkeypatch.setenv("ESCALERA_CHANNEL_ONCALL_PHONE", sink.url("phone"))
    queued: list[list[Any]] = []

    def keep(*_args: Any, args: list[Any], **_options: Any) -> None:
        queued.append(list(args))

    monkeypatch.setattr(tasks.deliver_notifications_task, "apply_async", keep)
    settings.cache_clear()
    runtime.cache_clear()
    yield sink, queued
    sink.close()


def _page() -> Notification:
    with runtime().sessions() as s:
        return s.scalars(select(Notification).where(Notification.channel == "oncall_phone")).one()


def _time_passes(by: timedelta) -> None:
    """The pages' next tries came ``by`` earlier than they were set to."""
    with runtime().sessions.begin() as s:
        for note in s.scalars(select(Notification).where(Notification.next_try_at.is_not(None))):
            s.execute(
                update(Notification)
                .where(Notification.id == note.id)
                .values(next_try_at=note.next_try_at - by)
            )


def _beats_minute(queued: list[list[Any]]) -> list[list[Any]]:
    """Beat's minute, run here; the delivery tasks it queued (their arguments)."""
    queued.clear()
    tasks.reconcile_timers_task.run()
    return list(queued)


def _ids(queued: list[list[Any]]) -> list[list[int]]:
    return [args[0] for args in queued]


def _received(sink: JsonSink) -> list[str]:
    return [r["headers"]["X-Escalera-Dedupe-Key"] for r in sink.received]


def test_a_retry_lost_with_redis_is_queued_again_and_the_page_arrives_once(
    phone: tuple[JsonSink, list[list[Any]]],
) -> None:
    sink, queued = phone
    sink.failing = True  # the phone refuses the first try: the page's retry is queued
    apply_now(event("created", START, "P-1", priority="P1"))
    assert tasks.fire_checkpoints_task.run(runtime().timers.claim(BREACH_AT)) == 3
    page = _page()
    assert (page.status, page.attempts, _ids(queued)) == ("retrying", 1, [[page.id]])
    assert page.next_try_at is not None
    assert page.next_try_at > datetime.now(UTC)  # its backoff, to the minute above

    # that retry task is lost (Redis flushed): not run. Its time has not come: nothing moves
    assert _beats_minute(queued) == []
    sink.failing = False
    _time_passes(LOST_AFTER + timedelta(minutes=10))
    swept = _beats_minute(queued)
    assert _ids(swept) == [[page.id]]  # long overdue: tried again
    assert _beats_minute(queued) == []  # once per LOST_AFTER, not every minute

    assert tasks.deliver_notifications_task.run(*swept[0]) == 1
    page = _page()
    assert (page.status, page.attempts, page.next_try_at) == ("sent", 2, None)
    assert _received(sink) == [page.dedupe_key]
    _time_passes(LOST_AFTER + timedelta(minutes=10))  # nothing of a sent page is ever due
    assert _beats_minute(queued) == []
    assert _received(sink) == [page.dedupe_key]


def test_pages_written_by_a_fire_task_that_died_are_delivered_after_a_redis_flush(
    phone: tuple[JsonSink, list[list[Any]]],
) -> None:
    """The fire task committed the fired breach and its pending page, and died before
    delivering it; Redis, flushed, lost its claim, so no fire task will look at it again."""
    sink, queued = phone
    fired = fire_breach("P-2")  # fired and written at BREACH_AT, months ago, never delivered
    page = _page()
    assert (fired.notifications, page.status, page.next_try_at) == (
        [page.id],
        "pending",
        BREACH_AT,
    )
    swept = _beats_minute(queued)
    assert _ids(swept) == [[page.id]]
    assert tasks.deliver_notifications_task.run(*swept[0]) == 1
    assert (_page().status, _received(sink)) == ("sent", [page.dedupe_key])


def test_a_retry_merely_late_is_not_tried_twice_by_the_sweep(
    phone: tuple[JsonSink, list[list[Any]]],
) -> None:
    """Its retry waits in a deep queue past `LOST_AFTER`, so beat's minute queues it again;
    the late retry then runs (the phone still refusing) and sets the next backoff. The sweep's
    task, behind it, finds the page tried since and leaves it to that backoff: no try back to
    back, no second retry chain using up the page's attempts twice as fast."""
    sink, queued = phone
    sink.failing = True
    apply_now(event("created", START, "P-3", priority="P1"))
    tasks.fire_checkpoints_task.run(runtime().timers.claim(BREACH_AT))
    (late_retry,) = queued
    _time_passes(LOST_AFTER + timedelta(minutes=10))
    (swept,) = _beats_minute(queued)
    queued.clear()
    assert tasks.deliver_notifications_task.run(*late_retry) == 0  # refused again
    assert (_page().attempts, len(queued)) == (2, 1)  # its next retry, at its backoff
    assert tasks.deliver_notifications_task.run(*swept) == 0
    assert (_page().status, _page().attempts, len(queued)) == ("retrying", 2, 1)
