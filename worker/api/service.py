"""Wiring the ingest app to the configured database, queue, policies and portal adapters."""

from __future__ import annotations

import redis
from fastapi import FastAPI
from pydantic import SecretStr
from redis.asyncio import Redis as AsyncRedis

from shared.celery_app import app as celery_app
from shared.config import Settings
from shared.logging import configure_logging
from shared.metrics_export import QueueDepth
from worker.adapters.freshdesk import FreshdeskAdapter
from worker.adapters.jira import JiraAdapter
from worker.adapters.zendesk import ZendeskAdapter
from worker.api.app import create_app
from worker.api.publisher import Durability, QueuePublisher
from worker.api.services import Services, Webhook
from worker.runtime import Runtime, runtime


def webhooks(config: Settings) -> dict[str, Webhook]:
    """Each portal with its secret (None when unset: its webhooks are refused with 401)."""
    return {
        "zendesk": Webhook(ZendeskAdapter(), _reveal(config.zendesk_secret)),
        "freshdesk": Webhook(FreshdeskAdapter(), _reveal(config.freshdesk_secret)),
        "jira": Webhook(JiraAdapter(), _reveal(config.jira_secret)),
    }


def services(rt: Runtime) -> Services:
    client = redis.Redis.from_url(rt.settings.redis_url, socket_timeout=2)
    queue = AsyncRedis.from_url(rt.settings.redis_url, socket_timeout=5)
    return Services(
        settings=rt.settings,
        policies=rt.policies,
        publisher=QueuePublisher(
            celery_app, queue, rt.settings.events_queue, Durability.from_settings(rt.settings)
        ),
        sessions=rt.sessions,
        webhooks=webhooks(rt.settings),
        redis_ping=client.ping,
        repeats=rt.repeats,
        queue_depth=QueueDepth.from_settings(rt.settings),
    )


def app_from_settings() -> FastAPI:
    """The uvicorn factory of ``escalera ingest`` (one per worker process)."""
    configure_logging()
    return create_app(services(runtime()))


def _reveal(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() if secret is not None else None
