"""Storm coalescing: which notifications go out one by one and which as one digest. Pure.

When a channel has ``threshold`` or more notifications in one delivery pass (a mass outage
breaching thousands of tickets at once), it gets one digest message per ``digest_max`` of them
instead of one message each; every notification in a digest is recorded as delivered by it, and
its dedupe key is in the digest's text. Nothing is ever held back to wait for a storm: a pass
coalesces only what is already due, so a lone page goes out as fast as before.
``docs/notifications-storms.md`` is the user's description of this.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

THRESHOLD_ENV = "ESCALERA_STORM_THRESHOLD"
DIGEST_MAX_ENV = "ESCALERA_STORM_DIGEST_MAX"


@dataclass(frozen=True)
class StormSettings:
    threshold: int = 10  # this many for one channel in one pass make a storm; 0: never
    digest_max: int = 200  # notifications listed in one digest message at most

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> StormSettings:
        """``ESCALERA_STORM_THRESHOLD`` and ``ESCALERA_STORM_DIGEST_MAX``, if set."""
        default = cls()
        return cls(
            threshold=_count(environ, THRESHOLD_ENV, default.threshold, minimum=0),
            digest_max=_count(environ, DIGEST_MAX_ENV, default.digest_max, minimum=2),
        )

    @property
    def enabled(self) -> bool:
        return self.threshold > 0


def _count(environ: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < minimum:
        raise ValueError(f"{name}={raw!r}: write a whole number, at least {minimum}")
    return int(raw)


class Pending(NamedTuple):
    """What grouping needs of one notification about to be sent (a tuple: one per
    notification of a storm)."""

    id: int
    channel: str
    language: str
    targets: tuple[int, ...]  # indices of the channel's URLs still to send to


@dataclass(frozen=True)
class Send:
    """One message to some targets of one channel, for one notification or a digest of many."""

    channel: str
    language: str
    targets: tuple[int, ...]
    ids: tuple[int, ...]

    @property
    def digest(self) -> bool:
        return len(self.ids) > 1


def plan_sends(pending: Sequence[Pending], storm: StormSettings) -> list[Send]:
    """Each notification on its own, except on a channel in a storm: digests, in id order.

    Within a storm, only notifications that still need the same targets (a retry may need
    fewer) and speak the same language share a digest.
    """
    by_channel: dict[str, list[Pending]] = defaultdict(list)
    for item in sorted(pending, key=lambda p: p.id):
        by_channel[item.channel].append(item)
    sends: list[Send] = []
    for channel, items in by_channel.items():
        if not storm.enabled or len(items) < storm.threshold:
            sends += [Send(channel, p.language, p.targets, (p.id,)) for p in items]
            continue
        groups: dict[tuple[str, tuple[int, ...]], list[int]] = defaultdict(list)
        for item in items:
            groups[(item.language, item.targets)].append(item.id)
        for (language, targets), ids in groups.items():
            for start in range(0, len(ids), storm.digest_max):
                sends.append(
                    Send(channel, language, targets, tuple(ids[start : start + storm.digest_max]))
                )
    return sends
