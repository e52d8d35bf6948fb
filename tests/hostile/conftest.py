"""The ingest app in-process, with its real Redis publisher, every secret configured."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from pydantic import SecretStr
from redis.asyncio import Redis as AsyncRedis

from shared.celery_app import make_celery
from shared.config import ApiKey, Settings
from shared.db.engine import make_engine, session_factory
from shared.db.migrate import upgrade
from tests.hostile.gate import TALLY, Gate
from tests.hostile.ledger import LEDGER
from tests.hostile.secrets import (
    ACK_SECRET,
    ACKER_TOKEN,
    FRESHDESK_SECRET,
    HMAC_SECRET,
    JIRA_SECRET,
    READER_TOKEN,
    TOKEN,
    WRITER_TOKEN,
    ZENDESK_SECRET,
)
from tests.integration.conftest import (
    configured,
    database_url,
    policy_dir,
    postgres_url,
    redis_prefix,
    sink,
)
from tests.integration.services import REDIS_URL
from tests.support import PRESETS
from worker.api.app import Services, create_app
from worker.api.publisher import QueuePublisher
from worker.api.service import webhooks
from worker.policies.book import PolicyBook

# The integration suite's fixtures: a Redis key prefix of the test's own, both databases, the
# process settings pointed at them.
__all__ = ["configured", "database_url", "policy_dir", "postgres_url", "redis_prefix", "sink"]

MAX_BODY = 64 * 1024
KEYS = [  # besides the legacy TOKEN (api-token-1: every scope, writes `api`)
    ApiKey(name="reader", token=SecretStr(READER_TOKEN), scopes=["read"]),
    ApiKey(
        name="zendesk-sync",
        token=SecretStr(WRITER_TOKEN),
        scopes=["write"],
        sources=["api", "zendesk"],
    ),
    ApiKey(name="pager", token=SecretStr(ACKER_TOKEN), scopes=["ack"]),
]


@pytest.fixture
def config(tmp_path: Path, redis_prefix: str) -> Settings:
    url = f"sqlite:///{tmp_path / 'hostile.db'}"
    upgrade(url)
    return Settings(
        database_url=url,
        redis_url=REDIS_URL,
        redis_prefix=redis_prefix,
        events_queue=f"{redis_prefix}-events",
        policy_dir=PRESETS,
        default_policy="soporte-completo",
        api_tokens=[SecretStr(TOKEN)],
        api_keys=KEYS,
        api_hmac_secret=SecretStr(HMAC_SECRET),
        zendesk_secret=SecretStr(ZENDESK_SECRET),
        jira_secret=SecretStr(JIRA_SECRET),
        freshdesk_secret=SecretStr(FRESHDESK_SECRET),
        public_url="https://escalera.example.com",
        ack_secret=SecretStr(ACK_SECRET),
        max_body_bytes=MAX_BODY,
    )


@pytest.fixture
def services(config: Settings) -> Services:
    """The ingest app's services as ``escalera ingest`` builds them, but on SQLite."""
    celery = make_celery(config)
    return Services(
        settings=config,
        policies=PolicyBook.from_settings(config),
        publisher=QueuePublisher(
            celery,
            AsyncRedis.from_url(config.redis_url, socket_timeout=5),
            config.events_queue,
        ),
        sessions=session_factory(make_engine(config.database_url)),
        webhooks=webhooks(config),
        redis_ping=redis.Redis.from_url(config.redis_url).ping,
    )


@pytest.fixture
def gate(config: Settings, services: Services) -> Iterator[Gate]:
    """The app in-process, its real publisher pushing onto this test's queue on Redis."""
    prefix = make_celery(config).conf.broker_transport_options["global_keyprefix"]
    # a crash raises here with its traceback; a returned 5xx fails the Gate
    with TestClient(create_app(services), raise_server_exceptions=True) as client:
        yield Gate(client, redis.Redis.from_url(config.redis_url), prefix + config.events_queue)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """How many hostile requests were sent, by answer (11,000 in the full run)."""
    if TALLY:
        by_status = ", ".join(f"{status}: {n}" for status, n in sorted(TALLY.items()))
        fivexx = sum(n for status, n in TALLY.items() if status >= 500)
        terminalreporter.write_line(
            f"hostile requests: {sum(TALLY.values())} ({by_status}); 5xx = {fivexx}"
        )
    for line in LEDGER.lines():
        terminalreporter.write_line(line)
