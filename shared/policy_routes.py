"""Who is told what: a policy's notification channels and routes.

A channel is only a name here. Its Apprise URL comes from the environment variable
``ESCALERA_CHANNEL_<NAME>`` (``p1_phone`` -> ``ESCALERA_CHANNEL_P1_PHONE``), never from a file,
so a policy can be committed and shared without leaking a webhook key.

A route matches checkpoints by kind, metric, tier, priority and plan (an omitted criterion
matches everything) and names the channels to tell. A route may ``repeat`` its message until
someone acknowledges it (paging semantics), and names how many delivery ``attempts`` a channel
gets before the notification is dead-lettered and its ``fallback`` channel is told instead.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from shared.durations import Duration

Kind = Literal["warning", "breach", "escalation", "reminder"]
MetricName = Literal[
    "first_response", "update", "next_reply", "resolution", "escalation", "allowance"
]

_CHANNEL_NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")


def _channel_name(name: str) -> str:
    if not _CHANNEL_NAME.match(name):
        raise ValueError(
            f"{name!r}: a channel name is lower-case letters, digits and _ (it names a variable)"
        )
    return name


ChannelName = Annotated[str, AfterValidator(_channel_name)]


def channel_env(name: str) -> str:
    """The environment variable holding a channel's Apprise URL(s)."""
    return f"ESCALERA_CHANNEL_{name.upper()}"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChannelSpec(_Strict):
    description: str | None = None


class Match(_Strict):
    """Which checkpoints a route takes; a criterion left out matches every value."""

    kinds: list[Kind] | None = None
    metrics: list[MetricName] | None = None
    tiers: list[Annotated[int, Field(ge=1, le=9)]] | None = None
    priorities: list[str] | None = None
    plans: list[str] | None = None


def _wall_clock(value: Duration) -> Duration:
    if value.fixed_seconds() is None:
        raise ValueError("a repeat interval is wall-clock time: write e.g. 15m or 1h")
    return value


class Repeat(_Strict):
    """Send again every ``every`` (wall clock) until acknowledged, at most ``limit`` times more."""

    every: Annotated[Duration, AfterValidator(_wall_clock)]
    limit: Annotated[int, Field(ge=1, le=100)] = 3


class RouteSpec(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    when: Match = Match()
    channels: Annotated[list[ChannelName], Field(min_length=1)]
    repeat: Repeat | None = None
    attempts: Annotated[int, Field(ge=1, le=20)] = 5
    fallback: ChannelName | None = None

    # -- a page's messages: number 0 is the first, the repeats follow ------------------------
    @property
    def last_repeat(self) -> int:
        """The number of a page's last message (0: it is sent once)."""
        return self.repeat.limit if self.repeat is not None else 0

    def channels_at(self, repeat: int, *, channel: str | None = None) -> list[str]:
        """The channels message number ``repeat`` goes to: all of the route's, or again the
        one (``channel``) whose page repeats (a page that went to a fallback channel repeats
        there)."""
        if channel is not None and repeat > 0:
            return [channel]
        return list(self.channels)

    def wait_after(self, repeat: int) -> timedelta | None:
        """How long after message number ``repeat`` went out the next one is due; None: it
        is the last."""
        if self.repeat is None or repeat >= self.last_repeat:
            return None
        return timedelta(seconds=self.repeat.every.seconds_on(0))
