"""The board's pages and actions on a real database, behind the API's keys and scopes.

A morning is applied and fired at fixed instants and the app's clock is fixed, so what each
page shows follows from the events alone. The browser tests (tests/browser) drive the same
pages in Chromium against `escalera up`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from shared.db.models import Acknowledgement, Checkpoint, DeadLetter
from shared.events import Event
from tests.support import event
from worker.api.app import Services, create_app
from worker.api.board.signin import COOKIE
from worker.events.apply import apply_event
from worker.notify.deliver import Deliverer
from worker.notify.fire import fire_checkpoints
from worker.notify.messages import Message
from worker.report import service
from worker.report.render import to_csv
from worker.report.tickets import Period
from worker.runtime import runtime

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
AT = START + timedelta(minutes=50)
TOKENS = {
    "reader": "reader-token-0123456789",
    "acker": "acker-token-0123456789",
    "writer": "writer-token-0123456789",
    "feeder": "feeder-token-0123456789",
}
KEYS = [
    {"name": "lead", "token": TOKENS["reader"], "scopes": ["read"]},
    {"name": "oncall", "token": TOKENS["acker"], "scopes": ["read", "ack"]},
    {"name": "ops", "token": TOKENS["writer"], "scopes": ["read", "write"]},
    {"name": "feed", "token": TOKENS["feeder"], "scopes": ["write"]},
]
ROUTES = """
channels:
  desk: {}
routes:
  - name: pager
    when: {kinds: [breach]}
    channels: [desk]
    repeat: {every: 15m, limit: 3}
"""


class Accepts:
    def send(self, urls: Sequence[str], message: Message, dedupe_key: str) -> list[str | None]:
        return [None for _ in urls]


class Published:
    """The events queue: what a retried dead letter is put back on."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def publish(self, events: Sequence[Event]) -> None:
        self.events += events


@pytest.fixture
def published(configured: None, policy_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Published:
    preset = policy_dir / "soporte-completo.yaml"
    preset.write_text(preset.read_text() + ROUTES)
    monkeypatch.setenv("ESCALERA_API_KEYS", json.dumps(KEYS))
    monkeypatch.setenv("ESCALERA_CHANNEL_DESK", "json://127.0.0.1/x")
    runtime.cache_clear()
    from shared.config import settings  # noqa: PLC0415  # cleared with the runtime

    settings.cache_clear()
    return Published()


@pytest.fixture
def app(published: Published) -> Any:
    rt = runtime()
    services = Services(
        settings=rt.settings,
        policies=rt.policies,
        publisher=published,
        sessions=rt.sessions,
        webhooks={},
        redis_ping=lambda: True,
    )
    return create_app(services, clock=lambda: AT)


def browser(app: Any, who: str | None = None) -> TestClient:
    """A client that signed in as ``who`` (on https: the cookie is Secure)."""
    client = TestClient(app, base_url="https://testserver", follow_redirects=False)
    if who is not None:
        answer = client.post("/sign-in", data={"token": TOKENS[who], "next": "/"})
        assert answer.status_code == 303, answer.text
    return client


def _apply(*events: Event, now: datetime) -> None:
    rt = runtime()
    for ev in events:
        with rt.sessions.begin() as session:
            apply_event(session, rt.policies, ev, now)


def a_morning() -> None:
    """T-1 (P1) breaches its first response at 15:30 and is paged; T-2 (P2) was answered in
    time; T-3 (P3) is new and far from its deadline."""
    _apply(
        event("created", START, "T-1", priority="P1", customer="acme", subject="POS down"),
        event("created", START, "T-2", priority="P2", customer="zeta", group="billing"),
        event("agent_replied", START + timedelta(minutes=20), "T-2"),
        event("created", START + timedelta(minutes=45), "T-3", priority="P3", customer="acme"),
        now=START + timedelta(minutes=45),
    )
    rt = runtime()
    with rt.sessions.begin() as session:
        due = session.scalars(select(Checkpoint.id).where(Checkpoint.due_at <= AT)).all()
        fired = fire_checkpoints(session, rt.policies, due, AT)
    deliverer = Deliverer(rt.policies, Accepts(), {"ESCALERA_CHANNEL_DESK": "json://127.0.0.1/x"})
    for notification_id in fired.notifications:
        with rt.sessions.begin() as session:
            deliverer.deliver(session, notification_id, AT)


def ticket_order(html: str) -> list[str]:
    return re.findall(r'data-ticket="([^"]+)"', html)


def test_every_page_needs_a_signed_in_key_and_the_probes_stay_open(app: Any) -> None:
    """Without a session a page sends to the sign-in form (and back after it); the live data
    answers 401; the health probe needs nothing."""
    client = browser(app)
    for path in ("/", "/tickets/api/T-1", "/compliance", "/compliance.csv", "/operations"):
        answer = client.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/sign-in?next=")
    assert client.get("/board/at-risk.json").status_code == 401
    assert client.get("/healthz").status_code == 200
    back = client.post("/sign-in", data={"token": TOKENS["reader"], "next": "/compliance"})
    assert back.headers["location"] == "/compliance"


def test_sign_in_sets_a_secure_http_only_cookie_for_a_read_key_only(app: Any) -> None:
    client = browser(app)
    unknown = client.post("/sign-in", data={"token": "nobody-knows-this-token"})
    assert unknown.status_code == 401
    assert COOKIE not in unknown.headers.get("set-cookie", "")
    write_only = client.post("/sign-in", data={"token": TOKENS["feeder"]})
    assert write_only.status_code == 403
    signed = client.post(
        "/sign-in", data={"token": TOKENS["reader"], "next": "//elsewhere.example"}
    )
    assert signed.headers["location"] == "/"  # never sent to another site
    cookie = signed.headers["set-cookie"].lower()
    assert cookie.startswith(f"{COOKIE}=")
    assert {"secure", "httponly", "samesite=strict"} <= {p.strip() for p in cookie.split(";")}
    assert TOKENS["reader"] not in cookie


def test_a_forged_or_stale_cookie_signs_nobody_in(app: Any) -> None:
    client = browser(app, "reader")
    value = client.cookies[COOKIE]
    name, expires, signature = value.split(".")
    for forged in (f"{name}.{int(expires) + 3600}.{signature}", f"{name}.{expires}.x{signature}"):
        client.cookies.set(COOKIE, forged)
        assert client.get("/").status_code == 303


def test_the_board_lists_open_tickets_by_time_left_with_their_state(app: Any) -> None:
    """T-1 breached and leads; T-2's first response was met and its update clock runs; T-3 is
    new. Filters narrow the rows; the JSON the page polls agrees."""
    a_morning()
    client = browser(app, "reader")
    page = client.get("/")
    assert page.status_code == 200
    order = ticket_order(page.text)
    assert set(order) == {"api/T-1", "api/T-2", "api/T-3"}
    live = client.get("/board/at-risk.json").json()
    assert [f"{r['source']}/{r['ticket_id']}" for r in live["rows"]] == order
    lefts = [r["left_seconds"] for r in live["rows"]]
    assert lefts == sorted(lefts)
    states = {r["ticket_id"]: r["state"] for r in live["rows"]}
    assert states == {"T-1": "breached", "T-2": "running", "T-3": "running"}
    assert order[0] == "api/T-1"  # breached at 15:30, nothing ahead: 20 minutes overdue
    assert lefts[0] == -20 * 60
    assert 'class="badge breached"' in page.text
    only_acme = client.get("/board/at-risk.json", params={"customer": "acme"}).json()
    assert {r["ticket_id"] for r in only_acme["rows"]} == {"T-1", "T-3"}
    billing = client.get("/", params={"group": "billing"})
    assert ticket_order(billing.text) == ["api/T-2"]


def test_the_ticket_page_shows_its_timeline_clocks_and_who_acknowledged(app: Any) -> None:
    """A page is acknowledged from the ticket's page: only by a key with `ack`, only with the
    form's token, recorded under the key's name; the timeline then says so."""
    a_morning()
    reader = browser(app, "reader")
    page = reader.get("/tickets/api/T-1")
    assert page.status_code == 200
    assert "POS down" in page.text
    assert "first_response:breach" in page.text
    assert 'class="mark breach fired"' in page.text  # the breach drawn on the clock
    form = _ack_form(page.text)
    refused = reader.post("/board/ack", data=form)
    assert refused.status_code == 403
    assert "ack" in refused.text

    acker = browser(app, "acker")
    form = _ack_form(acker.get("/tickets/api/T-1").text)
    stale = acker.post("/board/ack", data={**form, "csrf": "not-this-one"})
    assert stale.status_code == 403
    done = acker.post("/board/ack", data=form)
    assert done.status_code == 303
    assert done.headers["location"] == "/tickets/api/T-1?acked=1"
    with runtime().sessions() as session:
        ack = session.scalars(select(Acknowledgement)).one()
    assert (ack.acknowledged_by, ack.via, ack.route) == ("oncall", "board", "pager")
    after = acker.get(done.headers["location"]).text
    assert "oncall" in after
    assert 'action="/board/ack"' not in after  # nothing left to acknowledge


def _ack_form(html: str) -> dict[str, str]:
    form = re.search(r'<form method="post" action="/board/ack".*?</form>', html, re.DOTALL)
    assert form is not None, "no acknowledge button on the page"
    return dict(re.findall(r'name="([^"]+)" value="([^"]*)"', form.group(0)))


def test_unknown_ticket_is_a_404_page(app: Any) -> None:
    assert browser(app, "reader").get("/tickets/api/NOPE").status_code == 404


def test_compliance_csv_is_the_report_s_own(app: Any) -> None:
    """The page's CSV is `escalera report compliance --format csv` for the same period."""
    a_morning()
    client = browser(app, "reader")
    page = client.get("/compliance", params={"from": "2026-03-01", "to": "2026-03-02"})
    assert page.status_code == 200
    link = re.search(r'id="csv" href="([^"]+)"', page.text)
    assert link is not None
    download = client.get(link.group(1).replace("&amp;", "&"))
    assert download.headers["content-disposition"].startswith("attachment;")
    rt = runtime()
    loaded = rt.policies.named("soporte-completo")
    zone = ZoneInfo(loaded.policy.default_timezone)
    # both days included: from the first's midnight to the midnight after the second
    period = Period(datetime(2026, 3, 1, tzinfo=zone), datetime(2026, 3, 3, tzinfo=zone), AT)
    with rt.sessions() as session:
        output, _ = service.compliance_report(session, loaded, period)
    assert download.text == to_csv(output.sections[0])
    assert "first_response" in download.text
    assert (
        client.get("/compliance", params={"from": "2026-03-05", "to": "2026-03-01"}).status_code
        == 400
    )


def test_a_dead_letter_is_retried_by_a_write_key_only(app: Any, published: Published) -> None:
    with runtime().sessions.begin() as session:
        bad = event("created", START, "T-9", priority="P1")
        session.add(
            DeadLetter(
                source="api",
                event_id=bad.event_id,
                ticket_id="T-9",
                payload=bad.model_dump(mode="json"),
                error="no such priority",
            )
        )
    reader = browser(app, "reader")
    page = reader.get("/operations")
    assert "no such priority" in page.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    dead_id = re.search(r"/operations/dead-letters/(\d+)/retry", page.text)
    assert dead_id is not None
    path = f"/operations/dead-letters/{dead_id.group(1)}/retry"
    assert reader.post(path, data={"csrf": csrf.group(1)}).status_code == 403
    assert published.events == []

    writer = browser(app, "writer")
    csrf = re.search(r'name="csrf" value="([^"]+)"', writer.get("/operations").text)
    assert csrf is not None
    done = writer.post(path, data={"csrf": csrf.group(1)})
    assert done.status_code == 303
    assert [e.event_id for e in published.events] == [bad.event_id]
    with runtime().sessions() as session:
        assert session.scalars(select(DeadLetter.retried_at)).one() is not None
    assert "retried" in writer.get(done.headers["location"]).text


def test_operations_lists_the_pages_nobody_acknowledged(app: Any) -> None:
    a_morning()
    page = browser(app, "reader").get("/operations")
    assert page.status_code == 200
    assert "api/T-1" in page.text
    assert "pager" in page.text
