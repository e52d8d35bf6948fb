"""Stored events already read back, by row id: a ticket's history is parsed once, not per event.

Stored events never change. An entry is used only if the row still holds the same
``(source, event_id)`` (a process may see several databases, as tests do). Bounded (least
recently used out first) and shared by a worker's applier threads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping

from shared.events import Event

SIZE = 50_000  # ~50 MB: the histories of the tickets a busy desk is working on


class ParsedEvents:
    def __init__(self, size: int = SIZE) -> None:
        self._size = size
        self._events: OrderedDict[int, Event] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, rows: Mapping[int, tuple[str, str]]) -> dict[int, Event]:
        """Those of the rows (id -> (source, event_id)) held here."""
        found: dict[int, Event] = {}
        with self._lock:
            for row_id, (source, event_id) in rows.items():
                event = self._events.get(row_id)
                if event is not None and (event.source, event.event_id) == (source, event_id):
                    self._events.move_to_end(row_id)
                    found[row_id] = event
        return found

    def put(self, events: dict[int, Event]) -> None:
        with self._lock:
            self._events.update(events)
            while len(self._events) > self._size:
                self._events.popitem(last=False)


PARSED = ParsedEvents()
