"""A bounded cache that forgets the least recently used first: what a cache keyed by input must be.

Calendars, holiday tables and the terms of a policy's targets are cached per day, year or zone;
any of those keys can come from a request (``GET /v1/tickets/...?at=``, an event's customer
time zone), so each cache holds at most ``size`` entries.

It is an LRU of two generations rather than a linked list: new and recently read entries live
in ``hot``; when ``hot`` holds half the size it becomes ``cold`` and the old ``cold`` is dropped
whole. A read found in ``cold`` moves back to ``hot``. So an entry read at least once every
``size / 2`` new entries is never forgotten, and a hit costs one ``dict`` look-up with no lock
(the calendar reads its day cache hundreds of times per ticket; a locked ``OrderedDict`` made
warm calendar arithmetic twice as slow). Ingest's reads and the worker's appliers share a
policy's calendars across threads: a dict read is atomic, writes take a lock, and a race costs
at most a value built twice.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Lru(Generic[K, V]):
    """At most ``size`` entries; the least recently used go first. Values are never None."""

    def __init__(self, size: int) -> None:
        if size < 2:
            raise ValueError(f"an LRU cache holds at least two entries (got {size})")
        self.size = size
        self._half = size // 2
        self._hot: dict[K, V] = {}
        self._cold: dict[K, V] = {}
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        value = self._hot.get(key)
        if value is None:
            value = self._cold.get(key)
            if value is not None:
                self.put(key, value)
        return value

    def put(self, key: K, value: V) -> V:
        with self._lock:
            if len(self._hot) >= self._half:
                self._cold, self._hot = self._hot, {}
            self._hot[key] = value
        return value

    def __setitem__(self, key: K, value: V) -> None:
        self.put(key, value)

    def get_or_build(self, key: K, build: Callable[[K], V]) -> V:
        """The cached value of ``key``, built (outside the lock) and kept when missing."""
        value = self.get(key)
        return self.put(key, build(key)) if value is None else value

    def clear(self) -> None:
        with self._lock:
            self._hot, self._cold = {}, {}

    def __len__(self) -> int:
        """Entries held (one read back from ``cold`` is held twice until ``cold`` is dropped)."""
        return len(self._hot) + len(self._cold)

    def __contains__(self, key: object) -> bool:
        return key in self._hot or key in self._cold
