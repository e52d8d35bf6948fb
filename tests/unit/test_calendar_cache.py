"""Calendars remember a bounded amount whatever they are asked (scheduler/lru.py).

A ticket read ``at`` a far date walks every day up to it: the calendar, its holiday table and
the policy's book of calendars must keep no more than their bounds, and answer exactly as a
fresh calendar does once they have forgotten.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from scheduler.calendar import DAY_CACHE_DAYS, WeeklyCalendar, zone
from scheduler.calendars import (
    CALENDARS_PER_BOOK,
    HOLIDAY_YEARS,
    CalendarBook,
    CountryHolidays,
    build_calendar,
)
from scheduler.lru import Lru
from tests.support import preset

H = 3600
START = datetime(2026, 3, 2, 9, tzinfo=UTC)


def madrid_office() -> WeeklyCalendar:
    hours = {wd: [(9 * H, 18 * H)] for wd in range(5)}
    spec = preset("athento").calendars["company_hours"]
    calendar = build_calendar(spec, "Europe/Madrid")
    assert isinstance(calendar, WeeklyCalendar)
    assert calendar.hours == {wd: tuple(r) for wd, r in hours.items()}
    return calendar


def test_a_calendar_keeps_at_most_its_bound_of_days() -> None:
    """Forty years of days walked (a read at a far ``at``) leave at most DAY_CACHE_DAYS cached."""
    calendar = madrid_office()
    calendar.elapsed(START, START + timedelta(days=365 * 40))
    assert 0 < len(calendar._cache) <= DAY_CACHE_DAYS


def test_a_calendar_that_forgot_answers_as_a_fresh_one() -> None:
    """After the far walk evicted them, early days are rebuilt to the same working time."""
    calendar = madrid_office()
    near = (START, START + timedelta(days=90))
    first = calendar.elapsed(*near)
    calendar.elapsed(START + timedelta(days=400), START + timedelta(days=365 * 20))
    assert calendar.elapsed(*near) == first == madrid_office().elapsed(*near)
    assert calendar.add(START, timedelta(hours=9 * 30)) == madrid_office().add(
        START, timedelta(hours=9 * 30)
    )


def test_a_holiday_table_keeps_at_most_its_bound_of_years() -> None:
    """Asking about 200 years of days keeps at most HOLIDAY_YEARS years of Spain's holidays,
    and a forgotten year is still closed on its holidays."""
    spain = CountryHolidays("ES", None)
    day = date(2026, 1, 1)
    while day.year < 2226:
        spain(day)
        day += timedelta(days=7)
    assert len(spain.years) <= HOLIDAY_YEARS
    assert spain(date(2026, 1, 1)) and spain(date(2026, 12, 25))
    assert not spain(date(2026, 1, 2))


def test_the_far_read_of_a_holiday_calendar_keeps_bounded_tables() -> None:
    """The athento calendar walked to 2300 holds bounded days and holiday years."""
    calendar = madrid_office()
    calendar.elapsed(START, datetime(2300, 1, 1, tzinfo=UTC))
    assert isinstance(calendar.is_holiday, CountryHolidays)
    assert len(calendar.is_holiday.years) <= HOLIDAY_YEARS
    assert len(calendar._cache) <= DAY_CACHE_DAYS


def test_a_book_keeps_at_most_its_bound_of_customer_zones() -> None:
    """A calendar that follows the customer's zone is built per zone; a book keeps a bounded
    number of them, and one built again is the same calendar in that zone."""
    policy = preset("zmanda")
    book = CalendarBook(policy)
    name = policy.plans[next(iter(policy.plans))].calendar
    zones = sorted(z for z in _all_zones() if not z.startswith(("Etc/", "SystemV/")))[:200]
    for zone_name in zones:
        book.get(name, zone_name)
    assert len(book._built) <= CALENDARS_PER_BOOK
    again = book.get(name, zones[0])
    assert again.tz == zone(zones[0])


def test_an_lru_forgets_the_least_recently_used_first() -> None:
    """An entry read again keeps its place; the ones never read again go."""
    cache: Lru[int, str] = Lru(8)
    cache.put(0, "kept")
    for key in range(1, 100):
        cache.put(key, str(key))
        assert cache.get(0) == "kept"
        assert len(cache) <= 8
    assert 1 not in cache


def _all_zones() -> set[str]:
    from zoneinfo import available_timezones  # noqa: PLC0415 - only this test needs the list

    return available_timezones()
