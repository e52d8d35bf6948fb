"""The conditions a target is chosen by (``targets[].when``), and the facts of a ticket they test.

A desk chooses its SLA by more than plan and priority: the billing group answers VIPs faster,
incidents are resolved sooner than questions. A target's ``when`` names customers, sources,
groups, ticket types, channels and tags; a ticket matches when every condition named holds. The
policy takes the first matching target in file order (`shared.policy.Policy.choose_target`), as
Zendesk orders its SLA policies.

A ticket's facts are projected onto the words the policy's conditions use (`Vocabulary.facts`):
a group no condition names is as good as no group. So tickets that only differ in what no
condition looks at share one memoized choice, and a target changes only when a named fact does.
Groups, ticket types, channels and tags are compared folded (case, accents, ``-``/``_``/space
ignored: `shared.names.fold`); customers and sources exactly, as events name them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.names import fold

Word = Annotated[str, Field(min_length=1, max_length=256)]
Words = Annotated[list[Word], Field(min_length=1)]
TagWord = Annotated[str, Field(min_length=1, max_length=128)]
TagWords = Annotated[list[TagWord], Field(min_length=1)]

# the folded conditions, by the ticket fact each one tests
_FOLDED = ("groups", "ticket_types", "channels")
_EXACT = ("customers", "sources")
_FACT = {
    "customers": "customer",
    "sources": "source",
    "groups": "group",
    "ticket_types": "ticket_type",
    "channels": "channel",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


@dataclass(frozen=True, slots=True)
class TicketFacts:
    """What a target's conditions can see of a ticket, in the policy's words (folded), None or
    left out where no condition names the ticket's value. Hashable: the key of a memoized
    choice."""

    customer: str | None = None
    source: str | None = None
    group: str | None = None
    ticket_type: str | None = None
    channel: str | None = None
    tags: frozenset[str] = frozenset()

    def value(self, condition: str) -> str | None:
        """The fact a condition (``groups``, ``customers``...) tests."""
        return getattr(self, _FACT[condition])  # type: ignore[no-any-return]  # str fields


class TagsCondition(_Strict):
    """``any``: the ticket has at least one of these tags; ``all``: every one; ``none``: none."""

    any_: TagWords | None = Field(None, alias="any")
    all_: TagWords | None = Field(None, alias="all")
    none_: TagWords | None = Field(None, alias="none")

    @model_validator(mode="after")
    def _can_match(self) -> Self:
        if self.any_ is None and self.all_ is None and self.none_ is None:
            raise ValueError("name tags under `any`, `all` or `none`")
        both = self.required & self.refused
        if both:
            raise ValueError(f"no ticket both has and lacks {_listed(both)}: this never matches")
        if self.any_ is not None and self.anyof <= self.refused:
            raise ValueError("every tag of `any` is under `none`: this never matches")
        return self

    @cached_property
    def anyof(self) -> frozenset[str]:
        return frozenset(fold(tag) for tag in self.any_ or ())

    @cached_property
    def required(self) -> frozenset[str]:
        return frozenset(fold(tag) for tag in self.all_ or ())

    @cached_property
    def refused(self) -> frozenset[str]:
        return frozenset(fold(tag) for tag in self.none_ or ())

    def matches(self, tags: frozenset[str]) -> bool:
        return (
            (self.any_ is None or not self.anyof.isdisjoint(tags))
            and self.required <= tags
            and self.refused.isdisjoint(tags)
        )

    def within(self, other: TagsCondition) -> bool:
        """Whether every tag set these accept, ``other`` accepts (False when unsure)."""
        if not (other.required <= self.required and other.refused <= self.refused):
            return False
        if other.any_ is None:
            return True
        mine = self.any_ is not None and self.anyof <= other.anyof
        return mine or not self.required.isdisjoint(other.anyof)

    def words(self) -> Iterator[str]:
        yield from (*(self.any_ or ()), *(self.all_ or ()), *(self.none_ or ()))


class TargetWhen(_Strict):
    """A target's conditions: each one named must hold (a list: the ticket's value is one of
    them); one left out holds for every ticket."""

    customers: Words | None = None
    sources: Words | None = None
    groups: Words | None = None
    ticket_types: Words | None = None
    channels: Words | None = None
    tags: TagsCondition | None = None

    @model_validator(mode="after")
    def _names_something(self) -> Self:
        if all(getattr(self, name) is None for name in (*_EXACT, *_FOLDED, "tags")):
            raise ValueError("`when` needs a condition; a target for every ticket leaves it out")
        return self

    @cached_property
    def _sets(self) -> dict[str, frozenset[str] | None]:
        exact = {name: _frozen(getattr(self, name)) for name in _EXACT}
        return exact | {name: _frozen(getattr(self, name), fold) for name in _FOLDED}

    def matches(self, facts: TicketFacts) -> bool:
        for name, accepted in self._sets.items():
            if accepted is not None and facts.value(name) not in accepted:
                return False
        return self.tags is None or self.tags.matches(facts.tags)

    def within(self, other: TargetWhen) -> bool:
        """Whether every ticket these conditions take, ``other``'s take too: a target with these
        conditions after one with ``other``'s is never chosen. False when unsure."""
        for name, theirs in other._sets.items():
            mine = self._sets[name]
            if theirs is not None and (mine is None or not mine <= theirs):
                return False
        if other.tags is None:
            return True
        return (self.tags or _NO_TAGS).within(other.tags)


_NO_TAGS = TagsCondition.model_construct(any_=None, all_=None, none_=None)


@dataclass(frozen=True)
class Vocabulary:
    """Every word a policy's conditions use, folded, with the spelling the policy gives it."""

    customers: frozenset[str]
    sources: frozenset[str]
    spelling: dict[tuple[str, str], str]  # (condition, folded word) -> as the policy writes it

    @classmethod
    def of(cls, conditions: Iterable[TargetWhen]) -> Vocabulary:
        customers: set[str] = set()
        sources: set[str] = set()
        spelling: dict[tuple[str, str], str] = {}
        for when in conditions:
            customers.update(when.customers or ())
            sources.update(when.sources or ())
            for name in _FOLDED:
                for word in getattr(when, name) or ():
                    spelling.setdefault((name, fold(word)), word)
            for word in when.tags.words() if when.tags else ():
                spelling.setdefault(("tags", fold(word)), word)
        return cls(frozenset(customers), frozenset(sources), spelling)

    def facts(
        self,
        *,
        customer: str | None,
        source: str | None,
        group: str | None = None,
        ticket_type: str | None = None,
        channel: str | None = None,
        tags: Iterable[str] = (),
    ) -> TicketFacts:
        """The ticket's facts in the policy's words: what no condition names is left out."""
        return TicketFacts(
            customer=customer if customer in self.customers else None,
            source=source if source in self.sources else None,
            group=self._named("groups", group),
            ticket_type=self._named("ticket_types", ticket_type),
            channel=self._named("channels", channel),
            tags=frozenset(t for t in map(_folded, tags) if ("tags", t) in self.spelling),
        )

    def _named(self, condition: str, value: str | None) -> str | None:
        key = _folded(value) if value is not None else None
        return key if key is not None and (condition, key) in self.spelling else None

    def tag_changes(self, before: TicketFacts, after: TicketFacts) -> Iterator[str]:
        """The tags the conditions name that were added or removed between two facts, as a
        person says it in the policy's words: ``tag vip added``."""
        for tags, verb in (
            (after.tags - before.tags, "added"),
            (before.tags - after.tags, "removed"),
        ):
            if tags:
                words = _listed(self.spelled("tags", t) for t in tags)
                yield f"{'tag' if len(tags) == 1 else 'tags'} {words} {verb}"

    def spelled(self, condition: str, key: str | None) -> str:
        return self.spelling.get((condition, key or ""), key or "")


@lru_cache(maxsize=4096)
def _folded(word: str) -> str:
    """`fold`, remembered: every evaluation folds its ticket's group and tags again, and a desk
    uses few of them."""
    return fold(word)


def _frozen(values: list[str] | None, key: Callable[[str], str] = str) -> frozenset[str] | None:
    return None if values is None else frozenset(map(key, values))


def _listed(words: Iterable[str]) -> str:
    return ", ".join(sorted(words))
