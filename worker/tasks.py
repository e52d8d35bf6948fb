"""Celery tasks: thin wrappers that decode, call a plain service, and map errors to retries."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy.exc import DBAPIError, OperationalError

from shared.celery_app import APPLY_EVENT, app
from shared.events import Event
from worker.apply import apply_event
from worker.runtime import runtime

log = structlog.get_logger("escalera.worker")


@app.task(  # type: ignore[untyped-decorator]  # celery is untyped
    name=APPLY_EVENT,
    acks_late=True,
    autoretry_for=(OperationalError, DBAPIError),  # database down or restarting: retry, never drop
    retry_backoff=True,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=None,
)
def apply_event_task(event: dict[str, Any]) -> str:
    """Apply one canonical event (at-least-once delivery, idempotent on (source, event_id))."""
    parsed = Event.model_validate(event)
    rt = runtime()
    with rt.sessions.begin() as session:
        result = apply_event(session, rt.policies, parsed, datetime.now(UTC))
    log.info(
        "event_applied",
        source=parsed.source,
        ticket_id=parsed.ticket_id,
        event_id=parsed.event_id,
        type=parsed.type.value,
        outcome=result.outcome.value,
        checkpoints_added=len(result.changes.added),
        checkpoints_moved=len(result.changes.moved),
        checkpoints_cancelled=len(result.changes.cancelled),
        error=result.error,
    )
    return result.outcome.value
