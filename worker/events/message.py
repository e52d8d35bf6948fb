"""The events queue's message, written by the ingest service and read by the applier: both here.

Each event becomes one ``apply_event`` Celery task message, built by Celery itself
(``app.amqp.as_task_v2``) and wrapped exactly as kombu's Redis transport wraps it. Going through
``send_task`` instead cost ~1.15 ms of CPU per event (kombu's exchange routing, ``saferepr`` of
the arguments, a Redis client per publish) against ~0.1 ms for the push itself
(bench/ingest_bench.py). The messages go to the queue's list under the anonymous exchange, which
is where kombu's direct routing would put them and where a redelivery restores them. A Celery
worker would run them as ``apply_event`` tasks; the applier reads them in batches instead.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from typing import Any

from celery import Celery
from pydantic import ValidationError

from shared.celery_app import APPLY_EVENT
from shared.events import Event


def encode(app: Celery, queue: str, event: Event) -> str:
    """One event as an ``apply_event`` task message for ``queue`` (Celery protocol 2)."""
    task_id = str(uuid.uuid4())
    task = app.amqp.as_task_v2(
        task_id,
        APPLY_EVENT,
        args=[event.model_dump(mode="json")],
        kwargs={},
        ignore_result=True,
        argsrepr=f"{event.source}/{event.ticket_id} {event.type.value}",
        kwargsrepr="{}",
    )
    body = json.dumps(task.body).encode()
    properties: dict[str, Any] = {
        **task.properties,
        "delivery_mode": 2,
        "priority": 0,
        "body_encoding": "base64",
        "delivery_info": {"exchange": "", "routing_key": queue},
        "delivery_tag": str(uuid.uuid4()),
    }
    envelope = {
        "body": base64.b64encode(body).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": task.headers,
        "properties": properties,
    }
    return json.dumps(envelope)


@dataclass(frozen=True)
class Decoded:
    """A queue message: an event to apply, another task's message, or something unreadable."""

    event: Event | None = None
    other_task: str | None = None
    error: str | None = None


def decode(raw: bytes) -> Decoded:
    """Read a Celery (protocol 2) ``apply_event`` message as `encode` writes it."""
    try:
        envelope = json.loads(raw)
        task = envelope["headers"]["task"]
        if task != APPLY_EVENT:
            return Decoded(other_task=task)
        args, _kwargs, _embed = json.loads(base64.b64decode(envelope["body"]))
        return Decoded(event=Event.model_validate(args[0]))
    except (ValueError, KeyError, TypeError, IndexError, ValidationError) as exc:
        return Decoded(error=f"unreadable queue message: {type(exc).__name__}: {exc}")
