"""Building calendars from a policy's specs, once per (calendar, time zone)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import holidays as holiday_tables

from scheduler.calendar import AlwaysOpen, Calendar, WeeklyCalendar, typical_day_length, zone
from shared.policy import ALWAYS_OPEN, CUSTOMER_TIMEZONE, CalendarSpec, Policy


def _holiday_test(spec: CalendarSpec) -> Callable[[date], bool]:
    explicit = frozenset(spec.holidays)
    if spec.holiday_country is None:
        return explicit.__contains__
    country = holiday_tables.country_holidays(spec.holiday_country, subdiv=spec.holiday_subdivision)
    return lambda day: day in explicit or day in country


def build_calendar(spec: CalendarSpec | str, zone_name: str) -> Calendar:
    """A calendar from its spec; ``zone_name`` is used where the spec says ``customer`` or 24x7."""
    if spec == ALWAYS_OPEN or isinstance(spec, str):
        return AlwaysOpen(tz=zone(zone_name))
    tz_name = zone_name if spec.timezone == CUSTOMER_TIMEZONE else spec.timezone
    hours = spec.weekly_seconds()
    business_day = (
        timedelta(seconds=spec.business_day.seconds_on(0))
        if spec.business_day
        else typical_day_length(hours)
    )
    return WeeklyCalendar(
        tz=zone(tz_name), hours=hours, business_day=business_day, is_holiday=_holiday_test(spec)
    )


class CalendarBook:
    """The calendars of one policy, built on first use and shared by every ticket.

    Calendars cache their working intervals per day, so sharing them makes every ticket after
    the first cheap. A ``timezone: customer`` calendar is built once per customer zone.
    """

    def __init__(self, policy: Policy) -> None:
        self._policy = policy
        self._built: dict[tuple[str, str], Calendar] = {}
        # what evaluations derive from the policy and these calendars alone (a target's terms)
        self.memo: dict[tuple[object, ...], tuple[object, object]] = {}

    def get(self, name: str, customer_zone: str) -> Calendar:
        spec = self._policy.calendars[name]
        zone_name = customer_zone if self._follows_customer(spec) else self._fixed_zone(spec)
        key = (name, zone_name)
        if key not in self._built:
            self._built[key] = build_calendar(spec, zone_name)
        return self._built[key]

    def wall_clock(self, zone_name: str) -> Calendar:
        """The calendar of ``d`` durations: every second counts, shown in ``zone_name``."""
        key = ("", zone_name)
        if key not in self._built:
            self._built[key] = AlwaysOpen(tz=zone(zone_name))
        return self._built[key]

    def _follows_customer(self, spec: CalendarSpec | str) -> bool:
        if isinstance(spec, str):
            return True  # 24x7 has no zone of its own: show it in the customer's
        return spec.timezone == CUSTOMER_TIMEZONE

    def _fixed_zone(self, spec: CalendarSpec | str) -> str:
        return spec.timezone if isinstance(spec, CalendarSpec) else self._policy.default_timezone
