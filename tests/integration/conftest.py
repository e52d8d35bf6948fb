"""Real services for integration tests: a PostgreSQL database of the run's own, SQLite, Redis.

PostgreSQL and Redis must answer (CI starts them; see .ci/run). A missing service fails the
tests with a message saying what to start, never skips them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy.engine import make_url

from shared.config import settings
from shared.db.migrate import upgrade
from tests.integration.services import PG_ADMIN_URL, REDIS_URL, admin, truncate
from tests.integration.sinks import JsonSink
from tests.support import preset_text_without_notifications
from worker.runtime import runtime


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of this test run's own, migrated with Alembic, dropped at the end."""
    name = f"escalera_test_{uuid.uuid4().hex[:10]}"
    with admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    yield url
    with admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Each integration test runs on the embedded default (SQLite) and on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'escalera.db'}"
        upgrade(url)
        return url
    url = request.getfixturevalue("postgres_url")
    truncate(url)
    return url


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own on the shared Redis; its keys are deleted afterwards."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        pytest.fail(
            f"Redis does not answer at {REDIS_URL} ({exc}). Start it: redis-server --daemonize yes "
            "--bind 127.0.0.1 --port 6379 --save '' --appendonly no",
            pytrace=False,
        )
    prefix = f"escalera-test-{uuid.uuid4().hex[:10]}"
    yield prefix
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "policies"
    folder.mkdir()
    # tests bring their own channels and routes
    (folder / "soporte-completo.yaml").write_text(
        preset_text_without_notifications("soporte-completo")
    )
    return folder


@pytest.fixture
def configured(
    database_url: str, policy_dir: Path, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """The process settings point at this test's database, policy folder and Redis prefix."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("ESCALERA_POLICY_DIR", str(policy_dir))
    monkeypatch.setenv("ESCALERA_REDIS_PREFIX", redis_prefix)
    settings.cache_clear()
    runtime.cache_clear()
    yield
    runtime().engine.dispose()
    settings.cache_clear()
    runtime.cache_clear()


@pytest.fixture
def sink() -> Iterator[JsonSink]:
    """A webhook receiver on 127.0.0.1 behind ``json://`` channel URLs; what it got, in order."""
    server = JsonSink()
    yield server
    server.close()
