"""Contract allowances (seed 004) on a real database: warnings at 80 % and 100 %, once each."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from shared.config import settings
from shared.db.models import Checkpoint, Notification
from tests.support import PRESETS, event
from worker.cli import main
from worker.events.apply import apply_event
from worker.runtime import runtime

CUSTOMERS = """
customers:
  acme: {plan: standard, go_live: 2026-01-05, contacts: [ana@acme.es, Luis@acme.es]}
  beta: {plan: plus}
"""
MARCH = datetime(2026, 3, 9, 9, 0, tzinfo=UTC)  # after acme's two months of grace


@pytest.fixture
def athento(configured: None, policy_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Zendesk tickets go to the Athento preset, with acme on the Standard plan (50 a year)."""
    (policy_dir / "athento.yaml").write_text((PRESETS / "athento.yaml").read_text() + CUSTOMERS)
    monkeypatch.setenv("ESCALERA_SOURCE_POLICIES", json.dumps({"zendesk": "athento"}))
    settings.cache_clear()
    runtime.cache_clear()


def created(ticket: str, at: datetime, customer: str = "acme", **fields: object) -> None:
    rt = runtime()
    ev = event("created", at, ticket, source="zendesk", priority="P3", customer=customer, **fields)
    with rt.sessions.begin() as session:
        apply_event(session, rt.policies, ev, at + timedelta(minutes=1))


def warnings() -> list[tuple[str, int | None, str, str]]:
    with runtime().sessions() as session:
        rows = session.execute(
            select(Checkpoint.key, Checkpoint.percent, Notification.route, Notification.channel)
            .join(Notification, Notification.checkpoint_id == Checkpoint.id)
            .where(Checkpoint.metric == "allowance")
            .order_by(Checkpoint.id)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


def test_a_customer_is_warned_once_at_80_and_once_at_100_percent(athento: None) -> None:
    """Standard allows 50 tickets a year: the 40th and the 50th counted tickets warn the support
    mailbox, once each; tickets in the grace months, last year or of a plan without allowance
    do not count, and a repeated created event changes nothing."""
    created("Z-2025", datetime(2025, 12, 20, 10, tzinfo=UTC))  # last year's allowance
    for n in range(3):  # within two months of the 2026-01-05 go-live
        created(f"Z-G{n}", datetime(2026, 2, 2 + n, 10, tzinfo=UTC))
    created("B-1", MARCH, customer="beta")  # Plus: no allowance
    for n in range(1, 40):
        created(f"Z-{n}", MARCH + timedelta(hours=n))
    assert warnings() == []

    created("Z-40", MARCH + timedelta(hours=40))
    eighty = ("allowance:acme:2026-01-01:80", 80, "allowance", "support_email")
    assert warnings() == [eighty]
    rt = runtime()
    with rt.sessions.begin() as session:  # the same created event, delivered again
        repeat = event("created", MARCH, "Z-40", source="zendesk", priority="P3", customer="acme")
        apply_event(session, rt.policies, repeat, MARCH + timedelta(days=3))
    created("Z-40b", MARCH + timedelta(hours=40, minutes=30), customer="beta")
    assert warnings() == [eighty]

    for n in range(41, 51):
        created(f"Z-{n}", MARCH + timedelta(hours=n))
    assert warnings() == [
        eighty,
        ("allowance:acme:2026-01-01:100", 100, "allowance", "support_email"),
    ]


def test_allowance_report_counts_the_year_and_flags_unknown_contacts(
    athento: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """The report shows what was counted and excluded, the levels reached, and the events
    reported by someone not on the customer's list (case does not matter)."""
    created("Z-G", datetime(2026, 2, 2, 10, tzinfo=UTC), requester="ana@acme.es")
    created("Z-1", MARCH, requester="LUIS@acme.es")
    created("Z-2", MARCH + timedelta(hours=1), requester="mallory@evil.example")
    created("B-1", MARCH, customer="beta", requester="anyone@beta.example")
    at = MARCH + timedelta(days=1)
    args = ["report", "allowances", "--policy", "athento", "--at", at.isoformat()]
    assert main([*args, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["usage"] == [
        {
            "customer": "acme",
            "plan": "standard",
            "year_start": "2026-01-01",
            "year_end": "2027-01-01",
            "counted": 2,
            "excluded_grace": 1,
            "allowance": 50,
            "share": 4.0,
            "levels_reached": [],
            "contacts": 2,
            "contacts_allowed": 4,
        }
    ]
    assert [(e["ticket_id"], e["requester"]) for e in doc["unauthorized"]] == [
        ("Z-2", "mallory@evil.example")
    ]

    assert (
        main(["report", "timeline", "zendesk/Z-2", "--at", at.isoformat(), "--format", "json"]) == 0
    )
    first = json.loads(capsys.readouterr().out)["timeline"][0]
    assert first["what"] == "created" and first["unauthorized_contact"] is True
