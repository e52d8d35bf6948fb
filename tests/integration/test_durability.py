"""What a 202 waits for: the Redis primary alone, or replicas too (``ESCALERA_DURABILITY``).

A private primary and replica (``redis-server`` on free ports, never the shared Redis); a
"stopped" replica is one frozen with SIGSTOP: connected, but confirming nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError
from redis.asyncio import Redis as AsyncRedis
from sqlalchemy import select
from structlog.testing import capture_logs

from shared.celery_app import make_celery, queue_key
from shared.config import Settings, settings
from shared.db.engine import make_engine, session_factory
from shared.db.migrate import upgrade
from shared.db.models import StoredEvent
from shared.events import Event
from tests.integration.processes import free_port
from tests.support import PRESETS, event
from worker.api.app import Services, create_app
from worker.api.publisher import RETRY_AFTER_S, Durability, NotReplicated, QueuePublisher
from worker.api.service import webhooks
from worker.events.applier import make_applier
from worker.policies.book import PolicyBook
from worker.runtime import runtime

TOKEN = "durability-token-for-tests"
ONE_REPLICA = Durability(replicas=1, timeout_ms=3000)  # a live replica confirms in well under
IMPATIENT = Durability(replicas=1, timeout_ms=200)  # what a frozen replica makes wait


class RedisPair:
    """A primary and one replica of it, without persistence (replication is what is tested)."""

    def __init__(self, folder: Path) -> None:
        if shutil.which("redis-server") is None:
            pytest.fail("redis-server is not on the PATH: apt-get install redis-server")
        self.primary_port, self.replica_port = free_port(), free_port()
        self.url = f"redis://127.0.0.1:{self.primary_port}/0"
        self.procs = [
            self._start(folder, "primary", self.primary_port),
            self._start(folder, "replica", self.replica_port, "127.0.0.1", self.primary_port),
        ]
        self._wait_linked()

    @staticmethod
    def _start(folder: Path, name: str, port: int, *replicaof: object) -> subprocess.Popen[bytes]:
        command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        command += ["--appendonly", "no", "--dir", str(folder), "--dbfilename", f"{name}.rdb"]
        if replicaof:
            command += ["--replicaof", *map(str, replicaof)]
        log = (folder / f"{name}.log").open("w")
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)

    def _wait_linked(self) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                if self.replica().info("replication").get("master_link_status") == "up":
                    return
            except redis.ConnectionError:
                pass
            time.sleep(0.05)
        pytest.fail("the private replica did not link to its primary within 15 s")

    def primary(self) -> redis.Redis:
        return redis.Redis(port=self.primary_port, socket_timeout=5)

    def replica(self) -> redis.Redis:
        return redis.Redis(port=self.replica_port, socket_timeout=5)

    @contextmanager
    def replica_stopped(self) -> Iterator[None]:
        """The replica frozen (SIGSTOP) until the block ends: linked, confirming nothing."""
        pid = self.procs[1].pid
        os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(pid, signal.SIGCONT)

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.wait(timeout=20)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisPair]:
    servers = RedisPair(tmp_path_factory.mktemp("redis-pair"))
    yield servers
    servers.stop()


@pytest.fixture
def config(tmp_path: Path, pair: RedisPair, redis_prefix: str) -> Settings:
    url = f"sqlite:///{tmp_path / 'durability.db'}"
    upgrade(url)
    return Settings(
        database_url=url,
        redis_url=pair.url,
        redis_prefix=redis_prefix,
        events_queue=f"{redis_prefix}-events",
        policy_dir=PRESETS,
        default_policy="soporte-completo",
        api_tokens=[SecretStr(TOKEN)],
    )


def _publisher(config: Settings, durability: Durability) -> QueuePublisher:
    client = AsyncRedis.from_url(config.redis_url, socket_timeout=5)
    return QueuePublisher(make_celery(config), client, config.events_queue, durability)


def _publish(publisher: QueuePublisher, events: Sequence[Event]) -> None:
    asyncio.run(publisher.publish(events))


def _queued(client: redis.Redis, config: Settings) -> int:
    return int(client.llen(queue_key(config, config.events_queue)))


def _ticket(name: str) -> list[Event]:
    start = datetime.now(UTC) - timedelta(hours=1)
    return [
        event("created", start, name, priority="P1"),
        event("agent_replied", start + timedelta(minutes=5), name),
    ]


def test_with_a_replica_required_the_replica_holds_the_events_once_publish_returns(
    config: Settings, pair: RedisPair
) -> None:
    """Replica mode: when the 202 can be answered, the replica already has every event."""
    _publish(_publisher(config, ONE_REPLICA), _ticket("R-1"))
    assert _queued(pair.replica(), config) == 2


def test_a_stopped_replica_makes_the_request_a_503_to_retry_and_the_events_stay_queued(
    config: Settings, pair: RedisPair
) -> None:
    """No confirmation within the timeout: `NotReplicated` (503, Retry-After), logged with the
    ticket; the events are on the primary all the same (they may be applied)."""
    with pair.replica_stopped(), capture_logs() as logs, pytest.raises(NotReplicated) as refused:
        _publish(_publisher(config, IMPATIENT), _ticket("R-2"))
    assert (refused.value.status, refused.value.retry_after) == (503, RETRY_AFTER_S)
    assert "reached 0 of the 1 Redis replica(s) required within 200 ms" in refused.value.reason
    assert _queued(pair.primary(), config) == 2
    [line] = [entry for entry in logs if entry["event"] == "events_not_replicated"]
    assert (line["ticket_id"], line["source"], line["count"]) == ("R-2", "api", 2)


def test_local_durability_answers_without_waiting_for_any_replica(
    config: Settings, pair: RedisPair
) -> None:
    """The default: a frozen replica changes nothing, the primary holding the events is enough."""
    with pair.replica_stopped():
        _publish(_publisher(config, Durability()), _ticket("L-1"))
        assert _queued(pair.primary(), config) == 2


def test_the_ingest_route_answers_a_503_problem_with_retry_after_when_replicas_lag(
    config: Settings, pair: RedisPair
) -> None:
    """What the portal sees: a problem document it can act on, and when to come back."""
    services = Services(
        settings=config,
        policies=PolicyBook.from_settings(config),
        publisher=_publisher(config, Durability(replicas=1, timeout_ms=1000)),
        sessions=session_factory(make_engine(config.database_url)),
        webhooks=webhooks(config),
        redis_ping=pair.primary().ping,
    )
    body = {
        "event_id": "d-1",
        "ticket_id": "D-1",
        "type": "created",
        "occurred_at": datetime.now(UTC).isoformat(),
        "priority": "P1",
    }
    headers = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
    with TestClient(create_app(services)) as client:
        with pair.replica_stopped():
            late = client.post("/v1/events", content=json.dumps(body), headers=headers)
        retried = client.post("/v1/events", content=json.dumps(body), headers=headers)
    assert late.status_code == 503, late.text
    assert late.headers["content-type"] == "application/problem+json"
    assert "Redis replica" in late.json()["detail"]
    assert late.headers.get("retry-after") == str(RETRY_AFTER_S)
    assert retried.status_code == 202


@pytest.fixture
def on_the_pair(configured: None, pair: RedisPair, monkeypatch: pytest.MonkeyPatch) -> None:
    """The process's settings (database on SQLite or PostgreSQL) with the pair's primary."""
    monkeypatch.setenv("REDIS_URL", pair.url)
    settings.cache_clear()
    runtime.cache_clear()


def test_a_503_then_the_portals_retry_store_every_event_once(
    on_the_pair: None, pair: RedisPair
) -> None:
    """The first try's events stayed queued; the retry queues them again; each is stored once."""
    config = runtime().settings
    events = _ticket("W-1")
    with pair.replica_stopped(), pytest.raises(NotReplicated):
        _publish(_publisher(config, IMPATIENT), events)
    _publish(_publisher(config, ONE_REPLICA), events)
    assert _queued(pair.primary(), config) == 4
    applier = make_applier(runtime())
    batch = applier.queue.take(applier.batch, block_s=0)
    assert applier.apply(batch, threading.Event())
    applier.queue.ack()
    with runtime().sessions() as session:
        stored = sorted(session.scalars(select(StoredEvent.event_id)))
    assert stored == sorted(e.event_id for e in events)


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    settings.cache_clear()
    yield
    settings.cache_clear()


def test_the_mode_is_read_from_the_environment_and_a_wrong_one_is_refused_by_name(
    fresh_settings: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ESCALERA_DURABILITY=replica with 2 replicas; the publisher follows the process's settings;
    a mode Escalera does not have is refused at start, naming the setting."""
    monkeypatch.setenv("ESCALERA_DURABILITY", "replica")
    monkeypatch.setenv("ESCALERA_DURABILITY_REPLICAS", "2")
    publisher = QueuePublisher(make_celery(settings()), None, "events")  # type: ignore[arg-type]
    assert publisher.durability == Durability(replicas=2, timeout_ms=1000)
    monkeypatch.setenv("ESCALERA_DURABILITY", "fsync")
    with pytest.raises(ValidationError, match="durability"):
        Settings()
    monkeypatch.delenv("ESCALERA_DURABILITY")
    assert Durability.from_settings(Settings()) == Durability()
