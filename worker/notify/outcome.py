"""What one try of a notification came to: what the task applies and the log reports.

The deliverer (`worker.notify.deliver`) makes them; `worker.tasks` re-queues and hands on what
they say (a `worker.notify.retry` decision, a page's repeat, a fallback's notification), and
`worker.notify.firing_log` counts and logs them, naming a channel by its scheme, never its URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

from worker.notify.retry import Dead, Retry


class Delivery(StrEnum):
    SENT = "sent"
    RETRY = "retry"  # some targets failed: try those again later
    DEAD = "dead"  # out of attempts, or the channel is not configured
    BUSY = "busy"  # another batch holds it (it swept it in): look again in a moment
    SKIPPED = "skipped"  # a repeat or step of a page acknowledged before it went out


class About(NamedTuple):
    """What a log line says of a notification tried: never a URL, only the channel's scheme."""

    checkpoint: int
    channel: str
    scheme: str
    source: str
    ticket_id: str
    message: str  # the dedupe key of the message that carried it: its own, or its digest's


@dataclass(frozen=True)
class Outcome:
    delivery: Delivery
    decision: Retry | Dead | None = None  # a failed try's (`worker.notify.retry`)
    error: str | None = None
    repeat_at: datetime | None = None  # an unacknowledged page goes on then (repeat, step)
    fallback_id: int | None = None  # the notification written to the route's fallback channel
    about: About | None = None  # None: not tried here (held elsewhere, or done before)

    @property
    def retry_in_s(self) -> float | None:
        """The backoff before the failed targets are tried again (None: not retried)."""
        return self.decision.in_s if isinstance(self.decision, Retry) else None
