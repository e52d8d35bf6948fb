"""The soak's overload mode, its pure parts: the rate schedule, lateness over time, the judge.

A run (``soak.py --overload``) starts tickets at the sustainable rate (``--rate``) for the
warm-up and ``--minutes``, at the overload rate (twice it unless told) for ``--overload-minutes``
(2), then at the sustainable rate again for ``--recovery-minutes`` (5). The rates are of events:
tickets start at ``rate / events-per-ticket`` a second, and each life sends its events over its
minutes, so the events of the overload's extra tickets go on arriving for up to the longest
life after its end (the table and the plot show the events/s that arrived).

Recovery: firing lateness (``fired_at - due_at``) by when the checkpoint fell due, in buckets of
``--bucket`` seconds; the run has recovered at the end of the last bucket after the overload's
end whose p99 is 1 s or more, if every bucket after it, to the end of the recovery phase, is
under 1 s. Judging (the chaos judge's rules; no process is killed here, so any repeat is a
defect): every event answered 202 is stored exactly once or kept aside as a dead letter; each
checkpoint fired at most once (the worker's log lines); each notification's dedupe key reaches
the sink at most once (a storm digest carries each of its notifications' keys).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench._support import percentile

BAR_S = 1.0  # firing lateness p99 the run must get back under
WITHIN_S = 240.0  # ... within this long after the overload's end


@dataclass(frozen=True)
class Phase:
    name: str
    start: float  # seconds after the load began
    end: float
    rate: float  # events/s asked (tickets start at rate / events per ticket)


def overload_phases(
    base: float, peak: float, *, warmup: float, before: float, overload: float, after: float
) -> list[Phase]:
    """Warm-up and ``before`` seconds at ``base``, ``overload`` at ``peak``, ``after`` at
    ``base``."""
    edges = [0.0, warmup, warmup + before, warmup + before + overload]
    edges.append(edges[-1] + after)
    names, rates = ("warm-up", "base", "overload", "recovery"), (base, base, peak, base)
    return [
        Phase(name, start, end, rate)
        for name, rate, start, end in zip(names, rates, edges, edges[1:], strict=False)
        if end > start
    ]


def asked_by(phases: Sequence[Phase], t: float) -> float:
    """Events' worth of tickets the schedule has started ``t`` seconds in: the rate's integral."""
    return sum(p.rate * (min(t, p.end) - p.start) for p in phases if t > p.start)


def phase(phases: Sequence[Phase], name: str) -> Phase:
    return next(p for p in phases if p.name == name)


@dataclass(frozen=True)
class Point:
    """A sample of the run: seconds after the load began, events so far, queue depths."""

    at: float
    accepted: int
    applied: int
    events_queue: int
    fire_queue: int


def per_second(points: Sequence[Point]) -> list[tuple[float, float, float]]:
    """(at, accepted/s, applied/s) of each sample since the one before (or since 0)."""
    rates, before = [], Point(0.0, 0, 0, 0, 0)
    for point in points:
        span = point.at - before.at
        if span > 0:
            accepted = (point.accepted - before.accepted) / span
            rates.append((point.at, accepted, (point.applied - before.applied) / span))
        before = point
    return rates


@dataclass(frozen=True)
class Bucket:
    start: float  # seconds after the load began: checkpoints due in [start, start + width)
    n: int
    p50: float
    p99: float
    most: float


def buckets(points: Iterable[tuple[float, float]], width: float) -> list[Bucket]:
    """(when due, lateness) in seconds -> lateness by due time, one bucket per ``width`` s that
    has a checkpoint in it, in time order."""
    grouped: dict[int, list[float]] = {}
    for due, late in points:
        grouped.setdefault(int(due // width), []).append(late)
    result = []
    for index in sorted(grouped):
        values = sorted(grouped[index])
        p50, p99 = percentile(values, 50), percentile(values, 99)
        result.append(Bucket(index * width, len(values), p50, p99, values[-1]))
    return result


def recovery_s(
    lateness: Sequence[Bucket], width: float, end: float, until: float, bar: float = BAR_S
) -> float | None:
    """Seconds from ``end`` (the overload's) until lateness p99 stays under ``bar`` to ``until``
    (the recovery phase's end): 0 if no bucket from ``end`` on reached it; None if the last
    bucket before ``until`` still did (not recovered)."""
    after = [b for b in lateness if b.start + width > end and b.start < until]
    over = [b for b in after if b.p99 >= bar]
    if not over:
        return 0.0
    if over[-1] is after[-1]:
        return None
    return over[-1].start + width - end


# A storm digest's line ends with its notification's key: "- [P1] api/T-1: … · Key: 12:r:c:0".
_DIGEST_KEY = re.compile(r"^- \[.*· [^·:]+: (\S+)$")


def keys_in(header: str | None, body: bytes) -> list[str]:
    """The dedupe keys a message at the sink carries: its header's, or a digest's each."""
    if not header:
        return []
    if not header.startswith("digest:"):
        return [header]
    try:
        text = str(json.loads(body).get("message", ""))
    except ValueError:
        return [header]
    return [m.group(1) for m in map(_DIGEST_KEY.match, text.splitlines()) if m]


def fired_in_log(log: Path) -> Counter[int]:
    """How many times the worker's log says each checkpoint fired (a line each, or a storm's
    line naming many)."""
    fired: Counter[int] = Counter()
    with log.open(errors="replace") as lines:
        for line in lines:
            if "checkpoint_fired" not in line and "checkpoint_storm_fired" not in line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("event") == "checkpoint_fired":
                fired[int(record["checkpoint"])] += 1
            elif record.get("event") == "checkpoint_storm_fired":
                fired.update(int(c) for c in record["checkpoints"])
    return fired


@dataclass
class Verdict:
    accepted: int = 0  # distinct event ids answered 202
    stored: int = 0  # distinct event ids in the events table
    dead_lettered: int = 0  # accepted, kept aside as dead letters: accounted for
    lost: list[str] = field(default_factory=list)  # accepted, neither stored nor dead-lettered
    stored_twice: list[str] = field(default_factory=list)
    stored_unanswered: int = 0  # stored, no 202 seen (its answer lost): not a defect
    fired: int = 0  # checkpoints fired, per the database
    fired_logged: int = 0  # per the worker's log
    fired_twice: list[int] = field(default_factory=list)
    messages: int = 0  # notification keys seen at the sink
    delivered_twice: list[str] = field(default_factory=list)

    @property
    def doubled(self) -> int:
        return len(self.stored_twice) + len(self.fired_twice) + len(self.delivered_twice)

    @property
    def passed(self) -> bool:
        return not self.lost and not self.doubled


def judge(
    accepted: set[str],
    stored: Counter[str],
    *,
    dead: set[str],
    fired: int,
    fired_log: Counter[int],
    sink_keys: Counter[str],
) -> Verdict:
    """Nothing lost, nothing doubled: ``stored`` and ``sink_keys`` count each event id and
    each dedupe key seen, ``fired_log`` each checkpoint's firings."""
    return Verdict(
        accepted=len(accepted),
        stored=len(stored),
        dead_lettered=len(accepted & dead),
        lost=sorted(accepted - set(stored) - dead),
        stored_twice=sorted(e for e, n in stored.items() if n > 1),
        stored_unanswered=len(set(stored) - accepted),
        fired=fired,
        fired_logged=len(fired_log),
        fired_twice=sorted(c for c, n in fired_log.items() if n > 1),
        messages=len(sink_keys),
        delivered_twice=sorted(k for k, n in sink_keys.items() if n > 1),
    )
