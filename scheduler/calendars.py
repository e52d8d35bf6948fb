"""Building calendars from a policy's specs, once per (calendar, time zone).

What is built from input is bounded (scheduler/lru.py): a country's holidays are expanded one
year at a time and at most `HOLIDAY_YEARS` years are kept (the `holidays` package keeps every
year it was ever asked about); a book keeps at most `CALENDARS_PER_BOOK` calendars (one per
customer time zone a ticket named) and `TERMS_PER_BOOK` resolved targets.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import holidays as holiday_tables

from scheduler.calendar import AlwaysOpen, Calendar, WeeklyCalendar, typical_day_length, zone
from scheduler.lru import Lru
from shared.policy import ALWAYS_OPEN, CUSTOMER_TIMEZONE, CalendarSpec, Policy

HOLIDAY_YEARS = 16  # years of one country's holidays kept (a year is ~20 dates, built in ~0.5 ms)
CALENDARS_PER_BOOK = 32  # calendars one policy keeps (each caches up to DAY_CACHE_DAYS days)
TERMS_PER_BOOK = 4096  # resolved (target, metric, tier, plan, zone) terms one policy keeps


class CountryHolidays:
    """Whether a local date is a public holiday of a country (and subdivision), plus explicit
    dates; the country's table is expanded and kept one year at a time, `HOLIDAY_YEARS` at most."""

    def __init__(
        self, country: str, subdivision: str | None, explicit: frozenset[date] = frozenset()
    ) -> None:
        self._country, self._subdivision, self._explicit = country, subdivision, explicit
        self.years: Lru[int, frozenset[date]] = Lru(HOLIDAY_YEARS)

    def __call__(self, day: date) -> bool:
        return day in self._explicit or day in self.years.get_or_build(day.year, self._year)

    def _year(self, year: int) -> frozenset[date]:
        table = holiday_tables.country_holidays(self._country, subdiv=self._subdivision, years=year)
        return frozenset(table)


def _holiday_test(spec: CalendarSpec) -> Callable[[date], bool]:
    explicit = frozenset(spec.holidays)
    if spec.holiday_country is None:
        return explicit.__contains__
    return CountryHolidays(spec.holiday_country, spec.holiday_subdivision, explicit)


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
        self._built: Lru[tuple[str, str], Calendar] = Lru(CALENDARS_PER_BOOK)
        # what evaluations derive from the policy and these calendars alone (a target's terms)
        self.memo: Lru[tuple[object, ...], tuple[object, object]] = Lru(TERMS_PER_BOOK)

    def get(self, name: str, customer_zone: str) -> Calendar:
        spec = self._policy.calendars[name]
        zone_name = customer_zone if self._follows_customer(spec) else self._fixed_zone(spec)
        built = self._built.get((name, zone_name))
        if built is None:
            built = self._built.put((name, zone_name), build_calendar(spec, zone_name))
        return built

    def wall_clock(self, zone_name: str) -> Calendar:
        """The calendar of ``d`` durations: every second counts, shown in ``zone_name``."""
        return self._built.get_or_build(("", zone_name), lambda key: AlwaysOpen(tz=zone(key[1])))

    def _follows_customer(self, spec: CalendarSpec | str) -> bool:
        if isinstance(spec, str):
            return True  # 24x7 has no zone of its own: show it in the customer's
        return spec.timezone == CUSTOMER_TIMEZONE

    def _fixed_zone(self, spec: CalendarSpec | str) -> str:
        return spec.timezone if isinstance(spec, CalendarSpec) else self._policy.default_timezone
