"""structlog, configured once per process: one JSON object per line, or readable in a terminal.

Bind ``ticket_id``, ``checkpoint`` and ``source`` where they are known; never log a secret or a
channel URL (settings hold them as SecretStr, which renders as ``**********``).

What the libraries log through the standard `logging` module (Celery, uvicorn, Apprise) and
Python's warnings go through the same renderer, so every line a process writes is one JSON
object; `keep_celery_from_logging_setup` stops Celery from installing its own text format.
"""

from __future__ import annotations

import json as jsonlib
import logging
import os
import sys
from typing import Any, TextIO

import structlog


def configure_logging(*, json: bool = True, level: int = logging.INFO) -> None:
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        # one write of the line and its newline: print() writes them apart, and a line another
        # thread logs (a library's, through `logging`) could fall between the two
        logger_factory=structlog.WriteLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    _route_standard_logging(renderer, level)


def _route_standard_logging(renderer: structlog.types.Processor, level: int) -> None:
    """The root logger's only handler renders like structlog (level, logger, time, message)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)  # e.g. Celery's warning about running as root


def keep_celery_from_logging_setup(**_kwargs: Any) -> None:
    """A `celery.signals.setup_logging` receiver: with one connected, Celery configures nothing."""


def say_as_json(message: str, f: TextIO | None = None) -> None:
    """Celery's ``safe_say`` (``worker: Warm shutdown``), as a JSON line.

    Called from signal handlers, so it writes with one ``os.write`` like the original does.
    """
    line = jsonlib.dumps(
        {"event": message.strip(), "level": "info", "logger": "celery.apps.worker"}
    )
    os.write((f or sys.__stderr__ or sys.stderr).fileno(), line.encode() + b"\n")


log = structlog.get_logger("escalera")
