"""`escalera report` and `GET /v1/reports/...` on a real database, fed by the real pipeline."""

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

from shared.events import Event
from tests.support import event
from worker.api.app import Services, create_app
from worker.cli import main
from worker.events.apply import apply_event
from worker.notify.deliver import Deliverer
from worker.notify.fire import fire_checkpoints
from worker.notify.messages import Message
from worker.runtime import runtime

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
TOKEN = "report-token"
ROUTES = """
channels:
  desk: {}
routes:
  - name: desk
    when: {kinds: [warning, breach]}
    channels: [desk]
"""


class Accepts:
    """A channel that takes every message."""

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


def _apply(*events: Event, now: datetime) -> None:
    rt = runtime()
    for ev in events:
        with rt.sessions.begin() as session:
            apply_event(session, rt.policies, ev, now)


def _a_morning() -> None:
    """T-1 waits on the customer 10 minutes, breaches first response, is told to the desk;
    T-2 was answered in time; T-3 is still running."""
    _apply(
        event("created", START, "T-1", priority="P1", customer="acme", requester="ana@acme.mx"),
        event("status_changed", START + timedelta(minutes=5), "T-1", status="pending"),
        event("status_changed", START + timedelta(minutes=15), "T-1", status="open"),
        event("created", START, "T-2", priority="P2", customer="zeta"),
        event("agent_replied", START + timedelta(minutes=20), "T-2"),
        event("created", START + timedelta(minutes=50), "T-3", priority="P3", customer="acme"),
        now=START + timedelta(minutes=50),
    )
    rt = runtime()
    with rt.sessions.begin() as session:
        from sqlalchemy import select  # noqa: PLC0415

        from shared.db.models import Checkpoint  # noqa: PLC0415

        due = session.scalars(
            select(Checkpoint.id).where(Checkpoint.due_at <= START + timedelta(minutes=41))
        ).all()
        fired = fire_checkpoints(session, rt.policies, due, START + timedelta(minutes=41))
    deliverer = Deliverer(rt.policies, Accepts(), {"ESCALERA_CHANNEL_DESK": "json://127.0.0.1/x"})
    for notification_id in fired.notifications:
        with rt.sessions.begin() as session:
            deliverer.deliver(session, notification_id, START + timedelta(minutes=42))


AT = START + timedelta(hours=1)


def test_timeline_shows_events_pause_checkpoints_and_delivered_notifications(
    routed: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ticket's story in order: created, paused 10 minutes, the warnings and the breach at
    their (pause-shifted) instants, each notification with its delivery result. Fired together
    at 09:41, the warnings were caught up by the breach: the timeline says so, and only the
    breach was sent (the policy's default ``catch_up: latest``)."""
    _a_morning()
    assert main(["report", "timeline", "api/T-1", "--at", AT.isoformat(), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    steps = [(e["at"][11:16], e["kind"], e["what"]) for e in doc["timeline"]]
    assert steps[:5] == [
        ("09:00", "event", "created"),
        ("09:05", "event", "status_changed"),
        ("09:05", "pause", "pending"),
        ("09:15", "event", "status_changed"),
        ("09:15", "resume", "open"),
    ]
    fired = [
        (e["at"][11:19], e["what"], e["state"], e.get("not_paged"))
        for e in doc["timeline"]
        if e["kind"] == "checkpoint"
    ]
    # 30 minutes of working time, 10 of them paused: 75 % at 09:32:30, breach at 09:40
    assert fired == [
        ("09:32:30", "first_response:warning:75", "fired", "caught up by first_response:breach"),
        ("09:37:00", "first_response:warning:90", "fired", "caught up by first_response:breach"),
        ("09:40:00", "first_response:breach", "fired", None),
    ]
    sent = [e for e in doc["timeline"] if e["kind"] == "notification"]
    assert [
        (e["at"][11:16], e["checkpoint"], e["status"], e["delivered_at"][11:16]) for e in sent
    ] == [("09:41", "first_response:breach", "sent", "09:42")]
    assert doc["metrics"]["first_response"]["state"] == "breached"

    monkeypatch.setenv("COLUMNS", "200")  # rich folds long cells on a narrow terminal
    assert main(["report", "timeline", "api/T-1", "--at", AT.isoformat()]) == 0
    table = capsys.readouterr().out
    assert "first_response:warning:75" in table and "desk → desk" in table and "pending" in table
    assert "not_paged=caught up by first_response:breach" in table


def test_timeline_of_an_unknown_ticket_names_it(
    routed: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "timeline", "api/NOPE"]) == 2
    assert "no events for ticket api/NOPE" in capsys.readouterr().err


def test_at_risk_lists_open_tickets_soonest_first_as_csv(
    routed: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """T-1 breached with nothing more ahead (no reply yet, so no update or escalation clock):
    it is overdue, not at risk. T-2's update warning comes before T-3's first-response one."""
    _a_morning()
    at = START + timedelta(minutes=55)
    assert main(["report", "at-risk", "--at", at.isoformat(), "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    # at 09:55: T-2 (P2) updates every 4h from its 09:20 reply, 75 % at 12:20;
    # T-3 (P3) answers within 4h of 09:50, 75 % at 12:50
    assert [(r["ticket"], r["next"], r["left"]) for r in rows] == [
        ("api/T-2", "update#1:warning:75", "2h 25m"),
        ("api/T-3", "first_response:warning:75", "2h 55m"),
    ]


def test_compliance_plot_is_a_png_and_csv_has_every_row(
    routed: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _a_morning()
    png = tmp_path / "compliance.png"
    args = ["report", "compliance", "--from", "2026-03-01", "--to", "2026-03-03"]
    assert main([*args, "--at", AT.isoformat(), "--format", "csv", "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    overall = next(r for r in rows if r["by"] == "all" and r["metric"] == "first_response")
    assert (overall["met"], overall["breached"], overall["open"]) == ("1", "1", "1")
    assert (overall["share"], overall["commitment"], overall["kept"]) == ("50.0 %", "95 %", "NO")


def test_plot_must_be_a_png(routed: None, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["report", "compliance", "--plot", "out.svg"])
    assert "the plot is a PNG file" in capsys.readouterr().err


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


def test_api_serves_the_same_reports_as_json_and_csv(client: TestClient) -> None:
    _a_morning()
    at = AT.isoformat()
    timeline = client.get("/v1/reports/timeline/api/T-1", params={"at": at})
    assert timeline.status_code == 200
    assert timeline.json()["timeline"][0]["what"] == "created"
    risk = client.get("/v1/reports/at-risk", params={"at": at})
    assert [t["ticket_id"] for t in risk.json()["tickets"]] == ["T-2", "T-3"]
    report = client.get(
        "/v1/reports/compliance", params={"at": at, "from": "2026-03-01", "format": "csv"}
    )
    assert report.headers["content-type"].startswith("text/csv")
    assert report.text.startswith("by,group,metric,met,breached,open,share,commitment,kept\n")


def test_api_refuses_without_a_token_and_explains_bad_queries(client: TestClient) -> None:
    anonymous = client.get("/v1/reports/at-risk", headers={"Authorization": ""})
    assert anonymous.status_code == 401
    naive = client.get("/v1/reports/at-risk", params={"at": "2026-03-02T10:00:00"})
    assert naive.status_code == 400 and naive.json()["field"] == "at"
    backwards = client.get(
        "/v1/reports/compliance", params={"from": "2026-03-05", "to": "2026-03-01"}
    )
    assert backwards.status_code == 400 and backwards.json()["field"] == "from"
    unknown = client.get("/v1/reports/timeline/api/NOPE")
    assert unknown.status_code == 404 and "api/NOPE" in unknown.json()["detail"]
    policy = client.get("/v1/reports/allowances", params={"policy": "nope"})
    assert policy.status_code == 400 and policy.json()["field"] == "policy"
