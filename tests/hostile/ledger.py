"""The nothing-lost fuzzer's tally, by database: events accepted, and of those unaccounted for
(in neither the events nor the dead-letter table after the worker drained the queue)."""

from __future__ import annotations

from collections import Counter


class Ledger:
    def __init__(self) -> None:
        self.accepted: Counter[str] = Counter()
        self.unaccounted: Counter[str] = Counter()

    def count(self, dialect: str, *, accepted: int, unaccounted: int) -> None:
        self.accepted[dialect] += accepted
        self.unaccounted[dialect] += unaccounted

    def lines(self) -> list[str]:
        return [
            f"accepted events on {dialect}: {self.accepted[dialect]}, "
            f"accepted-but-unaccounted = {self.unaccounted[dialect]}"
            for dialect in sorted(self.accepted)
        ]


LEDGER = Ledger()
