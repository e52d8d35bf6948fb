"""Who is told what: a policy's notification channels and routes.

A channel is only a name here. Its Apprise URL comes from the environment variable
``ESCALERA_CHANNEL_<NAME>`` (``p1_phone`` -> ``ESCALERA_CHANNEL_P1_PHONE``), never from a file,
so a policy can be committed and shared without leaking a webhook key.

A route matches checkpoints by kind, metric, tier, priority and plan (an omitted criterion
matches everything) and names the channels to tell. A route may ``repeat`` its message until
someone acknowledges it (paging semantics), and names how many delivery ``attempts`` a channel
gets before the notification is dead-lettered and its ``fallback`` channel is told instead.

Instead of ``channels``, a route may name ordered ``steps`` (an escalation chain): each step's
channels are told when nobody acknowledged the step before it within its ``ack_within``, and
the last step may repeat ``repeat_last`` times. A page's repeats and steps are one sequence,
numbered from 0 (the first message) in the notification's ``repeat`` column: `RouteSpec`
answers which channels each number tells and how long after it the next one comes.

A route may keep quiet outside a calendar's open hours (``quiet_outside``): what it would send
then is held and sent as one digest per channel at the calendar's next opening
(`scheduler.quiet_hours`). A route marked ``always`` is never held, and says so.

A route (or a step) may also name recipients from the ticket, ``to: [assignee, group]``: each
is told on the channel the directory gives it (`shared.directory`), and one the directory does
not know falls back to the route's (or the step's) ``channels``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from shared.durations import Duration

Kind = Literal["warning", "breach", "escalation", "reminder"]
MetricName = Literal[
    "first_response", "update", "next_reply", "resolution", "escalation", "allowance"
]

# Who of the ticket a route may tell, through the directory (`shared.directory`).
Recipient = Literal["assignee", "group"]
Recipients = Annotated[list[Recipient], Field(min_length=1, max_length=2)]

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


def _wall_clock_wait(value: Duration) -> Duration:
    if value.fixed_seconds() is None:
        raise ValueError("ack_within is wall-clock time: write e.g. 10m or 1h")
    return value


class Repeat(_Strict):
    """Send again every ``every`` (wall clock) until acknowledged, at most ``limit`` times more."""

    every: Annotated[Duration, AfterValidator(_wall_clock)]
    limit: Annotated[int, Field(ge=1, le=100)] = 3


class Step(_Strict):
    """One step of an escalation chain: who is told, and how long they have to acknowledge
    (wall clock) before the next step is told. On the last step, ``ack_within`` is the time
    between its repeats (``repeat_last``). ``to`` tells the ticket's assignee or group, with
    ``channels`` their fallback."""

    channels: Annotated[list[ChannelName], Field(min_length=1)] | None = None
    to: Recipients | None = None
    ack_within: Annotated[Duration, AfterValidator(_wall_clock_wait)] | None = None


# A chain's size: more steps than this is a rota, not a chain; its last step repeats at most
# 20 times (Opsgenie's ceiling on an escalation's loops; PagerDuty's is 9).
MAX_STEPS = 10
MAX_REPEAT_LAST = 20

RoutePath = tuple[str | int, ...]


class RouteSpec(_Strict):
    """Which checkpoints go where: ``channels`` (with an optional ``repeat``), or ``steps``, an
    escalation chain (with an optional ``repeat_last``)."""

    name: Annotated[str, Field(min_length=1, max_length=64)]
    when: Match = Match()
    channels: Annotated[list[ChannelName], Field(min_length=1)] | None = None
    # the ticket's assignee or group, through the directory; ``channels`` is their fallback
    to: Recipients | None = None
    repeat: Repeat | None = None
    steps: Annotated[list[Step], Field(min_length=1, max_length=MAX_STEPS)] | None = None
    repeat_last: Annotated[int, Field(ge=0, le=MAX_REPEAT_LAST)] = 0
    attempts: Annotated[int, Field(ge=1, le=20)] = 5
    fallback: ChannelName | None = None
    # a calendar of the policy: outside its open hours, this route's messages wait for it
    quiet_outside: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    always: bool = False  # never held (a P1 page): refuses ``quiet_outside``

    # -- what a policy check refuses: paths under ``routes[i]`` ---------------------------
    def problems(self) -> Iterator[tuple[RoutePath, str]]:
        """Combinations the schema lets through but that cannot mean anything."""
        if self.always and self.quiet_outside is not None:
            yield (
                ("quiet_outside",),
                "a route marked `always: true` is never held: remove `quiet_outside`",
            )
        if self.steps is None:
            if self.channels is None and self.to is None:  # `to` alone: its channels or nobody
                yield ("channels",), "a route needs `channels` or `steps` (an escalation chain)"
            if self.repeat_last:
                yield ("repeat_last",), "`repeat_last` repeats the last of `steps`: use `repeat`"
            return
        if self.channels is not None:
            yield ("steps",), "a route has either `channels` or `steps`, not both"
        if self.to is not None:
            yield ("to",), "a chain names `to` on its steps: steps: [{to: [assignee], …}]"
        if self.repeat is not None:
            yield ("repeat",), "a chain repeats its last step with `repeat_last`, not `repeat`"
        last = len(self.steps) - 1
        for i, step in enumerate(self.steps):
            if step.channels is None and step.to is None:
                yield ("steps", i, "channels"), "a step needs `channels` or `to`"
            if step.ack_within is None and i < last:
                yield (
                    ("steps", i, "ack_within"),
                    f"how long before steps[{i + 1}] is told: write e.g. ack_within: 10m",
                )
            elif step.ack_within is None and self.repeat_last:
                yield (
                    ("steps", i, "ack_within"),
                    f"the last step repeats (repeat_last: {self.repeat_last}): how long between "
                    "its repeats? write e.g. ack_within: 10m",
                )

    def channel_references(self) -> Iterator[tuple[RoutePath, str]]:
        """Every channel the route names, with where it names it."""
        for c, channel in enumerate(self.channels or []):
            yield ("channels", c), channel
        for s, step in enumerate(self.steps or []):
            for c, channel in enumerate(step.channels or []):
                yield ("steps", s, "channels", c), channel
        if self.fallback is not None:
            yield ("fallback",), self.fallback

    # -- a page's sequence: repeat 0 is the first message ----------------------------------
    @property
    def chain(self) -> bool:
        """True for a route with ``steps``: its repeats tell each step's channels."""
        return self.steps is not None

    @property
    def last_repeat(self) -> int:
        """The number of a page's last message (0: it is sent once)."""
        if self.steps is not None:
            return len(self.steps) - 1 + self.repeat_last
        return self.repeat.limit if self.repeat is not None else 0

    def step_of(self, repeat: int) -> int:
        """The step (from 0) message number ``repeat`` belongs to; 0 without steps."""
        if self.steps is None:
            return 0
        return min(repeat, len(self.steps) - 1)

    def first_channels(self) -> list[str]:
        """The channels the checkpoint's first message goes to."""
        return self.channels_at(0)

    def recipients_at(self, repeat: int) -> list[Recipient]:
        """Who of the ticket message number ``repeat`` tells through the directory (``to``):
        its step's, or the route's first message's (a repeat goes where the first went)."""
        if self.steps is not None:
            return list(self.steps[self.step_of(repeat)].to or [])
        return list(self.to or []) if repeat == 0 else []

    def channels_at(self, repeat: int, *, channel: str | None = None) -> list[str]:
        """The channels message number ``repeat`` goes to: its step's, or for a route with
        ``channels`` all of them, or again the one (``channel``) whose page repeats (a page
        that went to a fallback channel repeats there). With recipients (`recipients_at`),
        these are their fallback."""
        if self.steps is not None:
            return list(self.steps[self.step_of(repeat)].channels or [])
        if channel is not None and repeat > 0:
            return [channel]
        return list(self.channels or [])

    def wait_after(self, repeat: int) -> timedelta | None:
        """How long after message number ``repeat`` went out the next one is due; None: it
        is the last."""
        if repeat >= self.last_repeat:
            return None
        if self.steps is not None:
            wait = self.steps[self.step_of(repeat)].ack_within
        else:
            wait = self.repeat.every if self.repeat is not None else None
        return None if wait is None else timedelta(seconds=wait.seconds_on(0))
