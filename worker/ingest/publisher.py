"""Putting accepted events on the queue. A 202 is answered only after this returns."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from celery import Celery

from shared.celery_app import APPLY_EVENT
from shared.events import Event


class Publisher(Protocol):
    def publish(self, events: Sequence[Event]) -> None:
        """Durably enqueue every event, or raise."""


class CeleryPublisher:
    """One ``apply_event`` task per event on the events queue (Redis LPUSH, synchronous)."""

    def __init__(self, app: Celery, queue: str) -> None:
        self._app, self._queue = app, queue

    def publish(self, events: Sequence[Event]) -> None:
        with self._app.producer_or_acquire() as producer:
            for event in events:
                self._app.send_task(
                    APPLY_EVENT,
                    args=[event.model_dump(mode="json")],
                    queue=self._queue,
                    producer=producer,
                )
