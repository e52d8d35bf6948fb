"""The report on 1,000 stored tickets matches figures worked out by hand from the fixture."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from shared.db.models import StoredEvent, Ticket
from tests.integration.report_fixture import AT, BASE, ZONE, Drawn, fixture
from worker.cli import main
from worker.runtime import runtime

METRICS = ("first_response", "update", "escalation")
COMMITMENTS = {"first_response": 95, "update": 90, "escalation": 90}


@pytest.fixture(scope="module")
def drawn() -> list[Drawn]:
    return fixture()


def store(session: Session, tickets: list[Drawn]) -> None:
    """Rows as the worker leaves them (the report re-evaluates from the events)."""
    rows = {
        t.ticket_id: Ticket(
            source="api",
            ticket_id=t.ticket_id,
            policy="soporte-completo",
            plan="completo",
            priority=t.priority,
            status="solved" if t.resolved else "open",
            created_at=t.created,
            waiting=False,
            version=1,
        )
        for t in tickets
    }
    session.add_all(rows.values())
    session.flush()
    session.add_all(
        StoredEvent(
            source="api",
            event_id=e.event_id,
            ticket_pk=rows[t.ticket_id].id,
            type=e.type.value,
            occurred_at=e.occurred_at,
            payload=e.model_dump(mode="json"),
        )
        for t in tickets
        for e in t.events
    )


def expected_rows(tickets: list[Drawn]) -> dict[tuple[str, str, str], tuple[int, int, int]]:
    counts: dict[tuple[str, str, str], Counter[str]] = defaultdict(Counter)
    for t in tickets:
        for metric, outcome in t.expected.items():
            if outcome == "none":
                continue
            for dimension, group in (
                ("all", "all"),
                ("priority", t.priority),
                ("plan", "completo"),
                ("customer", t.customer),
            ):
                counts[dimension, group, metric][outcome] += 1
    return {k: (c["met"], c["breached"], c["open"]) for k, c in counts.items()}


def report(capsys: pytest.CaptureFixture[str], *args: str) -> dict:  # type: ignore[type-arg]
    assert main(["report", *args, "--at", AT.isoformat(), "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_compliance_of_1000_tickets_matches_the_hand_computed_figures(
    configured: None, drawn: list[Drawn], capsys: pytest.CaptureFixture[str]
) -> None:
    """Every row (overall, per priority, plan and customer), its share against the seed's
    commitments, the breach ranking of customers and the weekly trend."""
    with runtime().sessions.begin() as session:
        store(session, drawn)
    got = report(capsys, "compliance", "--from", BASE.isoformat(), "--to", AT.isoformat())

    expected = expected_rows(drawn)
    rows = {(r["dimension"], r["group"], r["metric"]): r for r in got["rows"]}
    assert set(rows) == set(expected)
    for key, (met, breached, still_open) in expected.items():
        row = rows[key]
        assert (row["met"], row["breached"], row["open"]) == (met, breached, still_open), key
        assert row["share"] == round(100 * met / (met + breached), 2), key
        assert row["commitment"] == COMMITMENTS[key[2]]
        assert row["kept"] == (100 * met / (met + breached) >= COMMITMENTS[key[2]])
    # the overall figures, as a reader would check them against the seed's promises
    total = sum(1 for t in drawn if t.expected["first_response"] != "none")
    overall = rows["all", "all", "first_response"]
    assert overall["met"] + overall["breached"] + overall["open"] == total == 1000

    breaches = Counter()
    for t in drawn:
        breaches[t.customer] += sum(o == "breached" for o in t.expected.values())
    ranking = sorted(breaches.items(), key=lambda kv: (-kv[1], kv[0]))
    assert [(c["customer"], c["breaches"]) for c in got["worst_customers"]] == ranking

    worst = got["worst_tickets"]
    by_id = {t.ticket_id: t for t in drawn}
    counts = sorted(
        (sum(o == "breached" for o in t.expected.values()) for t in drawn), reverse=True
    )
    assert [len(entry["breaches"]) for entry in worst] == counts[:10]
    for entry in worst:
        ticket = by_id[entry["ticket_id"]]
        assert set(entry["breaches"]) == {m for m, o in ticket.expected.items() if o == "breached"}

    weekly: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for t in drawn:
        day = t.created.astimezone(ZONE).date()
        monday = (day - timedelta(days=day.weekday())).isoformat()
        for metric, outcome in t.expected.items():
            if outcome in ("met", "breached"):
                weekly[monday, metric][outcome] += 1
    assert {(p["bucket"], p["metric"]): (p["met"], p["breached"]) for p in got["trend"]} == {
        k: (c["met"], c["breached"]) for k, c in weekly.items()
    }


def test_at_risk_queue_of_1000_tickets_is_ordered_by_the_hand_computed_next_checkpoint(
    configured: None, drawn: list[Drawn], capsys: pytest.CaptureFixture[str]
) -> None:
    """Only the tickets with a checkpoint still ahead are listed, soonest first, each with the
    time left to it."""
    with runtime().sessions.begin() as session:
        store(session, drawn)
    got = report(capsys, "at-risk")["tickets"]

    expected = sorted(
        (min(t.pending)[0], t.ticket_id) for t in drawn if t.pending and not t.resolved
    )
    assert [(row["ticket_id"], row["left_seconds"]) for row in got] == [
        (ticket_id, int((due - AT).total_seconds())) for due, ticket_id in expected
    ]
