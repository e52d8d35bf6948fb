"""Paging semantics: an unacknowledged page repeats up to its limit; acknowledging stops it."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.db.models import Notification, NotificationState
from tests.integration.breach import START, add_routes, fire_breach
from tests.integration.services import REDIS_URL
from tests.integration.sinks import JsonSink
from worker.api.acks import ack_clock
from worker.api.app import create_app
from worker.api.service import services
from worker.cli import main
from worker.notify.deliver import Deliverer
from worker.notify.outbox import ACK_NOTICE, Outgoing, write_notifications
from worker.notify.outcome import Delivery
from worker.notify.paging import ack_signature, acknowledge, repeat_pages
from worker.notify.transport import AppriseSender
from worker.runtime import runtime

ACK_SECRET = "ack-secret-for-tests"
ROUTES = """
channels:
  oncall: {}
routes:
  - {name: page, when: {kinds: [breach]}, channels: [oncall], repeat: {every: 15m, limit: 2}}
"""


@pytest.fixture
def page(policy_dir: Path, configured: None, monkeypatch: pytest.MonkeyPatch) -> int:
    """A fired P1 breach with its page to `oncall` (a route that repeats every 15 minutes, twice)."""
    monkeypatch.setenv("ESCALERA_API_TOKENS", '["ops-token"]')
    monkeypatch.setenv("ESCALERA_ACK_SECRET", ACK_SECRET)
    monkeypatch.setenv("ESCALERA_PUBLIC_URL", "https://escalera.example")
    add_routes(policy_dir, ROUTES)
    fire_breach("P-1")
    with runtime().sessions() as s:
        return s.scalars(select(Notification.id)).one()


def deliver(notification_id: int, sink: JsonSink, now: datetime):  # type: ignore[no-untyped-def]
    deliverer = Deliverer(
        runtime().policies,
        AppriseSender(),
        {"ESCALERA_CHANNEL_ONCALL": sink.url()},
        ack_links=("https://escalera.example", ACK_SECRET),
    )
    with runtime().sessions.begin() as session:
        return deliverer.deliver(session, notification_id, now)


def repeat(ids: list[int], now: datetime) -> list[int]:
    with runtime().sessions.begin() as session:
        return repeat_pages(session, runtime().policies, ids, now).written


def test_an_unacknowledged_page_repeats_up_to_its_limit(page: int, sink: JsonSink) -> None:
    """Sent at 15:31, again at 15:46 and 16:01, and then no more (limit 2)."""
    sent = START + timedelta(minutes=31)
    first = deliver(page, sink, sent)
    assert (first.delivery, first.repeat_at) == (Delivery.SENT, sent + timedelta(minutes=15))
    (second,) = repeat([page], first.repeat_at)
    again = deliver(second, sink, first.repeat_at)
    assert again.repeat_at == sent + timedelta(minutes=30)
    (third,) = repeat([second], again.repeat_at)
    assert deliver(third, sink, again.repeat_at).repeat_at is None
    assert len(sink.received) == 3
    keys = [m["headers"]["X-Escalera-Dedupe-Key"].rsplit(":", 1)[1] for m in sink.received]
    assert keys == ["0", "1", "2"]


def test_the_link_shows_the_page_and_its_button_acknowledges(page: int, sink: JsonSink) -> None:
    """Opening the link in the page (as a link preview does) shows it and acknowledges nothing;
    its button (a POST) acknowledges it, and the repeat that was due is not sent."""
    sent = START + timedelta(minutes=31)
    deliver(page, sink, sent)
    link = next(
        line.split(": ", 1)[1]
        for line in sink.received[0]["json"]["message"].splitlines()
        if line.startswith("Confirmar")
    )
    assert link.startswith("https://escalera.example/v1/acks?key=")
    app = create_app(services(runtime()))
    app.dependency_overrides[ack_clock] = lambda: sent + timedelta(minutes=5)
    client = TestClient(app)
    opened = client.get(link.removeprefix("https://escalera.example"))
    assert opened.status_code == 200 and opened.headers["content-type"].startswith("text/html")
    (second,) = repeat([page], START + timedelta(minutes=46))  # not acknowledged: it repeats
    pressed = client.post(
        link.removeprefix("https://escalera.example"), headers={"accept": "application/json"}
    )
    assert (pressed.status_code, pressed.json()["acknowledged"]) == (200, 2)
    assert repeat([second], START + timedelta(minutes=61)) == []  # acknowledged: no more


def test_acknowledging_by_api_needs_the_token_and_a_forged_link_is_refused(page: int) -> None:
    """POST with the API token acknowledges; a link signed with another secret is a 401."""
    client = TestClient(create_app(services(runtime())))
    forged = client.get(
        f"/v1/notifications/{page}/ack", params={"sig": ack_signature("guess", page)}
    )
    assert forged.status_code == 401
    assert client.post(f"/v1/notifications/{page}/ack").status_code == 401
    ok = client.post(f"/v1/notifications/{page}/ack", headers={"authorization": "Bearer ops-token"})
    assert ok.status_code == 200
    assert (
        client.post(
            "/v1/notifications/999999/ack", headers={"authorization": "Bearer ops-token"}
        ).status_code
        == 404
    )


@pytest.mark.parametrize("lost", ["never_armed", "lane_flushed"])
def test_a_page_repeats_even_when_redis_never_held_its_repeat(
    page: int, sink: JsonSink, lost: str
) -> None:
    """The worker recorded the page sent and died before arming its repeat in Redis, or Redis
    lost the repeats lane: beat's reconcile (``escalera timers reconcile``) arms it again from
    the database, and the page repeats at its time, not earlier."""
    sent = START + timedelta(minutes=31)
    first = deliver(page, sink, sent)
    assert first.repeat_at == sent + timedelta(minutes=15)
    repeats = runtime().repeats
    if lost == "lane_flushed":
        repeats.arm([(page, first.repeat_at)])
        redis.Redis.from_url(REDIS_URL).delete(repeats.keys.due)
    assert repeats.count() == (0, 0)
    assert main(["timers", "reconcile"]) == 0
    assert repeats.claim(first.repeat_at - timedelta(seconds=1)) == []
    assert repeats.claim(first.repeat_at) == [page]


def repeat_at(notification_id: int) -> datetime | None:
    with runtime().sessions() as session:
        return session.get_one(Notification, notification_id).repeat_at


def test_only_what_is_still_coming_is_armed_again(page: int, sink: JsonSink) -> None:
    """A page whose repeat was written no longer waits for it, and an acknowledged page waits
    for nothing: after Redis loses the lane, reconcile arms nothing, and nothing is sent twice."""
    sent = START + timedelta(minutes=31)
    first = deliver(page, sink, sent)
    assert first.repeat_at is not None and repeat_at(page) == first.repeat_at
    (second,) = repeat([page], first.repeat_at)
    assert repeat_at(page) is None  # went on: its repeat is written
    assert deliver(second, sink, first.repeat_at).repeat_at == repeat_at(second)
    with runtime().sessions.begin() as session:
        acknowledge(session, second, first.repeat_at + timedelta(minutes=2), by="Ana")
    assert repeat_at(second) is None
    runtime().repeats.arm([(page, first.repeat_at)])  # a stale member: the lane's own copy
    redis.Redis.from_url(REDIS_URL).delete(runtime().repeats.keys.due)
    assert main(["timers", "reconcile"]) == 0
    assert runtime().repeats.count() == (0, 0)
    assert repeat([page, second], first.repeat_at + timedelta(minutes=30)) == []
    assert len(sink.received) == 2


def test_a_repeat_written_before_the_acknowledgement_is_never_sent(
    page: int, sink: JsonSink
) -> None:
    """The repeat was written and its delivery was still queued when the page was acknowledged:
    it is skipped, not sent (nothing of a page reaches anyone after its acknowledgement)."""
    sent = START + timedelta(minutes=31)
    first = deliver(page, sink, sent)
    assert first.repeat_at is not None
    (second,) = repeat([page], first.repeat_at)
    with runtime().sessions.begin() as session:
        acknowledge(session, page, first.repeat_at + timedelta(seconds=5), by="Ana")
    assert (
        deliver(second, sink, first.repeat_at + timedelta(seconds=6)).delivery is Delivery.SKIPPED
    )
    with runtime().sessions() as session:
        assert session.get_one(Notification, second).status == NotificationState.SKIPPED
    assert len(sink.received) == 1


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_repeat_held_by_a_delivery_while_acknowledged_is_skipped_when_its_turn_comes(
    page: int, sink: JsonSink
) -> None:
    """The acknowledgement cannot touch a row another transaction holds (it skips it rather
    than wait); the delivery that comes for it next reads the acknowledgement and skips it."""
    sent = START + timedelta(minutes=31)
    first = deliver(page, sink, sent)
    assert first.repeat_at is not None
    (second,) = repeat([page], first.repeat_at)
    with runtime().sessions.begin() as holder:
        holder.execute(select(Notification.id).where(Notification.id == second).with_for_update())
        with runtime().sessions.begin() as session:
            acknowledge(session, page, first.repeat_at + timedelta(seconds=5), by="Ana")
    with runtime().sessions() as session:
        assert session.get_one(Notification, second).status == NotificationState.PENDING
    assert (
        deliver(second, sink, first.repeat_at + timedelta(seconds=6)).delivery is Delivery.SKIPPED
    )
    assert len(sink.received) == 1


def test_a_notice_due_with_a_repeat_in_the_same_task_is_handed_to_delivery(
    page: int, sink: JsonSink
) -> None:
    """An acknowledgement notice falling due in the same repeat task as another page's next
    message is delivered too (found by the full kill -9 trial: 152 notices left pending)."""
    sent = START + timedelta(minutes=31)
    first = deliver(page, sink, sent)
    with runtime().sessions.begin() as session:
        checkpoint = session.get_one(Notification, page).checkpoint_id
        (notice,) = write_notices_for(session, checkpoint, first.repeat_at)
    with runtime().sessions.begin() as session:
        done = repeat_pages(session, runtime().policies, [page, notice], first.repeat_at)
    assert len(done.written) == 1
    assert notice in done.to_deliver


def write_notices_for(session: Session, checkpoint: int, now: datetime) -> list[int]:
    """A pending notice of who acknowledged, to ``oncall``, as an acknowledgement writes it."""
    return write_notifications(session, [Outgoing(checkpoint, "other", "oncall", ACK_NOTICE)], now)
