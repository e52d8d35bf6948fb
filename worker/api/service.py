"""Wiring the ingest app to the configured database, queue, policies and portal adapters."""

from __future__ import annotations

import os

import redis
from fastapi import FastAPI
from pydantic import SecretStr
from redis.asyncio import Redis as AsyncRedis

from shared.celery_app import app as celery_app
from shared.config import Settings
from shared.integrations import Portal, load_integrations
from shared.logging import configure_logging
from shared.metrics_export import QueueDepth
from worker.adapters.freshdesk import FreshdeskAdapter
from worker.adapters.jira import JiraAdapter
from worker.adapters.zendesk import ZendeskAdapter
from worker.api.app import create_app
from worker.api.backlog import Backlog
from worker.api.publisher import IO_TIMEOUT_S, Durability, QueuePublisher
from worker.api.services import Services, Webhook
from worker.runtime import Runtime, runtime


def webhooks(config: Settings) -> dict[str, Webhook]:
    """Each portal as its integration settings describe it, with its secret (None when unset:
    its webhooks are refused with 401). A settings file that does not validate stops the
    process at start, naming its line and field."""
    found = load_integrations(config.integrations)
    return {
        "zendesk": Webhook(
            ZendeskAdapter.from_settings(found.zendesk), _secret(config, found.zendesk, "zendesk")
        ),
        "freshdesk": Webhook(
            FreshdeskAdapter.from_settings(found.freshdesk),
            _secret(config, found.freshdesk, "freshdesk"),
        ),
        "jira": Webhook(JiraAdapter.from_settings(found.jira), _secret(config, found.jira, "jira")),
    }


def _secret(config: Settings, section: Portal | None, portal: str) -> str | None:
    """The webhook secret: from the variable the settings name, else ESCALERA_<PORTAL>_SECRET."""
    if section is not None and section.secret_env is not None:
        return os.environ.get(section.secret_env) or None
    secret: SecretStr | None = getattr(config, f"{portal}_secret")
    return _reveal(secret)


def services(rt: Runtime) -> Services:
    client = redis.Redis.from_url(rt.settings.redis_url, socket_timeout=2)
    # no socket_timeout (redis-py's default is 5 s): the publisher bounds each request's wait
    # itself (`IO_TIMEOUT_S`), without a task per command
    queue = AsyncRedis.from_url(
        rt.settings.redis_url, socket_timeout=None, socket_connect_timeout=IO_TIMEOUT_S
    )
    return Services(
        settings=rt.settings,
        policies=rt.policies,
        publisher=QueuePublisher(
            celery_app,
            queue,
            rt.settings.events_queue,
            Durability.from_settings(rt.settings),
            Backlog.from_settings(rt.settings),
        ),
        sessions=rt.sessions,
        webhooks=webhooks(rt.settings),
        redis_ping=client.ping,
        repeats=rt.repeats,
        timers=rt.timers,
        queue_depth=QueueDepth.from_settings(rt.settings),
        directory=rt.directory,
    )


def app_from_settings() -> FastAPI:
    """The uvicorn factory of ``escalera ingest`` (one per worker process)."""
    configure_logging()
    return create_app(services(runtime()))


def _reveal(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() if secret is not None else None
