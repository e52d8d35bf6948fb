"""Reaching the real services integration tests use: PostgreSQL and Redis on this machine."""

from __future__ import annotations

import os

import psycopg
import pytest
from sqlalchemy.engine import make_url

from shared.events import Event
from worker.events.applier import make_applier
from worker.events.apply import Applied
from worker.runtime import runtime

PG_ADMIN_URL = os.environ.get(
    "ESCALERA_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def admin() -> psycopg.Connection[tuple[object, ...]]:
    url = make_url(PG_ADMIN_URL)
    try:
        return psycopg.connect(
            host=url.host,
            port=url.port or 5432,
            user=url.username,
            password=url.password,
            dbname=url.database,
            autocommit=True,
            connect_timeout=5,
        )
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL does not answer at {url.host}:{url.port} ({exc}). Start it: "
            "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
            pytrace=False,
        )


def truncate(url: str) -> None:
    parsed = make_url(url)
    with psycopg.connect(
        host=parsed.host,
        port=parsed.port or 5432,
        user=parsed.username,
        dbname=parsed.database,
        autocommit=True,
    ) as conn:
        conn.execute(
            "TRUNCATE acknowledgements, notifications, checkpoints, events, dead_letters, tickets,"
            " policy_snapshots RESTART IDENTITY CASCADE"
        )


def apply_now(*events: Event) -> list[Applied]:
    """Apply events as the worker's applier does (commit, then arm the timer index)."""
    results = make_applier(runtime()).apply_events(list(events))
    assert results is not None
    return results
