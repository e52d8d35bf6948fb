"""Long-running processes: ``ingest`` (uvicorn) and ``worker`` (celery)."""

from __future__ import annotations

import argparse

import celery.apps.worker as celery_worker_app
import uvicorn
from celery.signals import setup_logging

from shared.celery_app import app as celery_app
from shared.config import settings
from shared.db.migrate import upgrade
from shared.logging import configure_logging, keep_celery_from_logging_setup, log, say_as_json
from worker.runtime import runtime


def _prepare() -> None:
    """Validate policies and reach the database before serving: a bad policy file stops here."""
    configure_logging()
    setup_logging.connect(keep_celery_from_logging_setup, weak=False)  # every line stays JSON
    config = settings()
    if config.database_url.startswith("sqlite"):
        upgrade(config.database_url)  # the embedded default migrates itself
    rt = runtime()
    log.info(
        "policies_loaded", policy_dir=str(config.policy_dir), default_policy=config.default_policy
    )
    rt.engine.dispose()  # connections are not shared with forked children


def ingest_command(args: argparse.Namespace) -> int:
    _prepare()
    uvicorn.run(
        "worker.ingest.service:app_from_settings",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="warning",
        access_log=False,
        log_config=None,  # uvicorn's records go to the root logger: JSON, like ours
    )
    return 0


def worker_command(args: argparse.Namespace) -> int:
    _prepare()
    celery_worker_app.safe_say = say_as_json  # its shutdown notices, as JSON lines too
    config = settings()
    queues = args.queues or f"{config.events_queue},{config.fire_queue}"
    celery_app.worker_main(
        [
            "--quiet",  # no banner: every line the process writes is a JSON log line
            "worker",
            "-Q",
            queues,
            "-c",
            str(args.concurrency),
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
        ]
    )
    return 0


def beat_command(_args: argparse.Namespace) -> int:
    """Celery beat with Escalera's scheduler: claims due checkpoints every tick (<= 1 s)."""
    _prepare()
    from scheduler.beat import EscaleraScheduler  # noqa: PLC0415 - beat's class only where beat runs

    celery_app.Beat(scheduler=EscaleraScheduler, max_interval=1, loglevel="INFO", quiet=True).run()
    return 0
