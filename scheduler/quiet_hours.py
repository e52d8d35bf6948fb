"""Quiet hours: whether a route holds its messages now, and until when. Pure.

A route naming ``quiet_outside: <calendar>`` sends only while that calendar is open; outside
it, what the route would send waits for the calendar's next opening (weekends and holidays are
skipped as the calendar says). A ``timezone: customer`` calendar is read in the policy's
``default_timezone``: quiet hours are the desk's, whoever the customer is. A route marked
``always`` (or naming no calendar) is never held.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from scheduler.calendars import CalendarBook
from shared.policy_routes import RouteSpec


def held_until(
    route: RouteSpec, calendars: CalendarBook, desk_zone: str, now: datetime
) -> datetime | None:
    """The instant ``route`` may send what it would send ``now``: None if it may send now,
    else its calendar's next opening."""
    if route.always or route.quiet_outside is None:
        return None
    calendar = calendars.get(route.quiet_outside, desk_zone)
    if calendar.is_open(now):
        return None
    # no working time to add: the start of the first open interval after ``now``
    return calendar.add(now, timedelta(0))
