"""When a channel's target stops answering, stop waiting on it: a circuit breaker per target.

A target that fails *slowly* (a webhook that accepts the connection and never answers, a mail
server that stalls) costs the fire task its whole time-out, and every batch after it pays the
same: the worker's pool waits on one dead phone bridge while the other channels' pages queue
behind it. So a target whose send failed after `SLOW_FAILURE_S` or more is *tripped*: for
`open_for_s` its notifications are not sent to it at all, but counted as a failed try of that
target and retried at their usual backoff (`worker.notify.retry`), so a channel that stays dead
runs out of its route's attempts and the fallback channel is told as soon as it would be
without the breaker (about 30 s with 5 attempts), only without stalling anybody else. When the
period ends, one send (the *probe*: whoever takes the target's probe token first) tries it
again: accepted, and the target is closed; failed slowly, and it opens for twice as long, up to
`MAX_OPEN_S`. The first period is short (`OPEN_S`), shorter than the retries of a page: a
target that hiccupped once is tried again before its pages run out of attempts.

A target that refuses quickly (an HTTP 500 in milliseconds) is left to the usual retries: it
costs nobody else anything. Pure: the store (`worker.notify.breaker_store`) keeps the state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

SLOW_FAILURE_S = 1.0  # a failed send that took this long: the target is not answering
OPEN_S = 10.0  # the first open period; each failed probe doubles it …
MAX_OPEN_S = 300.0  # … up to this
PROBE_S = 60.0  # a probe token's life: longer than any send's time-out (Apprise: 4 s)
FORGET_S = 3600.0  # a target's trips are remembered this long after its open period ends


class Target(NamedTuple):
    """One URL of a channel, by its position in ``ESCALERA_CHANNEL_<NAME>`` (never the URL)."""

    channel: str
    position: int


@dataclass(frozen=True)
class Tripped:
    """A target found not answering: parked until ``until`` (epoch seconds), ``trips`` times
    running."""

    until: float
    trips: int

    def encode(self) -> str:
        return f"{self.until:.3f}:{self.trips}"

    @classmethod
    def decode(cls, raw: str | bytes) -> Tripped:
        text = raw.decode() if isinstance(raw, bytes) else raw
        until, trips = text.split(":", 1)
        return cls(float(until), int(trips))


def open_for_s(trips: int) -> float:
    """How long a target tripped ``trips`` times running stays parked: 10 s, 20, 40 … 300."""
    return float(min(MAX_OPEN_S, OPEN_S * 2 ** max(0, trips - 1)))


def wait_s(state: Tripped | None, now: float) -> float | None:
    """How long the target's notifications wait (None: send now, or probe if it was tripped)."""
    if state is None or now >= state.until:
        return None
    return state.until - now


def after_send(
    state: Tripped | None, *, failed: bool, elapsed_s: float, now: float
) -> Tripped | None:
    """The target's state after one send took ``elapsed_s``: tripped (again, for longer) by a
    slow failure; closed (None) by an acceptance; as it was after a quick refusal."""
    if failed and elapsed_s >= SLOW_FAILURE_S:
        trips = (state.trips if state else 0) + 1
        return Tripped(now + open_for_s(trips), trips)
    if not failed:
        return None
    return state
