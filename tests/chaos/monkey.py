"""Kill -9 one of the processes at random moments, and start it again after a random pause."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tests.chaos.system import System

# The shortest pause before a killed process is started again (the judge relies on it:
# nothing a restarted worker sends can arrive sooner after a kill).
SHORTEST_DOWN_S = 0.2


@dataclass
class Monkey:
    system: System
    seed: int
    every_s: tuple[float, float] = (3.0, 9.0)
    down_s: tuple[float, float] = (SHORTEST_DOWN_S, 3.0)
    victims: tuple[str, ...] = ("worker", "beat", "ingest")
    kills: list[tuple[str, float, datetime]] = field(default_factory=list)  # name, down, when

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Monkey:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        self.system.ensure_running()

    def _run(self) -> None:
        rng = random.Random(self.seed)
        while not self._stop.wait(rng.uniform(*self.every_s)):
            name = rng.choice(self.victims)
            down = rng.uniform(*self.down_s)
            when = datetime.now(UTC)
            self.system.procs[name].kill9()
            self.kills.append((name, down, when))
            self._stop.wait(down)
            self.system.procs[name].start()
