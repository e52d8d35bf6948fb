"""Beat re-arms lost timers: once at start and every minute (issue 4: nothing lost after FLUSHALL)."""

from __future__ import annotations

from typing import Any

import pytest

from scheduler.beat import EscaleraScheduler
from shared.celery_app import RECONCILE_TIMERS, make_celery
from shared.config import Settings


def test_reconcile_is_sent_at_start_and_scheduled_every_minute(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = make_celery(Settings(redis_prefix="escalera-test-beat"))
    sent: list[str] = []

    def send_task(name: str, *_args: Any, **_kwargs: Any) -> None:
        sent.append(name)

    monkeypatch.setattr(app, "send_task", send_task)
    scheduler = EscaleraScheduler(app=app, lazy=False)
    assert sent == [RECONCILE_TIMERS]
    entry = scheduler.schedule["reconcile-timers"]
    assert entry.task == RECONCILE_TIMERS
    assert entry.schedule.run_every.total_seconds() <= 60
