"""The policy file (CONTRACTS.md §2): calendars, plans, priorities and SLA targets.

The models here validate one file's shape field by field; `Policy.cross_check` then finds what
only the whole file can tell (a target naming an unknown plan, two targets for the same plan and
priority). `shared.policy_file` turns both kinds of problem into ``file:line: field: message``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    WithJsonSchema,
    model_validator,
)

from shared.directory import Directory
from shared.durations import Duration, Unit
from shared.events import Level, Status
from shared.names import fold
from shared.policy_catch_up import CatchUp, MaxCatchUp
from shared.policy_problems import ProblemsSpec
from shared.policy_routes import ChannelName, ChannelSpec, RouteSpec
from shared.target_conditions import TargetWhen, TicketFacts, Vocabulary

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CUSTOMER_TIMEZONE = "customer"
ALWAYS_OPEN = "24x7"
DEFAULT_WARN_AT = (75, 90)

Path = tuple[str | int, ...]

_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def _parse_range(text: str) -> tuple[int, int]:
    match = _RANGE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a range of hours: write 08:00-17:00")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2 != 0):
        raise ValueError(f"{text!r}: hours run from 00:00 to 24:00")
    start, end = h1 * 3600 + m1 * 60, h2 * 3600 + m2 * 60
    if end <= start:
        raise ValueError(f"{text!r}: a range must end after it starts (use 24:00 for midnight)")
    return start, end


def _check_zone(name: str) -> str:
    if name == CUSTOMER_TIMEZONE:
        return name
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{name!r} is not an IANA time zone (e.g. Europe/Madrid)") from exc
    return name


def _check_country(code: str) -> str:
    try:
        holidays.country_holidays(code)
    except NotImplementedError as exc:
        raise ValueError(f"{code!r} is not a country the holidays package knows") from exc
    return code


def _working_time_only(value: Duration) -> Duration:
    if value.unit in (Unit.BUSINESS_DAYS, Unit.DAYS):
        raise ValueError("a business day is measured in hours or minutes, e.g. 8h")
    return value


def _time_before(values: list[Duration]) -> list[Duration]:
    """``warn_before``: working time before a deadline, each amount once (``30m`` = ``0.5h``)."""
    seen: set[int | str | None] = set()
    for value in values:
        if value.is_wall_clock:
            raise ValueError(
                f"{value}: a warning comes working time before the deadline: "
                "write hours or minutes (48h, 30m) or business days (2bd)"
            )
        # seconds for m and h (30m is 0.5h); a bd's length depends on the calendar
        same = str(value) if value.unit is Unit.BUSINESS_DAYS else value.fixed_seconds()
        if same in seen:
            raise ValueError(f"{value}: each warning time once")
        seen.add(same)
    return values


def _percentages(values: list[int]) -> list[int]:
    if len(set(values)) != len(values):
        raise ValueError("each warning percentage once")
    return sorted(values)


TimeRange = Annotated[
    tuple[int, int],
    BeforeValidator(lambda v: _parse_range(v) if isinstance(v, str) else v),
    WithJsonSchema({"type": "string", "pattern": _RANGE.pattern, "examples": ["08:00-17:00"]}),
]
TimeZoneName = Annotated[str, AfterValidator(_check_zone)]
Percent = Annotated[int, Field(gt=0, lt=100)]
# An editor marks a wall-clock ``d`` here, as ``policy check`` refuses it (`_time_before`).
TimeBefore = Annotated[
    Duration,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^\s*(\d+(?:\.\d+)?)\s*(bd|m|h)\s*$",
            "description": "working time left before the deadline: 30m, 4h, or 1bd",
            "examples": ["30m", "4h", "1bd"],
        }
    ),
]
WarnBefore = Annotated[list[TimeBefore], AfterValidator(_time_before)]
Name = Annotated[str, Field(min_length=1, max_length=64)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class CalendarSpec(_Strict):
    """Weekly opening hours in one zone (or the customer's), minus holidays."""

    timezone: TimeZoneName
    hours: dict[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], list[TimeRange]]
    holidays: list[date] = []
    holiday_country: Annotated[str, AfterValidator(_check_country)] | None = None
    holiday_subdivision: str | None = None
    business_day: Annotated[Duration, AfterValidator(_working_time_only)] | None = None

    def weekly_seconds(self) -> dict[int, list[tuple[int, int]]]:
        """Ranges per weekday index (0 = Monday), sorted."""
        return {WEEKDAYS.index(day): sorted(ranges) for day, ranges in self.hours.items()}


def _calendar_kind(value: Any) -> str:
    return "always" if isinstance(value, str) else "weekly"


def _calendar(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() == ALWAYS_OPEN:
        return ALWAYS_OPEN
    return value


CalendarEntry = Annotated[
    Annotated[Literal["24x7"], Tag("always")] | Annotated[CalendarSpec, Tag("weekly")],
    Discriminator(_calendar_kind),
    BeforeValidator(_calendar),
]


class PrioritySpec(_Strict):
    aliases: list[Name] = []
    description: str | None = None


def _allowance_levels(values: list[int]) -> list[int]:
    if len(set(values)) != len(values):
        raise ValueError("each warning percentage once")
    return sorted(values)


class Allowance(_Strict):
    """A plan's contract limits (seed 004): reported on, never enforced by the clocks.

    Tickets count per customer per allowance year; those created in the first ``grace_months``
    after the customer's ``go_live`` do not. ``warn_at``: a notification when that share of
    ``tickets_per_year`` is used.
    """

    tickets_per_year: Annotated[int, Field(gt=0)] | None = None
    authorized_contacts: Annotated[int, Field(gt=0)] | None = None
    warn_at: Annotated[
        list[Annotated[int, Field(gt=0, le=100)]], AfterValidator(_allowance_levels)
    ] = [80, 100]
    grace_months: Annotated[int, Field(ge=0, le=24)] = 2


class PlanSpec(_Strict):
    calendar: Name
    description: str | None = None
    allowance: Allowance | None = None


class CustomerSpec(_Strict):
    plan: Name | None = None
    timezone: TimeZoneName | None = None
    # Contract allowances (seed 004): the go-live date starts the grace months; the allowance
    # year runs from each anniversary of ``contract_start`` (default: January 1); ``contacts``
    # lists who may report incidents (matched ignoring case; left out: nobody is flagged).
    go_live: date | None = None
    contract_start: date | None = None
    contacts: list[Annotated[str, Field(min_length=1, max_length=256)]] | None = None


class Metric(StrEnum):
    FIRST_RESPONSE = "first_response"
    UPDATE = "update"
    NEXT_REPLY = "next_reply"
    RESOLUTION = "resolution"
    ESCALATION = "escalation"


class Anchor(StrEnum):
    CREATED = "created"
    FIRST_RESPONSE = "first_response"


def _pause_form(value: Any) -> str:
    return "per_metric" if isinstance(value, dict) else "every_metric"


# ``[pending]`` pauses every clock; ``{update: [pending]}`` only the clocks it names (`paused_by`).
PauseWhen = Annotated[
    Annotated[list[Status], Tag("every_metric")]
    | Annotated[dict[Metric, list[Status]], Tag("per_metric")],
    Discriminator(_pause_form),
]


def paused_by(pause_when: PauseWhen, metric: Metric) -> list[Status]:
    """The statuses that pause ``metric``'s clock.

    A list pauses every clock. A map pauses the clocks it names and no other, since desks name
    the clocks they stop (Znuny stops only the update clock); ``after`` escalations, which exist
    to get a ticket resolved, pause as resolution does unless the map names ``escalation``.
    """
    if isinstance(pause_when, list):
        return pause_when
    if metric is Metric.ESCALATION and metric not in pause_when:
        return pause_when.get(Metric.RESOLUTION, [])
    return pause_when.get(metric, [])


class EscalationSpec(_Strict):
    """Tier N: ``after`` a duration from creation or first response, or on a metric's breach."""

    tier: Annotated[int, Field(ge=2, le=9)]
    after: Duration | None = None
    from_: Anchor = Field(Anchor.CREATED, alias="from")
    on_breach: (
        Literal[Metric.FIRST_RESPONSE, Metric.UPDATE, Metric.NEXT_REPLY, Metric.RESOLUTION] | None
    ) = None

    @model_validator(mode="after")
    def _one_trigger(self) -> Self:
        if (self.after is None) == (self.on_breach is None):
            raise ValueError("an escalation needs exactly one of `after` or `on_breach`")
        return self


class TargetSpec(_Strict):
    """The commitments for some plans and priorities.

    ``calendar`` overrides the plan's calendar for every clock of the target; ``calendar_for``
    overrides it for one metric (seed 002: first response 24/7, resolution in working days).
    ``when`` narrows it to some tickets (shared/target_conditions.py): the first target in file
    order whose plans, priorities and conditions a ticket meets is the ticket's.
    """

    name: Name | None = None  # shown where the target in force changes
    when: TargetWhen | None = None
    plans: list[Name] | None = None
    priority: Name | None = None
    priorities: list[Name] | None = None
    calendar: Name | None = None
    calendar_for: dict[Metric, Name] = {}
    first_response: Duration | None = None
    update_every: Duration | None = None
    # From each customer message nobody answered yet (and creation) to the next response.
    next_reply: Duration | None = None
    resolution: Duration | None = None
    escalations: list[EscalationSpec] = []
    warn_at: Annotated[list[Percent], AfterValidator(_percentages)] | None = None
    # Warnings by working time left before the deadline; ``[]`` turns the policy's off here.
    warn_before: WarnBefore | None = None
    pause_when: PauseWhen | None = None

    def calendar_name(self, metric: Metric) -> str | None:
        """The calendar this target names for ``metric``, or None for the plan's."""
        return self.calendar_for.get(metric, self.calendar)

    def warnings_before(self, policy_default: list[Duration]) -> list[Duration]:
        """This target's ``warn_before``, or the policy's when it sets none (``[]``: none)."""
        return policy_default if self.warn_before is None else self.warn_before

    def priority_names(self) -> list[str]:
        named = [self.priority] if self.priority else []
        return named + list(self.priorities or [])


class Policy(_Strict):
    """One policy file, validated field by field."""

    name: Name
    description: str | None = None
    language: Literal["en", "es"] = "en"
    calendars: dict[Name, CalendarEntry]
    priorities: dict[Name, PrioritySpec]
    priority_matrix: dict[Level, dict[Level, Name]] | None = None
    default_priority: Name | None = None
    default_timezone: TimeZoneName = "UTC"
    plans: dict[Name, PlanSpec]
    default_plan: Name
    customers: dict[Name, CustomerSpec] = {}
    pause_when: PauseWhen = [Status.PENDING, Status.ON_HOLD]
    warn_at: Annotated[list[Percent], AfterValidator(_percentages)] = list(DEFAULT_WARN_AT)
    warn_before: WarnBefore = []  # e.g. [30m, 5m]: working time left on the clock's calendar
    # Share of tickets the desk promises to keep within target, per metric (seed 001: 95 / 90).
    commitments: dict[Metric, Annotated[float, Field(gt=0, le=100)]] = {}
    targets: list[TargetSpec]
    # Notifications (shared/policy_routes.py): channel names here, their URLs in the environment.
    channels: dict[ChannelName, ChannelSpec] = {}
    routes: list[RouteSpec] = []
    # A route's `to: [assignee, group]`: the ticket's group or assignee -> a channel above
    # (shared/directory.py); over the operator's ESCALERA_DIRECTORY file, entry by entry.
    directory: Directory = Directory()
    # Checkpoints of a clock found due together (late events, an outage): which of them page
    # (shared/policy_catch_up.py); older than max_catch_up, none does.
    catch_up: CatchUp = CatchUp.LATEST
    max_catch_up: MaxCatchUp | None = None
    # Recurring incidents told to problem management (shared/policy_problems.py).
    problems: ProblemsSpec | None = None
    # Where a message links to, per source: "https://acme.zendesk.com/agent/tickets/{ticket_id}".
    ticket_links: dict[Name, str] = {}

    # -- whole-file checks ---------------------------------------------------------------
    def cross_check(self) -> Iterator[tuple[Path, str]]:
        """Problems only the whole file shows, each with the path of the offending field."""
        yield from self._check_aliases()
        yield from self._check_references()
        yield from self._check_targets()
        yield from self._check_routes()
        yield from self._check_directory()

    def _check_aliases(self) -> Iterator[tuple[Path, str]]:
        seen: dict[str, str] = {}
        for name, spec in self.priorities.items():
            for i, word in enumerate([name, *spec.aliases]):
                key, owner = fold(word), seen.get(fold(word))
                if owner is not None and owner != name:
                    path: Path = (
                        ("priorities", name) if i == 0 else ("priorities", name, "aliases", i - 1)
                    )
                    yield path, f"{word!r} already names priority {owner}"
                seen[key] = name

    def _check_references(self) -> Iterator[tuple[Path, str]]:
        for plan, spec in self.plans.items():
            if spec.calendar not in self.calendars:
                yield (
                    ("plans", plan, "calendar"),
                    self._unknown("calendar", spec.calendar, self.calendars),
                )
        if self.default_plan not in self.plans:
            yield ("default_plan",), self._unknown("plan", self.default_plan, self.plans)
        if self.default_priority is not None and self.priority_named(self.default_priority) is None:
            yield (
                ("default_priority",),
                self._unknown("priority", self.default_priority, self.priorities),
            )
        for customer, cspec in self.customers.items():
            if cspec.plan is not None and cspec.plan not in self.plans:
                yield ("customers", customer, "plan"), self._unknown("plan", cspec.plan, self.plans)
        for urgency, row in (self.priority_matrix or {}).items():
            for impact, prio in row.items():
                if self.priority_named(prio) is None:
                    yield (
                        ("priority_matrix", urgency.value, impact.value),
                        self._unknown("priority", prio, self.priorities),
                    )

    def _check_targets(self) -> Iterator[tuple[Path, str]]:
        for t, target in enumerate(self.targets):
            here: Path = ("targets", t)
            if not target.priority_names():
                yield here, "a target needs `priority` or `priorities`"
            if target.calendar is not None and target.calendar not in self.calendars:
                yield (
                    (*here, "calendar"),
                    self._unknown("calendar", target.calendar, self.calendars),
                )
            for metric, name in target.calendar_for.items():
                if name not in self.calendars:
                    yield (
                        (*here, "calendar_for", metric.value),
                        self._unknown("calendar", name, self.calendars),
                    )
            for i, plan in enumerate(target.plans or []):
                if plan not in self.plans:
                    yield (*here, "plans", i), self._unknown("plan", plan, self.plans)
            for name in target.priority_names():
                prio = self.priority_named(name)
                if prio is None:
                    field = "priority" if name == target.priority else "priorities"
                    yield (*here, field), self._unknown("priority", name, self.priorities)
        yield from self._check_target_order()

    def _check_target_order(self) -> Iterator[tuple[Path, str]]:
        """Each name once, and no target that an earlier one hides: the first match wins."""
        claimed: dict[tuple[str, str], list[int]] = {}
        names: set[str] = set()
        for t, target in enumerate(self.targets):
            if target.name is not None and target.name in names:
                yield ("targets", t, "name"), f"another target is already named {target.name!r}"
            names.update([target.name] if target.name is not None else [])
            named = (self.priority_named(word) for word in target.priority_names())
            for prio in dict.fromkeys(p for p in named if p is not None):
                for plan in target.plans or list(self.plans):
                    earlier = claimed.setdefault((plan, prio), [])
                    shadow = next((e for e in earlier if _shadows(self.targets[e], target)), None)
                    if shadow is not None:
                        problem = _never_chosen(plan, prio, shadow, self.targets[shadow])
                        yield ("targets", t), problem
                    earlier.append(t)

    def _check_routes(self) -> Iterator[tuple[Path, str]]:
        names: set[str] = set()
        for r, route in enumerate(self.routes):
            here: Path = ("routes", r)
            if route.name in names:
                yield (*here, "name"), f"another route is already named {route.name!r}"
            names.add(route.name)
            yield from (((*here, *where), problem) for where, problem in route.problems())
            for where, channel in route.channel_references():
                if channel not in self.channels:
                    yield (*here, *where), self._unknown("channel", channel, self.channels)
            for i, word in enumerate(route.when.priorities or []):
                if self.priority_named(word) is None:
                    yield (
                        (*here, "when", "priorities", i),
                        self._unknown("priority", word, self.priorities),
                    )
            for i, plan in enumerate(route.when.plans or []):
                if plan not in self.plans:
                    yield (*here, "when", "plans", i), self._unknown("plan", plan, self.plans)
            if route.quiet_outside is not None and route.quiet_outside not in self.calendars:
                yield (
                    (*here, "quiet_outside"),
                    self._unknown("calendar", route.quiet_outside, self.calendars),
                )
        if self.problems is not None and self.problems.route not in names:
            known = dict.fromkeys(names)
            yield ("problems", "route"), self._unknown("route", self.problems.route, known)
        for source, link in self.ticket_links.items():
            if "{ticket_id}" not in link:
                yield ("ticket_links", source), "a ticket link needs {ticket_id} where the id goes"

    def _check_directory(self) -> Iterator[tuple[Path, str]]:
        """A directory names only channels the policy declares (their URLs: the environment)."""
        for (book, name), channel in self.directory.references():
            if channel not in self.channels:
                yield ("directory", book, name), self._unknown("channel", channel, self.channels)

    @staticmethod
    def _unknown(kind: str, name: str, known: dict[str, Any]) -> str:
        return f"unknown {kind} {name!r} (known: {', '.join(known) or 'none'})"

    # -- look-ups the SLA core uses ------------------------------------------------------
    @cached_property
    def alias_index(self) -> dict[str, str]:
        """Folded name or alias -> priority (built once: evaluation looks priorities up a lot)."""
        index: dict[str, str] = {}
        for name, spec in self.priorities.items():
            for word in (name, *spec.aliases):
                index.setdefault(fold(word), name)
        return index

    def priority_named(self, word: str) -> str | None:
        """The priority a name or alias stands for (case and accents ignored), or None."""
        return self.alias_index.get(fold(word))

    def matrix_priority(self, urgency: Level, impact: Level) -> str | None:
        row = (self.priority_matrix or {}).get(urgency, {})
        word = row.get(impact)
        return self.priority_named(word) if word else None

    def pausing(self, target: TargetSpec | None, metric: Metric) -> list[Status]:
        """The statuses that pause ``metric``'s clock while ``target`` applies: the target's
        ``pause_when``, else the policy's (an empty one on a target keeps the policy's)."""
        chosen = (target.pause_when if target is not None else None) or self.pause_when
        return paused_by(chosen, metric)

    def plan_for(self, customer: str | None, plan: str | None) -> str:
        """An explicit plan wins, then the customer's plan, then the default plan."""
        if plan is not None:
            return plan
        spec = self.customers.get(customer) if customer else None
        return spec.plan if spec and spec.plan else self.default_plan

    def timezone_for(self, customer: str | None, event_zone: str | None) -> str:
        """The customer's zone for ``timezone: customer`` calendars."""
        if event_zone:
            return event_zone
        spec = self.customers.get(customer) if customer else None
        return spec.timezone if spec and spec.timezone else self.default_timezone

    @cached_property
    def target_index(self) -> dict[tuple[str, str], tuple[int, ...]]:
        """(plan, priority) -> the positions of its targets, in file order (built once)."""
        index: dict[tuple[str, str], list[int]] = {}
        for t, target in enumerate(self.targets):
            for plan in target.plans if target.plans is not None else list(self.plans):
                for word in target.priority_names():
                    priority = self.priority_named(word)
                    if priority is not None and t not in index.get((plan, priority), ()):
                        index.setdefault((plan, priority), []).append(t)
        return {key: tuple(positions) for key, positions in index.items()}

    @cached_property
    def chooses_by_conditions(self) -> bool:
        """Whether any target has a ``when``: if none does, plan and priority choose alone."""
        return any(target.when is not None for target in self.targets)

    @cached_property
    def vocabulary(self) -> Vocabulary:
        """The words the targets' conditions use: what of a ticket they can see."""
        return Vocabulary.of(t.when for t in self.targets if t.when is not None)

    @cached_property
    def _choices(self) -> dict[tuple[str, str, TicketFacts | None], int | None]:
        return {}

    def choose_target(
        self, plan: str, priority: str, facts: TicketFacts | None = None
    ) -> int | None:
        """The position of the first target for ``plan`` and ``priority`` whose conditions
        ``facts`` meet, or None. Without facts, only a target without conditions is chosen.

        Remembered for the policy's life: facts hold only the words the conditions use, so a
        desk's tickets meet few distinct ones (the memo is emptied past `_CHOICES` anyway)."""
        key = (plan, priority, facts)
        chosen = self._choices.get(key, _UNKNOWN)
        if chosen == _UNKNOWN:
            if len(self._choices) >= _CHOICES:
                self._choices.clear()
            chosen = self._choices[key] = self._first_match(plan, priority, facts)
        return chosen

    def _first_match(self, plan: str, priority: str, facts: TicketFacts | None) -> int | None:
        for t in self.target_index.get((plan, priority), ()):
            when = self.targets[t].when
            if when is None or (facts is not None and when.matches(facts)):
                return t
        return None

    def target_for(
        self, plan: str, priority: str, facts: TicketFacts | None = None
    ) -> TargetSpec | None:
        chosen = self.choose_target(plan, priority, facts)
        return None if chosen is None else self.targets[chosen]

    def target_label(self, position: int | None) -> str:
        """How a person reads which target is in force: its name, else its place in the file."""
        if position is None:
            return "none"
        return self.targets[position].name or f"targets[{position}]"


_CHOICES = 4096  # distinct (plan, priority, facts) remembered per policy
_UNKNOWN = -1  # no position: not chosen yet


def _shadows(earlier: TargetSpec, later: TargetSpec) -> bool:
    """Whether ``earlier`` takes every ticket of a plan and priority ``later`` would take."""
    if earlier.when is None:
        return True
    return later.when is not None and later.when.within(earlier.when)


def _never_chosen(plan: str, priority: str, position: int, earlier: TargetSpec) -> str:
    if earlier.when is None:
        return (
            f"plan {plan} and priority {priority} already have a target (targets[{position}]) "
            "that takes every ticket: this one is never chosen for them (a target with `when` "
            "goes before the one without)"
        )
    return (
        f"plan {plan} and priority {priority}: targets[{position}] comes first and its `when` "
        "takes every ticket this one's would: this one is never chosen for them"
    )
