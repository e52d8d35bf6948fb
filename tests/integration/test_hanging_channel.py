"""A channel that hangs (it takes the request and never answers) holds nothing else: while
the fire task waits on it, events of the same ticket are applied and the other channels of the
same page are told. On PostgreSQL and SQLite, through the fire task and the applier."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from shared.config import settings
from shared.db.models import Notification
from tests.integration.breach import START, add_routes
from tests.integration.services import apply_now
from tests.integration.sinks import HangingSink, JsonSink
from tests.support import event
from worker import tasks
from worker.runtime import runtime

ROUTES = """
channels:
  oncall_phone: {}
  support_chat: {}
routes:
  - {name: p1-page, when: {priorities: [P1], kinds: [breach]}, channels: [oncall_phone, support_chat]}
catch_up: all
"""
WAIT_S = 20  # far beyond a commit; far below the minute the hanging channel would hold it


@pytest.fixture
def channels(
    policy_dir: Path, configured: None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[HangingSink, JsonSink]]:
    add_routes(policy_dir, ROUTES)
    phone, chat = HangingSink(), JsonSink()
    monkeypatch.setenv("ESCALERA_CHANNEL_ONCALL_PHONE", phone.url("phone"))
    monkeypatch.setenv("ESCALERA_CHANNEL_SUPPORT_CHAT", chat.url("chat"))
    monkeypatch.setattr(tasks.deliver_notifications_task, "apply_async", lambda *a, **k: None)
    settings.cache_clear()
    runtime.cache_clear()
    yield phone, chat
    phone.close()
    chat.close()


def test_a_hanging_channel_delays_neither_the_ticket_s_events_nor_the_other_channel(
    channels: tuple[HangingSink, JsonSink],
) -> None:
    """The P1 breach pages the phone (hanging) and the chat. While the phone holds the fire
    task, the chat has its page, and the agent's reply of a minute before the deadline (a
    portal's late delivery: it touches the very checkpoints being fired) is applied; once the
    phone answers, both notifications are stored sent."""
    phone, chat = channels
    apply_now(event("created", START, "H-1", priority="P1"))
    ids = runtime().timers.claim(START + timedelta(minutes=30))
    firing = threading.Thread(target=tasks.fire_checkpoints_task.run, args=(ids,), daemon=True)
    firing.start()
    assert phone.arrived.wait(WAIT_S), "the phone was never called"

    replied = threading.Thread(
        target=apply_now,
        args=(event("agent_replied", START + timedelta(minutes=29), "H-1", public=True),),
        daemon=True,
    )
    replied.start()
    replied.join(WAIT_S)
    held = replied.is_alive()
    told_chat = len(chat.received)
    phone.release()
    firing.join(WAIT_S)
    replied.join(WAIT_S)
    assert not held, "the reply waited for the hanging channel"
    assert told_chat == 1, "the chat waited for the hanging channel"
    assert not firing.is_alive()
    with runtime().sessions() as session:
        states = sorted(session.scalars(select(Notification.status)))
    assert states == ["sent", "sent"]
