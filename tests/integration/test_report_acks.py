"""`escalera report acks` and `GET /v1/reports/acks` on a real database: pages fired and
delivered by the real pipeline, acknowledged by people; the timeline says who."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.db.models import Checkpoint, Notification, Ticket
from shared.events import Event
from tests.support import event
from worker.api.app import Services, create_app
from worker.cli import main
from worker.events.apply import apply_event
from worker.notify.deliver import Deliverer
from worker.notify.fire import fire_checkpoints
from worker.notify.messages import Message
from worker.notify.paging import acknowledge_page
from worker.runtime import runtime

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
SENT = START + timedelta(minutes=36)
AT = START + timedelta(hours=2)
TOKEN = "acks-token"
ROUTES = """
channels:
  desk: {}
  lead: {}
routes:
  - name: desk
    when: {kinds: [breach]}
    channels: [desk]
  - name: lead
    when: {kinds: [breach]}
    channels: [lead]
"""


class Accepts:
    def send(self, urls: Sequence[str], message: Message, dedupe_key: str) -> list[str | None]:
        return [None for _ in urls]


class Publisher:
    async def publish(self, events: Sequence[Event]) -> None:
        raise AssertionError("reports never publish")


@pytest.fixture
def routed(configured: None, policy_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    preset = policy_dir / "soporte-completo.yaml"
    preset.write_text(preset.read_text() + ROUTES)
    monkeypatch.setenv("ESCALERA_API_TOKENS", json.dumps([TOKEN]))
    runtime.cache_clear()
    from shared.config import settings  # noqa: PLC0415  # cleared with the runtime

    settings.cache_clear()


def _three_breaches_acknowledged() -> None:
    """Three P1s breach first response (30 minutes), paged to desk and lead at 09:36. Ana
    acknowledges T-1 on desk after 4 minutes and T-2 after 10; Luis T-1 on lead after 2."""
    rt = runtime()
    for n in (1, 2, 3):
        with rt.sessions.begin() as session:
            ev = event("created", START, f"T-{n}", priority="P1", customer="acme")
            apply_event(session, rt.policies, ev, START)
    with rt.sessions.begin() as session:
        due = session.scalars(select(Checkpoint.id).where(Checkpoint.due_at <= SENT)).all()
        fired = fire_checkpoints(session, rt.policies, due, SENT)
    env = {"ESCALERA_CHANNEL_DESK": "json://127.0.0.1/d", "ESCALERA_CHANNEL_LEAD": "json://l/"}
    deliverer = Deliverer(rt.policies, Accepts(), env)
    for notification_id in fired.notifications:
        with rt.sessions.begin() as session:
            deliverer.deliver(session, notification_id, SENT)
    for ticket, route, minutes, who in (
        ("T-1", "desk", 4, "Ana"),
        ("T-2", "desk", 10, "Ana"),
        ("T-1", "lead", 2, "Luis"),
    ):
        with rt.sessions.begin() as session:
            page = _page_of(session, ticket, route)
            acknowledge_page(
                session,
                page.checkpoint_id,
                route,
                key=page.dedupe_key,
                now=SENT + timedelta(minutes=minutes),
                by=who,
                via="link",
            )


def _page_of(session: Session, ticket: str, route: str) -> Notification:
    query = (
        select(Notification)
        .join(Checkpoint, Checkpoint.id == Notification.checkpoint_id)
        .join(Ticket, Ticket.id == Checkpoint.ticket_pk)
        .where(Ticket.ticket_id == ticket, Notification.route == route)
    )
    return session.scalars(query).one()


def test_acks_report_per_route_as_json_csv_and_table(
    routed: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _three_breaches_acknowledged()
    period = ["--from", "2026-03-02", "--to", "2026-03-03", "--at", AT.isoformat()]
    assert main(["report", "acks", *period, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["routes"] == [
        {
            "route": "desk",
            "pages": 3,
            "acknowledged": 2,
            "unacknowledged": 1,
            "p50_seconds": 240,
            "p90_seconds": 600,
            "most_acknowledged_by": "Ana",
            "most_acknowledged": 2,
        },
        {
            "route": "lead",
            "pages": 3,
            "acknowledged": 1,
            "unacknowledged": 2,
            "p50_seconds": 120,
            "p90_seconds": 120,
            "most_acknowledged_by": "Luis",
            "most_acknowledged": 1,
        },
    ]
    assert main(["report", "acks", *period, "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["route"], r["p50"], r["p90"], r["most by"]) for r in rows] == [
        ("desk", "0h 04m", "0h 10m", "Ana (2)"),
        ("lead", "0h 02m", "0h 02m", "Luis (1)"),
    ]
    monkeypatch.setenv("COLUMNS", "120")
    assert main(["report", "acks", *period]) == 0
    table = capsys.readouterr().out
    assert "Acknowledgement of pages sent" in table and "Ana (2)" in table


def test_a_period_before_the_pages_lists_no_route(
    routed: None, capsys: pytest.CaptureFixture[str]
) -> None:
    _three_breaches_acknowledged()
    period = ["--from", "2026-03-01", "--to", "2026-03-02", "--at", AT.isoformat()]
    assert main(["report", "acks", *period, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["routes"] == []


def test_the_timeline_says_who_acknowledged(
    routed: None, capsys: pytest.CaptureFixture[str]
) -> None:
    _three_breaches_acknowledged()
    assert main(["report", "timeline", "api/T-1", "--at", AT.isoformat(), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    acks = [
        (e["at"][11:16], e["what"], e["by"], e["via"])
        for e in doc["timeline"]
        if e["kind"] == "acknowledgement"
    ]
    assert sorted(acks) == [("09:38", "lead", "Luis", "link"), ("09:40", "desk", "Ana", "link")]
    sent = [
        e for e in doc["timeline"] if e["kind"] == "notification" and e["what"] == "desk → desk"
    ]
    assert [e["acknowledged_by"] for e in sent] == ["Ana"]


@pytest.fixture
def client(routed: None) -> TestClient:
    rt = runtime()
    services = Services(
        settings=rt.settings,
        policies=rt.policies,
        publisher=Publisher(),
        sessions=rt.sessions,
        webhooks={},
        redis_ping=lambda: True,
    )
    assert rt.settings.api_tokens == [SecretStr(TOKEN)]
    return TestClient(create_app(services), headers={"Authorization": f"Bearer {TOKEN}"})


def test_api_serves_the_acks_report_behind_the_read_scope(client: TestClient) -> None:
    _three_breaches_acknowledged()
    params = {"from": "2026-03-02", "to": "2026-03-03", "at": AT.isoformat()}
    answer = client.get("/v1/reports/acks", params=params)
    assert answer.status_code == 200
    assert [(r["route"], r["acknowledged"]) for r in answer.json()["routes"]] == [
        ("desk", 2),
        ("lead", 1),
    ]
    as_csv = client.get("/v1/reports/acks", params={**params, "format": "csv"})
    assert as_csv.text.startswith("route,pages,acknowledged,unacknowledged,p50,p90,most by\n")
    anonymous = client.get("/v1/reports/acks", params=params, headers={"Authorization": ""})
    assert anonymous.status_code == 401
