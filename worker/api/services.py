"""What the ingest app's routes are wired to: settings, policies, queue, database, portals."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from scheduler.timer_index import TimerIndex
from shared.config import Settings
from shared.directory import EMPTY, Directory
from shared.metrics_export import QueueDepth
from worker.adapters.base import Adapter
from worker.api.publisher import Publisher
from worker.policies.book import PolicyBook


@dataclass(frozen=True)
class Webhook:
    adapter: Adapter
    secret: str | None  # None: not configured, every request is refused


@dataclass(frozen=True)
class Services:
    settings: Settings
    policies: PolicyBook
    publisher: Publisher
    sessions: sessionmaker[Session]
    webhooks: Mapping[str, Webhook]
    redis_ping: Any  # () -> bool
    repeats: TimerIndex | None = None  # acknowledged pages stop repeating
    timers: TimerIndex | None = None  # armed checkpoints: the board's operations page counts them
    queue_depth: QueueDepth | None = None  # reported by /metrics
    directory: Directory = EMPTY  # the operator's directory file: timelines name who it knows
