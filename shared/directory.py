"""Recipients from the ticket: a directory of who is told where, and the pure resolution of a
route's ``to: [assignee, group]`` into channel names.

A directory maps a ticket's group and its assignee to a channel name (``groups: {Billing:
billing_team}``, ``agents: {"ana@acme.example": ana_mail}``), so the billing team's Slack and
the assignee's e-mail need no route per team. It lives in the policy (``directory:``) or in a
file the operator controls (``ESCALERA_DIRECTORY``, same shape, read at start by
`shared.directory_file`); for a policy,
its own entries win over the file's. Only names live here: a channel's URL comes from the
environment (``ESCALERA_CHANNEL_<NAME>``), never from an event or a directory, and a channel the
policy does not declare is never told.

Names are matched the way the SLA conditions match them (`shared.names.fold`: case, accents and
``-``/``_``/space ignored), so ``Facturación`` in the portal finds ``facturacion`` here. A
recipient the directory does not know (or a ticket with no assignee) falls back to the route's
``channels``; `Missing` says so, for the timeline and the log.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.names import fold
from shared.policy_routes import ChannelName, Recipient

_BOOK = {"assignee": "agents", "group": "groups"}
Name = Annotated[str, Field(min_length=1, max_length=256)]


class Directory(BaseModel):
    """Group or agent -> channel name (as the portal names them; matched folded)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    groups: dict[Name, ChannelName] = {}
    agents: dict[Name, ChannelName] = {}

    @field_validator("groups", "agents")
    @classmethod
    def _apart(cls, book: dict[str, str]) -> dict[str, str]:
        """Two names that fold to the same word would make the lookup a coin toss."""
        seen: dict[str, str] = {}
        for name in book:
            first = seen.setdefault(fold(name), name)
            if first != name:
                raise ValueError(f"{name!r} and {first!r} are one name (case and accents aside)")
        return book

    @cached_property
    def _folded(self) -> dict[tuple[str, str], str]:
        """(book, folded name) -> channel: built once, so a lookup is one dict access."""
        return {
            (book, fold(name)): channel
            for book in ("groups", "agents")
            for name, channel in getattr(self, book).items()
        }

    def channel_for(self, who: Recipient, name: str | None) -> str | None:
        """The channel of the ticket's assignee or group named ``name``; None: not listed."""
        if name is None:
            return None
        return self._folded.get((_BOOK[who], fold(name)))

    def references(self) -> Iterable[tuple[tuple[str, str], str]]:
        """Every channel named, with its (book, name)."""
        for book in ("groups", "agents"):
            for name, channel in getattr(self, book).items():
                yield (book, name), channel


EMPTY = Directory()


@dataclass(frozen=True)
class Directories:
    """A policy's directory over the operator's file: the policy's entry wins."""

    policy: Directory = EMPTY
    file: Directory = EMPTY

    def channel_for(self, who: Recipient, name: str | None) -> str | None:
        return self.policy.channel_for(who, name) or self.file.channel_for(who, name)


@dataclass(frozen=True)
class Missing:
    """A recipient the directory could not tell: who, which name, and where it went instead."""

    who: Recipient
    name: str | None
    sent_to: tuple[str, ...]
    undeclared: str | None = None  # the directory names a channel the policy does not declare

    def say(self) -> str:
        """``assignee ana@acme.example not in the directory: sent to desk``."""
        if self.name is None:
            why = f"no {self.who}"
        elif self.undeclared is not None:
            why = f"{self.who} {self.name}: channel {self.undeclared} is not declared"
        else:
            why = f"{self.who} {self.name} not in the directory"
        where = ", ".join(self.sent_to) if self.sent_to else "nobody (the route has no channels)"
        return f"{why}: sent to {where}"


@dataclass(frozen=True)
class Resolved:
    """The channels a message goes to, and the recipients that fell back."""

    channels: list[str]
    missing: list[Missing]


def resolve(
    to: Sequence[Recipient],
    default: Sequence[str],
    *,
    group: str | None,
    assignee: str | None,
    directory: Directories,
    declared: Container[str],
) -> Resolved:
    """The channels of ``to`` for a ticket of ``group`` and ``assignee``, then ``default`` (the
    route's ``channels``) only if a recipient is not found; each channel once, in order."""
    names = {"assignee": assignee, "group": group}
    channels: list[str] = []
    missing: list[Missing] = []
    for who in to:
        channel = directory.channel_for(who, names[who])
        if channel is not None and channel in declared:
            channels.append(channel)
        else:
            missing.append(Missing(who, names[who], tuple(default), channel))
    if missing:
        channels += default
    return Resolved(list(dict.fromkeys(channels)), missing)
