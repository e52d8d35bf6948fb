"""Migration 0010 gives notifications ``repeat_at`` on a database in use: a page sent before it,
whose repeat only Redis held, still repeats; downgrading drops the column again.

On SQLite and PostgreSQL, each a database of its own brought up to the revision before.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from shared.config import settings
from shared.db.engine import make_engine, session_factory
from shared.db.migrate import alembic_config, upgrade
from shared.db.models import Notification
from tests.integration.services import PG_ADMIN_URL, admin
from tests.support import preset_text_without_notifications
from worker.cli import main
from worker.notify.paging import repeat_pages
from worker.policies.book import PolicyBook, load_edition

REVISION = "0010"
SENT = datetime(2026, 3, 2, 15, 31, tzinfo=UTC)
ROUTES = """
channels: {oncall: {}}
routes:
  - {name: page, when: {kinds: [breach]}, channels: [oncall], repeat: {every: 15m, limit: 2}}
"""


def before(url: str) -> str:
    """The revision 0010 follows."""
    script = ScriptDirectory.from_config(alembic_config(url)).get_revision(REVISION)
    assert script is not None and isinstance(script.down_revision, str)
    return script.down_revision


def insert(conn: sa.Connection, table: str, **values: object) -> int:
    columns, marks = ", ".join(values), ", ".join(f":{c}" for c in values)
    query = sa.text(f"INSERT INTO {table} ({columns}) VALUES ({marks}) RETURNING id")
    return int(conn.execute(query, values).scalar_one())


def page_sent_before(url: str) -> int:
    """A P1 breach paged and sent, as a deployment stored it then; its notification's id."""
    engine = make_engine(url)
    with engine.begin() as conn:
        ticket = insert(
            conn,
            "tickets",
            source="api",
            ticket_id="OLD-1",
            policy="soporte-completo",
            status="open",
            waiting=False,
            version=1,
            updated_at=SENT,
        )
        checkpoint = insert(
            conn,
            "checkpoints",
            ticket_pk=ticket,
            key="first_response:breach",
            metric="first_response",
            kind="breach",
            due_at=SENT,
            state="fired",
            fired_at=SENT,
            updated_at=SENT,
        )
        page = insert(
            conn,
            "notifications",
            checkpoint_id=checkpoint,
            route="page",
            channel="oncall",
            repeat=0,
            dedupe_key=f"{checkpoint}:page:oncall:0",
            status="sent",
            attempts=1,
            created_at=SENT,
            delivered_at=SENT,
        )
    engine.dispose()
    return page


@pytest.fixture(params=["sqlite", "postgresql"])
def database_before(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of its own one revision before 0010."""
    if request.param == "sqlite":
        url, name = f"sqlite:///{tmp_path / 'old.db'}", None
    else:
        name = f"escalera_test_0010_{uuid.uuid4().hex[:8]}"
        with admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url, before(url))
        yield url
    finally:
        if name is not None:
            with admin() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_page_sent_before_the_upgrade_keeps_repeating(
    database_before: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``escalera db upgrade`` adds the column; the page's row has none (only Redis knew its
    repeat): when that repeat comes due it is written as before. Downgrading drops the column,
    keeping every row."""
    page = page_sent_before(database_before)
    monkeypatch.setenv("DATABASE_URL", database_before)
    settings.cache_clear()
    assert main(["db", "upgrade"]) == 0
    settings.cache_clear()
    engine = make_engine(database_before)
    assert "repeat_at" in {c["name"] for c in sa.inspect(engine).get_columns("notifications")}
    files = {
        "soporte-completo.yaml": preset_text_without_notifications("soporte-completo") + ROUTES
    }
    book = PolicyBook(load_edition(files, "test", SENT), {}, "soporte-completo")
    with session_factory(engine).begin() as session:
        assert session.get_one(Notification, page).repeat_at is None
        done = repeat_pages(session, book, [page], SENT + timedelta(minutes=15))
    assert len(done.written) == 1
    command.downgrade(alembic_config(database_before), before(database_before))
    engine.dispose()
    engine = make_engine(database_before)
    assert "repeat_at" not in {c["name"] for c in sa.inspect(engine).get_columns("notifications")}
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM notifications")).scalar_one() == 2
    engine.dispose()
