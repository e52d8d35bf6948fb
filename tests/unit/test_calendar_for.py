"""``calendar_for``: one clock of a target on its own calendar, the others on the plan's.

A desk that answers round the clock but resolves only on working days writes its resolution
clock on a Monday–Friday calendar. Expected instants are worked out by hand (December 2026:
Fri 18, Sat 19, Mon 21, Tue 22).
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from shared.policy import Policy
from shared.policy_file import parse_policy
from tests.support import Ticket

KOLKATA = ZoneInfo("Asia/Kolkata")  # UTC+05:30, no daylight saving time
FRIDAY_NIGHT = datetime(2026, 12, 18, 20, tzinfo=UTC)

POLICY = """
name: answers-always-resolves-on-weekdays
calendars:
  always: 24x7
  weekdays:
    timezone: customer
    hours: {mon: ["00:00-24:00"], tue: ["00:00-24:00"], wed: ["00:00-24:00"],
            thu: ["00:00-24:00"], fri: ["00:00-24:00"]}
    business_day: 24h
priorities:
  P3: {}
plans:
  standard: {calendar: always}
default_plan: standard
targets:
  - priority: P3
    calendar_for: {resolution: weekdays}
    first_response: 2h
    resolution: 1bd
"""


@pytest.fixture(scope="module")
def policy() -> Policy:
    return parse_policy(POLICY, "policy.yaml")


def test_only_the_named_clock_waits_for_monday(policy: Policy) -> None:
    """Opened Friday 20:00: the answer is due Friday 22:00, the resolution Monday 20:00
    (4 h on Friday, 20 h on Monday)."""
    sla = Ticket(FRIDAY_NIGHT, priority="P3").sla(policy, FRIDAY_NIGHT)
    assert sla.metrics["first_response"].due_at == datetime(2026, 12, 18, 22, tzinfo=UTC)
    assert sla.metrics["resolution"].due_at == datetime(2026, 12, 21, 20, tzinfo=UTC)


def test_the_named_calendar_follows_the_customers_zone(policy: Policy) -> None:
    """Friday 20:00 UTC is already Saturday 01:30 in Kolkata: the resolution clock waits for
    Monday 00:00 there and is due Tuesday 00:00 IST; the answer is still due in 2 h."""
    ticket = Ticket(FRIDAY_NIGHT, priority="P3", customer_timezone="Asia/Kolkata")
    sla = ticket.sla(policy, FRIDAY_NIGHT)
    assert sla.metrics["first_response"].due_at == datetime(2026, 12, 18, 22, tzinfo=UTC)
    resolution = sla.metrics["resolution"]
    assert resolution.due_at == datetime(2026, 12, 22, 0, tzinfo=KOLKATA)
    assert resolution.tz.key == "Asia/Kolkata"
