"""Long-running processes: ``ingest`` (uvicorn), ``worker`` and ``beat`` (celery)."""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import celery.apps.worker as celery_worker_app
import uvicorn
from celery.signals import setup_logging, worker_init

from shared.celery_app import app as celery_app
from shared.config import settings
from shared.db.migrate import upgrade
from shared.errors import EscaleraError
from shared.logging import configure_logging, keep_celery_from_logging_setup, log, say_as_json
from worker.policies.watch import FolderWatch, on_hangup
from worker.runtime import keep_policies_fresh, runtime

if TYPE_CHECKING:
    from fastapi import FastAPI


def _prepare(*, watch: bool = True) -> FolderWatch | None:
    """Validate policies and reach the database before serving.

    A policy folder that does not validate stops here only if the database holds no last good
    copy of it (a first start); otherwise the process starts on that copy, logging the problems.
    With ``watch`` the policies are kept fresh from here on: when the folder's files change,
    and on SIGHUP outside a terminal (`_detached`).
    """
    configure_logging()
    setup_logging.connect(keep_celery_from_logging_setup, weak=False)  # every line stays JSON
    config = settings()
    if config.database_url.startswith("sqlite"):
        upgrade(config.database_url)  # the embedded default migrates itself
    rt = runtime()
    edition = rt.policies.edition
    log.info(
        "policies_loaded",
        policy_dir=str(config.policy_dir),
        default_policy=config.default_policy,
        hash=edition.hash,
        origin=edition.origin.value,
    )
    folder_watch = keep_policies_fresh(rt, hangup=_detached()) if watch else None
    rt.engine.dispose()  # connections are not shared with forked children
    return folder_watch


def _detached() -> bool:
    """Not writing to a terminal (systemd, Kubernetes, ``escalera up``): SIGHUP may reload.

    In a terminal SIGHUP keeps meaning hang-up, as Celery has it: closing the window stops the
    process instead of leaving it running unseen. The folder watch works either way.
    """
    return not sys.stdout.isatty()


def ingest_app() -> FastAPI:
    """The uvicorn factory: the app, and this serving process's own watch on the policies."""
    from worker.api.service import app_from_settings  # noqa: PLC0415 - in uvicorn's process

    app = app_from_settings()
    keep_policies_fresh(runtime(), hangup=_detached())
    # What start-up built lives as long as the process: out of the collector's sight, a full
    # collection after a heavy read (thousands of events) no longer walks it, a pause of
    # 75-90 ms of the event loop, /healthz included (bench/read_load_bench.py).
    gc.collect()
    gc.freeze()
    return app


@contextmanager
def _metrics_files(command: str, *, several_processes: bool) -> Iterator[None]:
    """A fresh ``PROMETHEUS_MULTIPROC_DIR`` for this process group, removed when it stops.

    Processes that fork or spawn share their samples through files there; a private folder per
    group means no stale samples from a previous run and no mixing with another service's.
    prometheus_client picks its storage when imported, so this runs before anything imports it.
    """
    if not several_processes:
        yield
        return
    with tempfile.TemporaryDirectory(prefix=f"escalera-{command}-metrics-") as folder:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
        from prometheus_client import values  # noqa: PLC0415 - only after the variable is set

        if values.ValueClass is values.MutexValue:
            raise EscaleraError("prometheus_client was imported before its folder was chosen")
        yield


def _serve_metrics(args: argparse.Namespace) -> None:
    """``--metrics-port``: /metrics of this process group and the queue depths."""
    if args.metrics_port is None:
        return
    from shared.metrics_export import QueueDepth, scrape_registry, serve_metrics  # noqa: PLC0415

    registry = scrape_registry(QueueDepth.from_settings(settings()))
    serve_metrics(args.metrics_port, registry, host=args.metrics_host)
    log.info("metrics_served", port=args.metrics_port, host=args.metrics_host)


def ingest_command(args: argparse.Namespace) -> int:
    with _metrics_files("ingest", several_processes=args.workers > 1):
        return _ingest(args)


def _ingest(args: argparse.Namespace) -> int:
    # Each process serving requests watches the policies (`ingest_app`). With --workers > 1,
    # SIGHUP to this parent makes uvicorn replace its workers one by one, each loading afresh.
    _prepare(watch=False)
    uvicorn.run(
        "worker.commands.serve:ingest_app",
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
    # prefork: tasks run in child processes, so their samples go through files
    with _metrics_files("worker", several_processes=args.metrics_port is not None):
        return _worker(args)


def _worker(args: argparse.Namespace) -> int:
    folder_watch = _prepare()
    _serve_metrics(args)
    celery_worker_app.safe_say = say_as_json  # its shutdown notices, as JSON lines too
    # Celery's SIGHUP restarts the worker by exec (outside a terminal); here it reloads the
    # policies instead (pool processes reload by watching the folder).
    celery_worker_app.install_worker_restart_handler = _reload_on_hangup(folder_watch)
    # Pool processes share the parent's memory after fork; a collection there would copy every
    # page it touches (bench/worker_rss_bench.py: +45 MB of PSS). Frozen objects are not scanned.
    worker_init.connect(lambda **_: gc.freeze(), weak=False)
    config = settings()
    queues = args.queues or config.fire_queue
    if args.apply:
        from worker.events.applier_step import ApplierStep  # noqa: PLC0415 - only where a worker runs

        ApplierStep.batch = args.batch
        # SQLite has one writer at a time: a second applier would only wait for the first.
        ApplierStep.threads = 1 if config.database_url.startswith("sqlite") else args.appliers
        celery_app.steps["worker"].add(ApplierStep)
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


def _reload_on_hangup(folder_watch: FolderWatch | None) -> Any:
    """What Celery calls where it would install its restart-on-SIGHUP handler (outside a
    terminal): SIGHUP reloads this process's policies. Pool processes ignore SIGHUP and follow
    the folder by their own watch (`worker.events.applier_step`)."""

    def install(worker: Any, sig: str = "SIGHUP") -> None:
        if folder_watch is not None:
            on_hangup(folder_watch)

    return install


def beat_command(args: argparse.Namespace) -> int:
    """Celery beat with Escalera's scheduler: claims due checkpoints every tick (<= 1 s)."""
    _prepare()
    _serve_metrics(args)
    from scheduler.beat import EscaleraScheduler  # noqa: PLC0415 - beat's class only where beat runs

    celery_app.Beat(scheduler=EscaleraScheduler, max_interval=1, loglevel="INFO", quiet=True).run()
    return 0
