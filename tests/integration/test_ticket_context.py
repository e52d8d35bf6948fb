"""The ticket's context travels with its events: stored on the ticket (whatever the order and the
repeats), shown in a page's title and body, on the acknowledgement page, in the timeline, the
at-risk list and the ticket read; migration 0008 adds its columns to a database in use.

On SQLite and PostgreSQL (the `database_url` fixture), through the real apply, fire and delivery
steps, the real HTTP app and Alembic.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.engine import make_url

from shared.config import Settings
from shared.db.engine import make_engine, session_factory
from shared.db.migrate import alembic_config, upgrade
from shared.db.models import Notification, Ticket
from shared.events import Event
from tests.integration.breach import START, add_routes, fire_due
from tests.integration.services import PG_ADMIN_URL, admin, apply_now
from tests.integration.sinks import JsonSink
from tests.support import PRESETS, event
from worker.api.acks import ack_clock
from worker.api.app import Services, create_app
from worker.api.service import services
from worker.cli import main
from worker.events.apply import apply_events
from worker.notify.deliver import Deliverer
from worker.notify.transport import AppriseSender
from worker.policies.book import PolicyBook
from worker.runtime import runtime

SUBJECT = "No se puede facturar: el TPV rechaza todas las tarjetas desde la actualización de anoche"
CUT = SUBJECT[:79].rstrip() + "…"  # 80 characters of subject at most in a title
TOKEN = "context-token"
ACK_SECRET = "ack-secret-for-tests"
ROUTES = """
channels:
  oncall: {}
routes:
  - {name: page, when: {kinds: [breach]}, channels: [oncall]}
"""


def life(ticket: str) -> list[Event]:
    """A ticket created by e-mail in tier 1, moved to tier 2 and assigned, re-titled, tagged."""
    return [
        event(
            "created",
            START,
            ticket,
            priority="P1",
            customer="acme",
            subject="TPV rechaza tarjetas",
            group="Nivel 1",
            tags=["tpv", "urgente"],
            channel="email",
            ticket_type="incident",
            requester_id="5001",
        ),
        event("assigned", START + timedelta(minutes=5), ticket, group="Nivel 2", assignee="ana"),
        event(
            "status_changed",
            START + timedelta(minutes=8),
            ticket,
            status="open",
            subject=SUBJECT,
            tags_added=["escalado"],
            tags_removed=["urgente"],
        ),
        event("assigned", START + timedelta(minutes=9), ticket, assignee="luis"),
    ]


CONTEXT = {
    "subject": SUBJECT,
    "group": "Nivel 2",
    "assignee": "luis",
    "tags": ["tpv", "escalado"],
    "ticket_type": "incident",
    "channel": "email",
    "requester_id": "5001",
}


def stored_context(url: str, ticket: str) -> dict[str, object]:
    with session_factory(make_engine(url))() as session:
        row = session.scalars(select(Ticket).where(Ticket.ticket_id == ticket)).one()
        return {
            "subject": row.subject,
            "group": row.group_name,
            "assignee": row.assignee,
            "tags": json.loads(row.tags) if row.tags is not None else None,
            "ticket_type": row.ticket_type,
            "channel": row.channel,
            "requester_id": row.requester_id,
        }


def test_the_ticket_keeps_its_latest_context_whatever_the_order_and_repeats(
    database_url: str,
) -> None:
    """Three tickets with the same life: in order one by one, reversed in one batch, and
    shuffled in batches with every event delivered twice. Each keeps the same context."""
    policies = PolicyBook.from_settings(
        Settings(policy_dir=PRESETS, default_policy="soporte-completo")
    )
    sessions = session_factory(make_engine(database_url))
    now = START + timedelta(minutes=10)

    def apply(batch: list[Event]) -> None:
        with sessions.begin() as session:
            apply_events(session, policies, batch, now)

    for ev in life("C-1"):
        apply([ev])
    apply(list(reversed(life("C-2"))))
    third = life("C-3")
    apply([third[3], third[1], third[3]])
    apply([third[2], third[0], third[1]])
    apply([third[0], third[2]])
    for ticket in ("C-1", "C-2", "C-3"):
        assert stored_context(database_url, ticket) == CONTEXT, ticket


@pytest.fixture
def paged(policy_dir: Path, configured: None, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ESCALERA_API_TOKENS", json.dumps([TOKEN]))
    monkeypatch.setenv("ESCALERA_ACK_SECRET", ACK_SECRET)
    monkeypatch.setenv("ESCALERA_PUBLIC_URL", "https://escalera.example")
    return policy_dir


def page(sink: JsonSink) -> dict[str, str]:
    """Fire the breach of the ticket `life("P-1")` and deliver its page to the sink."""
    apply_now(*life("P-1"))
    fire_due()
    with runtime().sessions() as session:
        notification = session.scalars(select(Notification.id)).one()
    deliverer = Deliverer(
        runtime().policies,
        AppriseSender(),
        {"ESCALERA_CHANNEL_ONCALL": sink.url()},
        ack_links=("https://escalera.example", ACK_SECRET),
    )
    with runtime().sessions.begin() as session:
        deliverer.deliver(session, notification, START + timedelta(minutes=31))
    (message,) = sink.received
    return {"title": message["json"]["title"], "body": message["json"]["message"]}


def test_a_spanish_page_names_the_subject_and_its_link_page_too(
    paged: Path, sink: JsonSink
) -> None:
    """soporte-completo (Spanish): the subject, cut, ends the title; the body has it whole with
    the group and assignee; the acknowledgement link's page shows the same title."""
    add_routes(paged, ROUTES)
    message = page(sink)
    assert message["title"] == f"[P1] api/P-1: primera respuesta incumplida — «{CUT}»"
    lines = message["body"].splitlines()
    assert {f"Asunto: {SUBJECT}", "Grupo: Nivel 2", "Asignado a: luis"} <= set(lines)
    link = next(line.split(": ", 1)[1] for line in lines if line.startswith("Confirmar"))
    app = create_app(services(runtime()))
    app.dependency_overrides[ack_clock] = lambda: START + timedelta(minutes=35)
    shown = TestClient(app).get(link.removeprefix("https://escalera.example"))
    assert shown.status_code == 200
    assert f"«{CUT}»" in shown.text and "Asignado a: luis" in shown.text


def test_an_english_page_names_the_subject(paged: Path, sink: JsonSink) -> None:
    preset = paged / "soporte-completo.yaml"
    preset.write_text(preset.read_text().replace("\nlanguage: es\n", "\nlanguage: en\n"))
    add_routes(paged, ROUTES)
    message = page(sink)
    assert message["title"] == f'[P1] api/P-1: first response breached — "{CUT}"'
    assert {f"Subject: {SUBJECT}", "Group: Nivel 2", "Assignee: luis"} <= set(
        message["body"].splitlines()
    )


@pytest.fixture
def client(paged: Path) -> TestClient:
    add_routes(paged, ROUTES)
    rt = runtime()
    assert rt.settings.api_tokens == [SecretStr(TOKEN)]
    app_services = Services(
        settings=rt.settings,
        policies=rt.policies,
        publisher=None,  # type: ignore[arg-type]  # nothing is published here
        sessions=rt.sessions,
        webhooks={},
        redis_ping=lambda: True,
    )
    return TestClient(create_app(app_services), headers={"Authorization": f"Bearer {TOKEN}"})


def test_the_ticket_read_and_the_timeline_show_the_context(client: TestClient) -> None:
    """As of their instant: at 09:06 local the ticket was in tier 2 with ana, not yet re-titled."""
    apply_now(*life("R-1"))
    at = START + timedelta(minutes=20)
    read = client.get("/v1/tickets/api/R-1", params={"at": at.isoformat()}).json()
    assert read["ticket"] == CONTEXT and read["ticket_id"] == "R-1"
    earlier = START + timedelta(minutes=6)
    then = client.get("/v1/tickets/api/R-1", params={"at": earlier.isoformat()}).json()
    assert (then["ticket"]["subject"], then["ticket"]["assignee"]) == (
        "TPV rechaza tarjetas",
        "ana",
    )
    timeline = client.get("/v1/reports/timeline/api/R-1", params={"at": at.isoformat()}).json()
    assert timeline["ticket"] == CONTEXT
    retitled = next(e for e in timeline["timeline"] if e.get("status") == "open")
    assert retitled["subject"] == SUBJECT and retitled["tags_added"] == ["escalado"]


def test_the_cli_timeline_and_the_at_risk_list_show_subject_group_and_assignee(
    client: TestClient, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    apply_now(*life("R-2"))
    at = (START + timedelta(minutes=10)).isoformat()
    monkeypatch.setenv("COLUMNS", "250")  # rich folds long cells on a narrow terminal
    assert main(["report", "timeline", "api/R-2", "--at", at]) == 0
    table = capsys.readouterr().out
    assert "TPV rechaza todas las tarjetas" in table and "Nivel 2" in table and "luis" in table
    assert main(["report", "at-risk", "--at", at, "--format", "csv"]) == 0
    (row,) = csv.DictReader(io.StringIO(capsys.readouterr().out))
    assert (row["ticket"], row["subject"], row["group"], row["assignee"]) == (
        "api/R-2",
        CUT,
        "Nivel 2",
        "luis",
    )
    risk = client.get("/v1/reports/at-risk", params={"at": at}).json()["tickets"]
    assert [(t["subject"], t["group"], t["assignee"]) for t in risk] == [
        (SUBJECT, "Nivel 2", "luis")
    ]


# -- migration 0008 ----------------------------------------------------------------------------

CONTEXT_COLUMNS = {"subject", "group_name", "assignee", "tags", "ticket_type", "channel"}


@pytest.fixture(params=["sqlite", "postgresql"])
def database_at_0007(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of its own at revision 0007 with a ticket stored, as a deployment has it."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
        name = None
    else:
        name = f"escalera_test_0008_{uuid.uuid4().hex[:8]}"
        with admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url, "0007")
        engine = make_engine(url)
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO tickets (source, ticket_id, policy, waiting, version, updated_at)"
                    " VALUES ('api', 'OLD-1', 'soporte-completo', false, 3, :now)"
                ),
                {"now": datetime(2026, 3, 1, tzinfo=UTC)},
            )
        engine.dispose()
        yield url
    finally:
        if name is not None:
            with admin() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_migration_0008_adds_the_context_columns_to_a_database_in_use(
    database_at_0007: str,
) -> None:
    """Upgrading keeps every ticket, with no context until its next event; downgrading drops
    the columns again."""
    upgrade(database_at_0007)
    engine = make_engine(database_at_0007)
    columns = {c["name"] for c in sa.inspect(engine).get_columns("tickets")}
    assert CONTEXT_COLUMNS | {"requester_id"} <= columns
    with session_factory(engine)() as session:
        old = session.scalars(select(Ticket)).one()
        assert (old.ticket_id, old.version, old.subject, old.tags) == ("OLD-1", 3, None, None)
    command.downgrade(alembic_config(database_at_0007), "0007")
    engine.dispose()
    engine = make_engine(database_at_0007)
    assert not CONTEXT_COLUMNS & {c["name"] for c in sa.inspect(engine).get_columns("tickets")}
    engine.dispose()
