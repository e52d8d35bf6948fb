"""Long-running processes: ``ingest`` (uvicorn) and ``worker`` (celery)."""

from __future__ import annotations

import argparse

import uvicorn

from shared.celery_app import app as celery_app
from shared.config import settings
from shared.db.migrate import upgrade
from shared.logging import configure_logging, log
from worker.runtime import runtime


def _prepare() -> None:
    """Validate policies and reach the database before serving: a bad policy file stops here."""
    configure_logging()
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
    )
    return 0


def worker_command(args: argparse.Namespace) -> int:
    _prepare()
    config = settings()
    queues = args.queues or config.fire_queue
    if args.apply:
        from worker.applier_step import ApplierStep  # noqa: PLC0415 - only where a worker runs

        ApplierStep.batch = args.batch
        # SQLite has one writer at a time: a second applier would only wait for the first.
        ApplierStep.threads = 1 if config.database_url.startswith("sqlite") else args.appliers
        celery_app.steps["worker"].add(ApplierStep)
    celery_app.worker_main(
        [
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

    celery_app.Beat(scheduler=EscaleraScheduler, max_interval=1, loglevel="INFO").run()
    return 0
