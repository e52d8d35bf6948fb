"""Sizes (reduced by default, full with ESCALERA_CHAOS_FULL=1), a database, Redis and sinks.

`make chaos` sets ESCALERA_CHAOS_FULL=1. Every figure of a run is appended, one JSON object a
line, to ESCALERA_CHAOS_REPORT if it is set, and printed (``pytest -s`` shows it).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from shared.db.migrate import upgrade
from tests.chaos.lives import POLICY_FILE
from tests.chaos.services import PrivateRedis, Sink
from tests.chaos.system import System
from tests.integration.services import PG_ADMIN_URL, admin

FULL = os.environ.get("ESCALERA_CHAOS_FULL") == "1"


@dataclass(frozen=True)
class Size:
    trials: int
    tickets: int  # per kill trial
    window_s: float  # tickets are created over this long
    tickets_other: int  # Redis, PostgreSQL and sink tests
    pg_outage_s: float
    sink_outage_s: float
    settle_s: float  # after the last event, how long everything owed may take


SIZE = (
    Size(
        trials=20,
        tickets=5000,
        # ~80 events/s. At 90 s (~200 events/s) with a kill every 3-9 s this VM fell minutes
        # behind and checkpoints fired 5x over (each justified by the events stored by then).
        window_s=240,
        tickets_other=500,
        pg_outage_s=30,
        sink_outage_s=600,
        settle_s=1800,
    )
    if FULL
    else Size(
        # two: with the escalation chains' minute-long lives, a third trial put `make test`
        # over its 10 minutes (10 min 9 s on 2026-12-07); `make chaos` runs twenty
        trials=2,
        tickets=30,
        window_s=8,
        tickets_other=24,
        pg_outage_s=5,
        sink_outage_s=35,
        settle_s=180,
    )
)


def report(name: str, figures: dict[str, Any]) -> None:
    line = json.dumps({"test": name, "full": FULL, **figures}, default=str)
    print(f"\nchaos: {line}")
    if path := os.environ.get("ESCALERA_CHAOS_REPORT"):
        with open(path, "a") as handle:
            handle.write(line + "\n")


@pytest.fixture(scope="session")
def chaos_database() -> Iterator[str]:
    """A PostgreSQL database of the run's own, migrated, dropped at the end."""
    name = f"escalera_chaos_{uuid.uuid4().hex[:10]}"
    with admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    yield url
    with admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    folder = tmp_path / "redis"
    folder.mkdir()
    server = PrivateRedis(folder)
    yield server
    server.stop()


@pytest.fixture
def sink() -> Iterator[Sink]:
    server = Sink()
    yield server
    server.stop()


@pytest.fixture
def backup_sink() -> Iterator[Sink]:
    server = Sink()
    yield server
    server.stop()


@dataclass
class Rig:
    """Everything a chaos test runs against: its database, Redis, sinks and a log folder."""

    database_url: str
    redis: PrivateRedis
    sink: Sink  # channels oncall and tier2, and lead and phone (route chain)
    backup: Sink  # channel backup, the fallback of route escalate
    folder: Path

    def system(self, database_url: str | None = None, **env: str) -> System:
        """The three processes with the chaos policy (not started)."""
        policies = self.folder / "policies"
        policies.mkdir(exist_ok=True)
        shutil.copy(POLICY_FILE, policies / "chaos.yaml")
        return System(
            database_url=database_url or self.database_url,
            redis_url=self.redis.url,
            policy_dir=policies,
            channels={
                "oncall": self.sink.url("oncall"),
                "tier2": self.sink.url("tier2"),
                "backup": self.backup.url("backup"),
                "lead": self.sink.url("lead"),
                "phone": self.sink.url("phone"),
            },
            logs=self.folder,
            extra_env=env,
        )

    @property
    def sinks(self) -> list[Sink]:
        return [self.sink, self.backup]


@pytest.fixture
def rig(
    chaos_database: str, private_redis: PrivateRedis, sink: Sink, backup_sink: Sink, tmp_path: Path
) -> Rig:
    return Rig(chaos_database, private_redis, sink, backup_sink, tmp_path)
