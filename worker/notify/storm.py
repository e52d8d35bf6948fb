"""Storm coalescing: which notifications go out one by one and which as one digest. Pure.

When a channel has ``threshold`` or more notifications in one delivery pass (a mass outage
breaching thousands of tickets at once), it gets one digest message per ``digest_max`` of them
instead of one message each; every notification in a digest is recorded as delivered by it, and
its dedupe key is in the digest's text. Nothing is ever held back to wait for a storm: a pass
coalesces only what is already due, so a lone page goes out as fast as before. Notifications
held in their route's quiet hours (`worker.notify.quiet`) are released as a ``batch``: digests
whatever their number, even of one.
``docs/notifications-storms.md`` is the user's description of this.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from shared.config import STORM_DIGEST_MAX, STORM_THRESHOLD, Settings


@dataclass(frozen=True)
class StormSettings:
    # ESCALERA_STORM_THRESHOLD: this many for one channel in one pass make a storm; 0: never
    threshold: int = STORM_THRESHOLD.default
    # ESCALERA_STORM_DIGEST_MAX: notifications listed in one digest message at most
    digest_max: int = STORM_DIGEST_MAX.default

    @classmethod
    def from_settings(cls, config: Settings) -> StormSettings:
        """The process's: read and checked with its other settings, at start."""
        return cls(config.storm_threshold, config.storm_digest_max)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> StormSettings:
        """From ``environ`` (a deliverer given no settings), read as `Settings` reads them."""
        return cls(
            threshold=STORM_THRESHOLD.parse(environ.get(STORM_THRESHOLD.variable, "")),
            digest_max=STORM_DIGEST_MAX.parse(environ.get(STORM_DIGEST_MAX.variable, "")),
        )

    @property
    def enabled(self) -> bool:
        return self.threshold > 0


class Pending(NamedTuple):
    """What grouping needs of one notification about to be sent (a tuple: one per
    notification of a storm)."""

    id: int
    channel: str
    language: str
    targets: tuple[int, ...]  # indices of the channel's URLs still to send to
    alone: bool = False  # never in a digest (a note on its own ticket: `worker.notify.writeback`)


@dataclass(frozen=True)
class Send:
    """One message to some targets of one channel, for one notification or a digest of many."""

    channel: str
    language: str
    targets: tuple[int, ...]
    ids: tuple[int, ...]
    batch: bool = False  # held notifications released together: a digest even of one

    @property
    def digest(self) -> bool:
        return self.batch or len(self.ids) > 1


def plan_sends(
    pending: Sequence[Pending], storm: StormSettings, *, batch: bool = False
) -> list[Send]:
    """Each notification on its own, except on a channel in a storm: digests, in id order
    (but never of one that must go ``alone``). A ``batch`` (held notifications released
    together) is digests on every channel, a storm or not.

    Within a storm, only notifications that still need the same targets (a retry may need
    fewer) and speak the same language share a digest.
    """
    by_channel: dict[str, list[Pending]] = defaultdict(list)
    for item in sorted(pending, key=lambda p: p.id):
        by_channel[item.channel].append(item)
    sends: list[Send] = []
    for channel, items in by_channel.items():
        if not batch and (not storm.enabled or len(items) < storm.threshold):
            sends += [Send(channel, p.language, p.targets, (p.id,)) for p in items]
            continue
        groups: dict[tuple[str, tuple[int, ...]], list[int]] = defaultdict(list)
        for item in items:
            if item.alone:
                sends.append(Send(channel, item.language, item.targets, (item.id,)))
            else:
                groups[(item.language, item.targets)].append(item.id)
        for (language, targets), ids in groups.items():
            for start in range(0, len(ids), storm.digest_max):
                sends.append(
                    Send(
                        channel,
                        language,
                        targets,
                        tuple(ids[start : start + storm.digest_max]),
                        batch,
                    )
                )
    return sends
