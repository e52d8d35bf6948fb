"""What a running process holds: settings, the database, the policies. Built once, resettable."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from redis import Redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from scheduler.timer_index import TimerIndex
from shared.config import Settings, settings
from shared.db.engine import make_engine, session_factory
from worker.policies import PolicyBook


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    policies: PolicyBook
    redis: Redis
    timers: TimerIndex
    repeats: TimerIndex  # the next repeat of each unacknowledged page

    @classmethod
    def build(cls, config: Settings) -> Runtime:
        engine = make_engine(config.database_url)
        redis = Redis.from_url(config.redis_url, socket_timeout=5)
        return cls(
            config,
            engine,
            session_factory(engine),
            PolicyBook.from_settings(config),
            redis,
            TimerIndex(redis, config.redis_prefix),
            TimerIndex(redis, config.redis_prefix, "repeats"),
        )


@lru_cache(maxsize=1)
def runtime() -> Runtime:
    """The process's runtime; tests call ``runtime.cache_clear()`` (and ``settings``'s) to reset."""
    return Runtime.build(settings())
