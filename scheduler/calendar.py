"""Business-time calendars: working-time arithmetic exact to the microsecond, DST-correct.

A calendar answers two questions about aware instants:

- ``add(start, duration)``: the instant at which ``duration`` of working time has passed since
  ``start``. A start outside working hours begins at the next opening; a duration used up exactly
  at a closing instant ends *at* that closing instant (17:00), not at the next opening.
- ``elapsed(start, end)``: how much working time lies between two instants (negative when
  ``end < start``).

Working intervals are built one local day at a time from the weekly hours, converted to UTC
instants (so a 23- or 25-hour DST day counts its real seconds) and cached per day. ``add`` then
consumes whole days and intervals, never minutes: adding 30 business days costs ~40 cache reads.
The cache keeps at most `DAY_CACHE_DAYS` days, the least recently used going first: a query
reaching far away (a ticket read ``at`` a distant date) costs time once, never memory that stays.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Protocol
from zoneinfo import ZoneInfo

from scheduler.lru import Lru

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_DAY = timedelta(days=1)
_DAY_US = 86_400_000_000
# A calendar with no working time in ten years is a configuration error, not a long wait.
MAX_CLOSED_DAYS = 3660
# Days of working intervals a calendar keeps (~250 bytes each, 0.5 MB in all). Any day read at
# least once per 1,024 newly built ones stays (scheduler/lru.py): a desk's open tickets and their
# deadlines stay warm, and no query makes the cache grow past it.
DAY_CACHE_DAYS = 2048

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class CalendarError(ValueError):
    """A calendar cannot answer: it has no working time, or an instant is naive."""


def to_us(at: datetime) -> int:
    """Microseconds since the epoch of an aware instant, exact.

    ``timestamp()`` is a float, but its whole seconds are exact for any date we meet (a float
    near 2e9 s resolves 2.4e-7 s, so x.999999 never rounds up); the microseconds are read from
    the field itself. Three times faster than subtracting datetimes.
    """
    if at.tzinfo is None:
        raise CalendarError(f"naive datetime {at.isoformat()}: instants must carry a UTC offset")
    return math.floor(at.timestamp()) * 1_000_000 + at.microsecond


def from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


class Calendar(Protocol):
    """What the SLA core needs from a calendar."""

    @property
    def tz(self) -> ZoneInfo: ...

    @property
    def business_day(self) -> timedelta: ...

    def add(self, start: datetime, duration: timedelta) -> datetime: ...

    def elapsed(self, start: datetime, end: datetime) -> timedelta: ...

    def is_open(self, at: datetime) -> bool: ...


@dataclass(frozen=True)
class AlwaysOpen:
    """24x7: every second is working time; arithmetic is plain instant arithmetic."""

    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    business_day: timedelta = _DAY

    def add(self, start: datetime, duration: timedelta) -> datetime:
        if duration < timedelta(0):
            raise CalendarError("cannot add a negative duration")
        # Not ``start + duration``: on a ZoneInfo datetime Python adds on the wall clock, which
        # is an hour off across a DST change. Instants are added as instants.
        return from_us(to_us(start) + duration // _US)

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        return timedelta(microseconds=to_us(end) - to_us(start))

    def is_open(self, at: datetime) -> bool:
        to_us(at)
        return True


# A day's working time: (open_us, close_us) pairs in UTC microseconds, sorted, disjoint.
DayIntervals = tuple[tuple[int, int], ...]


def _local_instant(day: date, seconds: int, tz: ZoneInfo) -> int:
    """The UTC instant of ``seconds`` after local midnight of ``day`` on the wall clock.

    ``seconds == 86400`` means 24:00, i.e. midnight of the next day. A repeated wall time (the
    autumn fall-back hour) is its first occurrence. A wall time that does not exist (the spring
    gap) is the instant of the jump: hours 02:30-04:00 on Madrid's spring-forward Sunday open
    at 03:00 CEST and last one real hour.
    """
    if seconds >= 86400:
        day, seconds = day + _DAY, seconds - 86400
    hour, rest = divmod(seconds, 3600)
    wall = datetime.combine(day, time(hour, rest // 60, rest % 60), tzinfo=tz)
    before, after = to_us(wall.replace(fold=1)), to_us(wall)
    if before >= after:  # the time exists (or is repeated: fold=0 is its first occurrence)
        return after
    # In a gap, fold=1 reads it with the new offset (too early) and fold=0 with the old one
    # (too late): the jump lies between. Two days a year, and days are cached.
    new_offset = from_us(after).astimezone(tz).utcoffset()
    while after - before > 1:
        middle = (before + after) // 2
        if from_us(middle).astimezone(tz).utcoffset() == new_offset:
            after = middle
        else:
            before = middle
    return after


@dataclass(frozen=True, eq=False)
class WeeklyCalendar:
    """Weekly opening hours in one IANA zone, minus holidays.

    ``hours`` maps a weekday index (0 = Monday) to ranges of seconds after local midnight;
    ``is_holiday`` says whether a local date is closed. ``business_day`` is the length of one
    ``bd`` on this calendar.
    """

    tz: ZoneInfo
    hours: Mapping[int, Sequence[tuple[int, int]]]
    business_day: timedelta
    is_holiday: Callable[[date], bool] = lambda _day: False
    _cache: Lru[date, DayIntervals] = field(default_factory=lambda: Lru(DAY_CACHE_DAYS), repr=False)

    def __post_init__(self) -> None:
        if not any(self.hours.get(wd) for wd in range(7)):
            raise CalendarError("a calendar needs working hours on at least one weekday")
        normal = {wd: _merged(ranges) for wd, ranges in self.hours.items() if ranges}
        object.__setattr__(self, "hours", normal)  # frozen: normalized once, here

    # -- the two operations -------------------------------------------------------------
    def add(self, start: datetime, duration: timedelta) -> datetime:
        left = duration // _US
        if left < 0:
            raise CalendarError("cannot add a negative duration")
        for open_us, close_us in self._intervals_from(start):
            span = close_us - open_us
            if left <= span:
                return from_us(open_us + left)
            left -= span
        raise AssertionError("unreachable: _intervals_from never ends")  # pragma: no cover

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        start_us, end_us = to_us(start), to_us(end)
        if end_us < start_us:
            return -self.elapsed(end, start)
        total = 0
        for open_us, close_us in self._intervals_from(start):
            if open_us >= end_us:
                break
            total += min(close_us, end_us) - open_us
        return timedelta(microseconds=total)

    def is_open(self, at: datetime) -> bool:
        at_us = to_us(at)
        return any(a <= at_us < b for a, b in self._day(at.astimezone(self.tz).date()))

    # -- intervals ----------------------------------------------------------------------
    def _intervals_from(self, at: datetime) -> Iterator[tuple[int, int]]:
        """Working intervals that end after ``at``, the first clipped to start there."""
        at_us = to_us(at)
        day = at.astimezone(self.tz).date()
        closed_days = 0
        while True:
            intervals = self._day(day)
            closed_days = closed_days + 1 if not intervals else 0
            if closed_days > MAX_CLOSED_DAYS:
                raise CalendarError(f"no working time in {MAX_CLOSED_DAYS} days from {day}")
            for open_us, close_us in intervals:
                if close_us > at_us:
                    yield max(open_us, at_us), close_us
            day += _DAY

    def _day(self, day: date) -> DayIntervals:
        cached = self._cache.get(day)
        if cached is None:
            cached = self._cache.put(day, self._build_day(day))
        return cached

    def _build_day(self, day: date) -> DayIntervals:
        ranges = self.hours.get(day.weekday(), ())
        if not ranges or self.is_holiday(day):
            return ()
        midnight = _local_instant(day, 0, self.tz)
        if _local_instant(day + _DAY, 0, self.tz) - midnight == _DAY_US:
            # no DST change today: every wall time is midnight plus its seconds
            return tuple((midnight + s * 1_000_000, midnight + e * 1_000_000) for s, e in ranges)
        out: list[tuple[int, int]] = []
        for start_s, end_s in ranges:
            open_us = _local_instant(day, start_s, self.tz)
            close_us = _local_instant(day, end_s, self.tz)
            if out:  # a DST gap can pull a range's start before the previous range's end
                open_us = max(open_us, out[-1][1])
            if close_us > open_us:
                out.append((open_us, close_us))
        return tuple(out)


def _merged(ranges: Sequence[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Ranges sorted, with overlapping and touching ones joined."""
    out: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(end, out[-1][1]))
        elif end > start:
            out.append((start, end))
    return tuple(out)


def typical_day_length(hours: Mapping[int, Sequence[tuple[int, int]]]) -> timedelta:
    """The default length of one business day: the most common daily total (longest on ties)."""
    totals = [sum(end - start for start, end in _merged(hours.get(wd, ()))) for wd in range(7)]
    open_totals = [t for t in totals if t > 0]
    if not open_totals:
        raise CalendarError("a calendar needs working hours on at least one weekday")
    best = max(open_totals, key=lambda t: (open_totals.count(t), t))
    return timedelta(seconds=best)


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    """A cached IANA zone (ZoneInfo construction is not free)."""
    return ZoneInfo(name)
