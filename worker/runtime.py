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
from shared.directory import EMPTY, Directory
from shared.directory_file import load_directory
from shared.integrations import Integrations, load_integrations
from shared.redis_keys import REPEATS
from worker.policies.book import PolicyBook
from worker.policies.store import book_at_start
from worker.policies.watch import FolderWatch, on_hangup


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    policies: PolicyBook  # reloadable in place (`keep_policies_fresh`)
    redis: Redis
    timers: TimerIndex
    repeats: TimerIndex  # the next repeat of each unacknowledged page
    integrations: Integrations  # the portals' settings: the write-back channel signs in with them
    directory: Directory = EMPTY  # the operator's file: a route's `to` finds channels in it

    @classmethod
    def build(cls, config: Settings) -> Runtime:
        engine = make_engine(config.database_url)
        redis = Redis.from_url(config.redis_url, socket_timeout=5)
        sessions = session_factory(engine)
        return cls(
            config,
            engine,
            sessions,
            book_at_start(config, sessions),  # the folder, or its last good copy if it is broken
            redis,
            TimerIndex(redis, config.redis_prefix),
            TimerIndex(redis, config.redis_prefix, REPEATS),
            load_integrations(config.integrations),  # a broken file stops the process here
            load_directory(config.directory),  # so does a broken directory
        )


@lru_cache(maxsize=1)
def runtime() -> Runtime:
    """The process's runtime; tests call ``runtime.cache_clear()`` (and ``settings``'s) to reset."""
    return Runtime.build(settings())


def keep_policies_fresh(rt: Runtime, *, hangup: bool) -> FolderWatch:
    """A long-running process's watch on its policy folder, started; with ``hangup``, SIGHUP
    reloads too (installed first, so no SIGHUP after the announcement finds it missing)."""
    config = rt.settings
    watch = FolderWatch(rt.policies, config.policy_dir, rt.sessions, config.policy_poll_s)
    if hangup:
        on_hangup(watch)
    watch.start()
    return watch
