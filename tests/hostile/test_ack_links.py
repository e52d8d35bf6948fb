"""Acknowledgement links against what link previews, mail scanners and forgers do (issue 13,
item 4): opening one shows the page and only its button acknowledges; links name the page by
its dedupe key, expire, and say who acknowledged. On SQLite and PostgreSQL."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from shared.config import settings
from shared.db.models import Acknowledgement, Notification
from tests.integration.breach import START, add_routes, fire_breach
from tests.integration.services import apply_now
from tests.integration.sinks import JsonSink
from tests.support import event
from worker import tasks
from worker.api.acks import ack_clock
from worker.api.app import create_app
from worker.api.service import services
from worker.notify import deliver as deliver_module
from worker.notify.ack_links import signature
from worker.notify.deliver import Deliverer
from worker.notify.messages import Message
from worker.notify.outcome import Delivery
from worker.notify.paging import ack_signature, repeat_pages
from worker.notify.transport import AppriseSender
from worker.report.service import timeline_report
from worker.runtime import runtime

SENT = START + timedelta(minutes=31)
PUBLIC_URL = "https://escalera.example"
ACK_SECRET = "ack-secret-for-link-tests"
API_TOKEN = "ops-token-for-link-tests"
LINK = re.compile(r"^(?:Acknowledge|Confirmar recepción): (\S+)$", re.MULTILINE)
HTML = {"accept": "text/html,application/xhtml+xml"}
ROUTES = """
channels:
  oncall: {}
routes:
  - {name: page, when: {kinds: [breach]}, channels: [oncall], repeat: {every: 15m, limit: 2}}
"""


class Clock:
    """The instant the ingest app answers at: moved by the test, never slept for."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def desk(
    policy_dir: Path, configured: None, monkeypatch: pytest.MonkeyPatch, sink: JsonSink
) -> None:
    """The soporte-completo preset (Spanish) with a page to `oncall` repeating every 15 min."""
    monkeypatch.setenv("ESCALERA_API_TOKENS", f'["{API_TOKEN}"]')
    monkeypatch.setenv("ESCALERA_ACK_SECRET", ACK_SECRET)
    monkeypatch.setenv("ESCALERA_PUBLIC_URL", PUBLIC_URL)
    monkeypatch.setenv("ESCALERA_CHANNEL_ONCALL", sink.url())
    add_routes(policy_dir, ROUTES)


def fired_page(ticket: str = "P-1", **created: Any) -> int:
    """A P1 ticket whose first-response breach fired at 15:30: its page's notification id."""
    fire_breach(ticket, **created)
    with runtime().sessions() as s:
        return s.scalars(select(Notification.id).where(Notification.route == "page")).one()


def send(notification_id: int, sink: JsonSink, now: datetime = SENT) -> str:
    """Deliver the page to the sink; the acknowledgement link in it."""
    rt = runtime()
    deliverer = Deliverer(
        rt.policies,
        AppriseSender(),
        dict(os.environ),  # the channel, and the links' lifetime if set
        ack_links=(PUBLIC_URL, ACK_SECRET),
    )
    with rt.sessions.begin() as session:
        assert deliverer.deliver(session, notification_id, now).delivery is Delivery.SENT
    found = LINK.search(sink.received[-1]["json"]["message"])
    assert found is not None
    return found[1]


def client(clock: Clock) -> TestClient:
    app = create_app(services(runtime()))
    app.dependency_overrides[ack_clock] = clock
    return TestClient(app)


def path(link: str) -> str:
    assert link.startswith(PUBLIC_URL)
    return link.removeprefix(PUBLIC_URL)


def repeats(ids: Sequence[int], now: datetime) -> list[int]:
    with runtime().sessions.begin() as session:
        return repeat_pages(session, runtime().policies, ids, now).written


def acknowledgements() -> list[tuple[str, datetime, str]]:
    with runtime().sessions() as s:
        rows = s.execute(
            select(
                Acknowledgement.acknowledged_by,
                Acknowledgement.acknowledged_at,
                Acknowledgement.via,
            )
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


def test_opening_a_link_shows_the_page_and_acknowledges_nothing(desk: None, sink: JsonSink) -> None:
    """A link preview or a mail scanner opening the link gets the page (ticket, what is paged,
    deadline, a button that POSTs); nothing is acknowledged and the repeat goes out."""
    page = fired_page()
    link = send(page, sink)
    assert "/v1/acks?key=" in link and "&exp=" in link and "&sig=" in link
    shown = client(Clock(SENT + timedelta(minutes=1))).get(path(link))
    assert shown.status_code == 200
    assert shown.headers["content-type"].startswith("text/html")
    text = shown.text
    assert "api/P-1" in text and "primera respuesta incumplida" in text  # the page's own words
    assert "Plazo: 2026-03-02" in text
    assert '<form method="post"' in text and 'name="name"' in text
    assert '<html lang="es">' in text
    assert acknowledgements() == []
    assert len(repeats([page], SENT + timedelta(minutes=15))) == 1


def test_the_button_acknowledges_says_who_and_stops_the_repeats(desk: None, sink: JsonSink) -> None:
    """The form's POST with a name: acknowledged by that name at that instant, the repeat is not
    written, and the ticket's timeline (report JSON) says who acknowledged."""
    page = fired_page()
    link = send(page, sink)
    clicked = SENT + timedelta(minutes=4)
    answer = client(Clock(clicked)).post(
        path(link),
        content=b"name=++Ana+P%C3%A9rez%0A++",
        headers={"content-type": "application/x-www-form-urlencoded", **HTML},
    )
    assert answer.status_code == 200 and "Confirmado por Ana Pérez" in answer.text
    assert acknowledgements() == [("Ana Pérez", clicked, "link")]
    assert repeats([page], SENT + timedelta(minutes=15)) == []
    with runtime().sessions() as session:
        report = timeline_report(session, runtime().policies, "api", "P-1", clicked)
    acked = [e for e in report.document["timeline"] if e["kind"] == "acknowledgement"]
    assert [(e["what"], e["by"], e["via"]) for e in acked] == [("page", "Ana Pérez", "link")]


def test_acknowledging_twice_keeps_the_first(desk: None, sink: JsonSink) -> None:
    """A second click (or a second person) is harmless: the first who and when stand, and the
    answer and the page say it was already acknowledged."""
    page = fired_page()
    link = send(page, sink)
    first_at = SENT + timedelta(minutes=2)
    form = {"content-type": "application/x-www-form-urlencoded"}
    client(Clock(first_at)).post(path(link), content=b"name=Ana", headers=form)
    again = client(Clock(SENT + timedelta(minutes=9))).post(
        path(link), content=b"name=Bea", headers={**form, "accept": "application/json"}
    )
    assert again.status_code == 200
    assert again.json() | {"acknowledged": 1} == {
        "acknowledged": 1,
        "acknowledged_at": first_at.isoformat(),
        "acknowledged_by": "Ana",
        "via": "link",
        "already": True,
    }
    assert acknowledgements() == [("Ana", first_at, "link")]
    shown = client(Clock(SENT + timedelta(minutes=10))).get(path(link))
    assert "Ya confirmado por Ana" in shown.text


def test_an_expired_link_is_refused(
    desk: None, sink: JsonSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ESCALERA_ACK_LINK_TTL=2h: at 2 h the link works, a second later its page says it
    expired (410) and its button acknowledges nothing; a longer `exp` breaks the signature."""
    monkeypatch.setenv("ESCALERA_ACK_LINK_TTL", "2h")
    settings.cache_clear()
    runtime.cache_clear()
    page = fired_page()
    link = send(page, sink)
    query = parse_qs(urlsplit(link).query)
    assert int(query["exp"][0]) == int((SENT + timedelta(hours=2)).timestamp())
    assert client(Clock(SENT + timedelta(hours=2))).get(path(link)).status_code == 200
    late = client(Clock(SENT + timedelta(hours=2, seconds=1)))
    shown = late.get(path(link), headers=HTML)
    assert shown.status_code == 410 and "caducó" in shown.text
    pressed = late.post(path(link))
    assert pressed.status_code == 410
    assert pressed.headers["content-type"] == "application/problem+json"
    assert pressed.json()["title"] == "Gone"
    longer = path(link).replace(query["exp"][0], str(int(query["exp"][0]) + 86400))
    assert late.post(longer).status_code == 401
    assert acknowledgements() == []
    assert len(repeats([page], SENT + timedelta(minutes=15))) == 1


def test_a_forged_link_is_refused(desk: None, sink: JsonSink) -> None:
    """Another page's key under this link's signature, or a signature by another secret: 401
    naming `sig`, nothing acknowledged."""
    page = fired_page()
    link = send(page, sink)
    query = parse_qs(urlsplit(link).query)
    key, exp = query["key"][0], int(query["exp"][0])
    other = key.replace(":page:", ":other:")
    app = client(Clock(SENT))
    for params in (
        {"key": other, "exp": str(exp), "sig": query["sig"][0]},
        {"key": key, "exp": str(exp), "sig": signature("guess", key, exp)},
    ):
        refused = app.post("/v1/acks", params=params)
        assert (refused.status_code, refused.json()["field"]) == (401, "sig")
    assert acknowledgements() == []


class Clicking(AppriseSender):
    """Sends nothing: keeps each page's link and, if ``click``, a person clicks it the moment
    it is sent (the delivery sending it still open), noting whether its row existed."""

    def __init__(self, app: TestClient) -> None:
        self.app = app
        self.click = True
        self.links: list[str] = []
        self.answers: list[int] = []
        self.row_existed: list[bool] = []

    def send(self, urls: Sequence[str], message: Message, dedupe_key: str) -> list[str | None]:
        found = LINK.search(message.body)
        assert found is not None
        self.links.append(found[1])
        if self.click:
            with runtime().sessions() as s:
                count = select(func.count()).where(Notification.dedupe_key == dedupe_key)
                self.row_existed.append(s.scalar(count) == 1)
            form = {"content-type": "application/x-www-form-urlencoded"}
            answer = self.app.post(path(found[1]), content=b"name=Ana", headers=form)
            self.answers.append(answer.status_code)
        return [None for _ in urls]


def _fire_with(clicking: Clicking, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A P1 breach due, claimed; the fire task's sends go to ``clicking``."""
    monkeypatch.setattr(tasks, "AppriseSender", lambda: clicking)
    monkeypatch.setattr(tasks.deliver_notifications_task, "apply_async", lambda *a, **k: None)
    apply_now(event("created", START, "P-1", priority="P1"))
    return runtime().timers.claim(START + timedelta(minutes=30))


def test_a_link_works_while_its_page_is_being_sent(
    desk: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Clicked while the fire task is still sending (the row stored, its delivery holding it):
    acknowledged, and no repeat follows."""
    clicking = Clicking(client(Clock(datetime.now(UTC))))
    tasks.fire_checkpoints_task.run(_fire_with(clicking, monkeypatch))
    assert clicking.answers == [200]
    assert clicking.row_existed == [True]
    assert [by for by, _, _ in acknowledgements()] == ["Ana"]
    with runtime().sessions() as s:
        (page,) = s.scalars(select(Notification.id).where(Notification.route == "page"))
    assert repeats([page], datetime.now(UTC) + timedelta(minutes=15)) == []


def test_a_link_works_after_its_send_was_rolled_back(
    desk: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database goes away after the page left, before its result was stored: the fire
    transaction rolls back, and the link in the page that left still acknowledges it."""
    clicking = Clicking(client(Clock(datetime.now(UTC))))
    clicking.click = False
    ids = _fire_with(clicking, monkeypatch)

    def cut(*_args: object, **_kwargs: object) -> None:
        raise OperationalError("INSERT …", {}, Exception("connection to the database lost"))

    with monkeypatch.context() as during:
        during.setattr(deliver_module, "write_back", cut)  # sent after storing them pending
        with pytest.raises(OperationalError):
            tasks.fire_checkpoints_task.run(ids)
    (link,) = clicking.links
    answer = clicking.app.post(path(link), headers={"accept": "application/json"})
    assert answer.status_code == 200
    assert answer.json()["acknowledged_by"] == "anonymous via link"
    assert [by for by, _, _ in acknowledgements()] == ["anonymous via link"]


def test_links_sent_before_show_then_acknowledge_until_they_expire(
    desk: None, sink: JsonSink
) -> None:
    """A link of the old shape (``/v1/notifications/{id}/ack?sig=``): its GET shows the page,
    its POST acknowledges, and after the notification's created_at + 24 h it is refused."""
    page = fired_page()
    old = f"/v1/notifications/{page}/ack?sig={ack_signature(ACK_SECRET, page)}"
    written = START + timedelta(minutes=30)
    assert client(Clock(SENT)).get(old).status_code == 200
    assert acknowledgements() == []
    late = client(Clock(written + timedelta(hours=24, seconds=1)))
    assert late.post(old).status_code == 410
    assert client(Clock(SENT)).post(old).status_code == 200
    assert [(by, via) for by, _, via in acknowledgements()] == [("anonymous via link", "link")]


def test_the_api_acknowledges_by_the_keys_name_and_its_get_does_not(desk: None) -> None:
    """POST with a key of the `ack` scope acknowledges, by the key's name; a GET on that path
    with the same key acknowledges nothing; no key is a 401."""
    page = fired_page()
    app = client(Clock(SENT))
    bearer = {"authorization": f"Bearer {API_TOKEN}"}
    assert app.get(f"/v1/notifications/{page}/ack", headers=bearer).status_code == 401
    assert acknowledgements() == []
    assert app.post(f"/v1/notifications/{page}/ack").status_code == 401
    done = app.post(f"/v1/notifications/{page}/ack", headers=bearer)
    assert done.status_code == 200 and done.json()["already"] is False
    ((by, at, via),) = acknowledgements()
    assert (by, at, via) == (done.json()["acknowledged_by"], SENT, "api") and by


def test_every_field_of_the_page_is_html_escaped(desk: None, sink: JsonSink) -> None:
    """A ticket id, a customer and a typed name with markup show as text, never as markup."""
    page = fired_page("<script>alert(1)</script>", customer='<img src=x onerror="boom">')
    link = send(page, sink)
    app = client(Clock(SENT))
    form = {"content-type": "application/x-www-form-urlencoded"}
    done = app.post(path(link), content=b"name=%3Cb%3EEve%3C%2Fb%3E", headers=form)
    shown = app.get(path(link)).text + done.text
    assert "<script>" not in shown and "<img" not in shown and "<b>Eve" not in shown
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in shown
    assert "&lt;b&gt;Eve&lt;/b&gt;" in shown


@pytest.mark.parametrize(
    "body", [b'{"name": "\\ud800 Eve"}', b"[" * 4000, b'{"name": "Eve\\u0000"}']
)
def test_a_name_that_cannot_be_stored_still_acknowledges(
    desk: None, sink: JsonSink, body: bytes
) -> None:
    """A lone surrogate or a NUL in the JSON name, or JSON nested past the parser: the page is
    acknowledged all the same (never a 500), under what of the name can be stored."""
    page = fired_page()
    link = send(page, sink)
    done = client(Clock(SENT)).post(
        path(link), content=body, headers={"content-type": "application/json"}
    )
    assert done.status_code == 200, done.text
    (who, _at, _via), *_ = acknowledgements()
    assert "\ud800" not in who and "\x00" not in who


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_click_does_not_wait_for_a_send_in_progress(desk: None, sink: JsonSink) -> None:
    """A delivery holds the page's row locked while it sends (a retry to a slow target): the
    button answers at once all the same, and the repeat is stopped by the acknowledgement."""
    page = fired_page()
    link = send(page, sink)
    app = client(Clock(SENT + timedelta(minutes=1)))
    answers: list[int] = []
    with runtime().sessions.begin() as sending:
        sending.execute(select(Notification.id).where(Notification.id == page).with_for_update())
        clicking = threading.Thread(target=lambda: answers.append(app.post(path(link)).status_code))
        clicking.start()
        clicking.join(timeout=20)  # a click that waited for the send would still be waiting
        assert answers == [200]
    assert repeats([page], SENT + timedelta(minutes=15)) == []
