"""Warnings by time (``warn_before: [30m, 5m]``): where they fall, what they share, how they move.

The desk works Madrid office hours (Mon–Thu 08–17, Fri 08–14 and 15–18). P1: first response in
1 h and resolution in 8 h; P2 in 2 h; P3 in 4 h; P4 in 25 min; warnings at 75 % and at 30 and 5
working minutes before each deadline. The 30-minute warning is where 30 working minutes remain,
so it crosses closed nights, weekends and lunch breaks like the deadline itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from scheduler.calendar import AlwaysOpen
from scheduler.calendars import CalendarBook
from scheduler.clock import Span, read
from scheduler.evaluate import evaluate
from scheduler.sla import Checkpoint, TicketSla
from scheduler.time_left import left_in_key, warning_key
from shared.errors import PolicyError
from shared.events import Event
from shared.policy import Policy
from shared.policy_file import parse_policy
from tests.support import Ticket
from tests.unit.test_evaluate import histories
from tests.unit.test_policy_schema import POLICY_SCHEMA, problems
from worker.commands.render import simulation_table
from worker.commands.simulate import Simulation

MADRID = ZoneInfo("Europe/Madrid")
DESK = """\
name: desk
calendars:
  office:
    timezone: Europe/Madrid
    hours:
      mon: ["08:00-17:00"]
      tue: ["08:00-17:00"]
      wed: ["08:00-17:00"]
      thu: ["08:00-17:00"]
      fri: ["08:00-14:00", "15:00-18:00"]
    business_day: 8h
priorities: {P1: {}, P2: {}, P3: {}, P4: {}}
plans: {standard: {calendar: office}}
default_plan: standard
warn_at: [75]
warn_before: [30m, 5m]
targets:
  - {priority: P1, first_response: 1h, resolution: 8h}
  - {priority: P2, first_response: 2h}
  - {priority: P3, first_response: 4h}
  - {priority: P4, first_response: 25m}
"""


@pytest.fixture(scope="module")
def desk() -> Policy:
    return parse_policy(DESK, "desk.yaml")


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """An instant of March 2026 in Madrid (Monday 2, Thursday 5, Friday 6, Monday 9)."""
    return datetime(2026, 3, day, hour, minute, second, tzinfo=MADRID)


def warnings(sla: TicketSla, clock: str = "first_response") -> dict[str, datetime]:
    return {c.key: c.due_at for c in sla.checkpoints if c.key.startswith(f"{clock}:warning")}


# -- where they fall ---------------------------------------------------------------------
def test_the_warnings_fall_where_that_much_working_time_is_left_across_the_night(
    desk: Policy,
) -> None:
    """P1 opened Thursday 16:40: 20 minutes that day, due Friday 08:40. 30 minutes left is
    Friday 08:10 and 5 minutes left 08:35, not Thursday evening in wall-clock terms."""
    sla = Ticket(at(5, 16, 40), priority="P1").sla(desk, at(5, 16, 45))
    assert sla.metrics["first_response"].due_at == at(6, 8, 40)
    assert warnings(sla) == {
        "first_response:warning:30m": at(6, 8, 10),
        "first_response:warning:75": at(6, 8, 25),
        "first_response:warning:5m": at(6, 8, 35),
    }


def test_across_a_weekend_and_a_lunch_break(desk: Policy) -> None:
    """Opened Friday 17:40 (20 minutes before closing): due Monday 08:40, warned Monday 08:10
    and 08:35. Its 8-hour resolution ends Monday 15:40 and warns at 15:10."""
    sla = Ticket(at(6, 17, 40), priority="P1").sla(desk, at(6, 17, 45))
    assert warnings(sla)["first_response:warning:30m"] == at(9, 8, 10)
    assert warnings(sla)["first_response:warning:5m"] == at(9, 8, 35)
    assert sla.metrics["resolution"].due_at == at(9, 15, 40)
    assert warnings(sla, "resolution")["resolution:warning:30m"] == at(9, 15, 10)


def test_friday_lunch_is_not_working_time_left(desk: Policy) -> None:
    """Opened Friday 13:20, due 15:20 (40 minutes before lunch, 20 after): 30 working minutes
    are left at 13:50, not at 14:50 in the middle of lunch."""
    sla = Ticket(at(6, 13, 20), priority="P1").sla(desk, at(6, 13, 25))
    assert sla.metrics["first_response"].due_at == at(6, 15, 20)
    assert warnings(sla)["first_response:warning:30m"] == at(6, 13, 50)
    assert warnings(sla)["first_response:warning:5m"] == at(6, 15, 15)


def test_paused_time_is_not_counted(desk: Policy) -> None:
    """Pending 09:10–11:00 moves the deadline to 11:50 and the warnings with it (11:20, 11:45);
    while pending, none is armed; the one already fired before the pause stays fired."""
    ticket = Ticket(at(2, 9), priority="P1").status(at(2, 9, 10), "pending")
    assert warnings(ticket.sla(desk, at(2, 10))) == {}
    ticket.status(at(2, 11), "open")
    assert warnings(ticket.sla(desk, at(2, 11, 5))) == {
        "first_response:warning:30m": at(2, 11, 20),
        "first_response:warning:75": at(2, 11, 35),
        "first_response:warning:5m": at(2, 11, 45),
    }
    early = Ticket(at(2, 9), priority="P1").status(at(2, 9, 40), "on_hold")
    fired = {c.key: c.fired for c in early.sla(desk, at(2, 12)).checkpoints}
    assert fired == {"first_response:warning:30m": True}


def test_a_target_not_longer_than_a_warning_has_no_such_warning(desk: Policy) -> None:
    """P4 must be answered in 25 minutes: no 30-minute warning (it would fire at creation), the
    5-minute one at 09:20. A target of exactly 30 minutes has no 30-minute warning either."""
    sla = Ticket(at(2, 9), priority="P4").sla(desk, at(2, 9, 1))
    assert warnings(sla) == {
        "first_response:warning:75": at(2, 9, 18, 45),
        "first_response:warning:5m": at(2, 9, 20),
    }
    exact = parse_policy(DESK.replace("first_response: 25m", "first_response: 30m"), "d.yaml")
    assert warnings(Ticket(at(2, 9), priority="P4").sla(exact, at(2, 9, 1))) == {
        "first_response:warning:75": at(2, 9, 22, 30),
        "first_response:warning:5m": at(2, 9, 25),
    }


def test_a_warning_by_time_at_a_percentage_warnings_instant_is_one_checkpoint(
    desk: Policy,
) -> None:
    """P2 has 2 hours: 75 % is 90 minutes, where 30 minutes are left. One page, the 75 % one
    (its key, already stored for tickets of a policy that had no warn_before, stays)."""
    sla = Ticket(at(2, 9), priority="P2").sla(desk, at(2, 9, 1))
    assert warnings(sla) == {
        "first_response:warning:75": at(2, 10, 30),
        "first_response:warning:5m": at(2, 10, 55),
    }


# -- priority changes --------------------------------------------------------------------
def test_a_priority_change_moves_the_warnings_under_the_same_keys(desk: Policy) -> None:
    """P3 (4 h) opened 09:00 warns at 12:30 and 12:55; raised to P1 (1 h) at 09:10, the same two
    checkpoints move to 09:30 and 09:55, so the worker re-times them instead of adding new ones."""
    ticket = Ticket(at(2, 9), priority="P3")
    before = warnings(ticket.sla(desk, at(2, 9, 5)))
    assert (before["first_response:warning:30m"], before["first_response:warning:5m"]) == (
        at(2, 12, 30),
        at(2, 12, 55),
    )
    ticket.add("priority_changed", at(2, 9, 10), priority="P1")
    after = warnings(ticket.sla(desk, at(2, 9, 15)))
    assert after == {
        "first_response:warning:30m": at(2, 9, 30),
        "first_response:warning:75": at(2, 9, 45),
        "first_response:warning:5m": at(2, 9, 55),
    }


def test_a_change_past_a_warning_sends_one_page_at_the_change(desk: Policy) -> None:
    """P3 raised to P1 at 09:50, 50 minutes in: the 75 % and 30-minute marks are both passed, so
    one warning (75 %) falls at the change; the 5-minute one stays at 09:55."""
    ticket = Ticket(at(2, 9), priority="P3").add("priority_changed", at(2, 9, 50), priority="P1")
    assert warnings(ticket.sla(desk, at(2, 9, 51))) == {
        "first_response:warning:75": at(2, 9, 50),
        "first_response:warning:5m": at(2, 9, 55),
    }


def test_a_longer_target_after_a_change_brings_a_warning_the_shorter_had_none_of(
    desk: Policy,
) -> None:
    """P4 (25 minutes) has no 30-minute warning; lowered to P3 (4 h) at 09:05, it has one at
    12:30 again."""
    ticket = Ticket(at(2, 9), priority="P4").add("priority_changed", at(2, 9, 5), priority="P3")
    assert warnings(ticket.sla(desk, at(2, 9, 6)))["first_response:warning:30m"] == at(2, 12, 30)


# -- the clock alone: what shares an instant -----------------------------------------------
UTC_CLOCK = AlwaysOpen(tz=ZoneInfo("UTC"))
T0 = datetime(2026, 3, 2, 9, tzinfo=ZoneInfo("UTC"))


def _read_changed(new_target: timedelta) -> tuple[dict[timedelta, datetime], datetime | None]:
    """A 4-hour clock for its first hour, then ``new_target``; warnings at 30 and 5 minutes
    left and no percentages. Its time warnings and its breach."""
    spans = [
        Span(T0, T0 + timedelta(hours=1), UTC_CLOCK, timedelta(hours=4)),
        Span(T0 + timedelta(hours=1), None, UTC_CLOCK, new_target),
    ]
    reading = read(
        spans,
        running=True,
        in_force=(UTC_CLOCK, new_target),
        completed_at=None,
        now=T0 + timedelta(hours=1),
        warn_at=[],
        warn_before=[timedelta(minutes=30), timedelta(minutes=5)],
    )
    return reading.left_marks, reading.marks.get(100)


def test_warnings_by_time_passed_together_leave_the_one_with_least_time_left() -> None:
    """Cut to 64 minutes after an hour: both marks are passed at the change; one page, "5
    minutes left" (4 are), not "30 minutes left" as well."""
    left, breach = _read_changed(timedelta(minutes=64))
    assert left == {timedelta(minutes=5): T0 + timedelta(hours=1)}
    assert breach == T0 + timedelta(hours=1, minutes=4)


def test_no_warning_by_time_at_the_breach_itself() -> None:
    """Cut to 50 minutes after an hour: breached at the change, and no "minutes left" page."""
    left, breach = _read_changed(timedelta(minutes=50))
    assert (left, breach) == ({}, T0 + timedelta(hours=1))


# -- keys and the policy file ------------------------------------------------------------
@pytest.mark.parametrize(
    ("left", "key"),
    [
        (timedelta(minutes=30), "first_response:warning:30m"),
        (timedelta(hours=1, minutes=30), "first_response:warning:1h30m"),
        (timedelta(hours=16), "first_response:warning:16h"),
        (timedelta(seconds=90), "first_response:warning:1m30s"),
    ],
)
def test_a_warning_key_names_the_time_left_and_gives_it_back(left: timedelta, key: str) -> None:
    assert warning_key("first_response", left) == key
    assert left_in_key(key) == left
    assert left_in_key(key.replace("first_response", "update#3")) == left


@pytest.mark.parametrize(
    "key",
    ["first_response:warning:75", "update#2:breach", "allowance:acme:2026-01-01:80", "x:warning:"],
)
def test_other_keys_carry_no_time_left(key: str) -> None:
    assert left_in_key(key) is None


def test_the_same_time_written_two_ways_is_one_warning() -> None:
    """``0.5h`` is ``30m``: the key is made from the amount, not the spelling."""
    policy = parse_policy(DESK.replace("[30m, 5m]", "[0.5h, 5m]"), "d.yaml")
    sla = Ticket(at(2, 9), priority="P1").sla(policy, at(2, 9, 1))
    assert warnings(sla)["first_response:warning:30m"] == at(2, 9, 30)


def test_business_days_are_the_metric_calendars_business_day() -> None:
    """``1bd`` on an 8-hour business day is 8 working hours before a 2-day resolution: opened
    Monday 09:00, due Tuesday 16:00, warned at Monday's closing, 17:00."""
    text = DESK.replace("resolution: 8h}", "resolution: 2bd, warn_before: [1bd]}")
    sla = Ticket(at(2, 9), priority="P1").sla(parse_policy(text, "d.yaml"), at(2, 9, 1))
    assert sla.metrics["resolution"].due_at == at(3, 16)
    assert warnings(sla, "resolution") == {
        "resolution:warning:8h": at(2, 17),
        "resolution:warning:75": at(3, 12),
    }
    # the target's own list replaces the policy's for every clock of that target
    assert "first_response:warning:30m" not in warnings(sla)


def test_an_empty_list_on_a_target_turns_the_policys_warnings_by_time_off() -> None:
    text = DESK.replace(
        "{priority: P2, first_response: 2h}", "{priority: P2, first_response: 2h, warn_before: []}"
    )
    sla = Ticket(at(2, 9), priority="P2").sla(parse_policy(text, "d.yaml"), at(2, 9, 1))
    assert warnings(sla) == {"first_response:warning:75": at(2, 10, 30)}


def test_a_policy_without_warn_before_plans_what_it_always_did(desk: Policy) -> None:
    """Every existing policy keeps its checkpoints: same keys, same instants, same JSON."""
    plain = parse_policy(DESK.replace("warn_before: [30m, 5m]\n", ""), "d.yaml")
    sla = Ticket(at(2, 9), priority="P1").sla(plain, at(2, 9, 1))
    assert {c.key for c in sla.checkpoints} == {
        "first_response:warning:75",
        "first_response:breach",
        "resolution:warning:75",
        "resolution:breach",
    }
    assert all("left_seconds" not in c.to_json() for c in sla.checkpoints)


def test_the_json_of_a_warning_by_time_says_the_time_left(desk: Policy) -> None:
    sla = Ticket(at(2, 9), priority="P1").sla(desk, at(2, 9, 1))
    (shown,) = [c.to_json() for c in sla.checkpoints if c.key == "first_response:warning:30m"]
    assert shown == {
        "key": "first_response:warning:30m",
        "metric": "first_response",
        "kind": "warning",
        "percent": None,
        "tier": None,
        "due_at": "2026-03-02T09:30:00+01:00",
        "fired": False,
        "left_seconds": 1800,
    }


def test_the_simulate_table_names_the_next_warning_by_its_time_left(desk: Policy) -> None:
    """Of a clock's several warnings, the table says which one is next: ``30m left``."""
    ticket = Ticket(at(2, 9), priority="P1")
    result = Simulation(at(2, 9, 10), [ticket.sla(desk, at(2, 9, 10))], [])
    console = Console(width=250, record=True)
    simulation_table(result, console)
    assert "first_response warning 30m left 09:30 (in 20m)" in console.export_text()


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "warn_before: [30m, 5m]",
            "warn_before: [30m, 0.5h]",
            "d.yaml:16: warn_before: 0.5h: each warning time once",
        ),
        (
            "warn_before: [30m, 5m]",
            "warn_before: [1d]",
            "d.yaml:16: warn_before: 1d: a warning comes working time before the deadline",
        ),
        (
            "warn_before: [30m, 5m]",
            "warn_before: [30x]",
            "d.yaml:16: warn_before[0]: '30x' is not a duration",
        ),
    ],
)
def test_a_bad_warn_before_is_refused_with_its_line(old: str, new: str, expected: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(DESK.replace(old, new), "d.yaml")
    assert str(caught.value).splitlines()[0].startswith(expected)


@pytest.mark.parametrize("written", ["[1d]", "[30 minutes]", "30m"])
def test_an_editor_marks_what_policy_check_refuses(written: str) -> None:
    """The kept JSON Schema flags a wall-clock day, a duration in words and a bare value."""
    bad = DESK.replace("warn_before: [30m, 5m]", f"warn_before: {written}")
    with pytest.raises(PolicyError):
        parse_policy(bad, "d.yaml")
    assert problems(POLICY_SCHEMA, bad)
    assert problems(POLICY_SCHEMA, DESK) == []


# -- any order, any duplication: the same answer -----------------------------------------
@settings(max_examples=150, deadline=None)
@given(history=histories())
def test_any_order_or_repetition_of_the_same_events_gives_the_same_warnings(
    desk: Policy, history: tuple[list[Event], list[Event], datetime]
) -> None:
    """Shuffled and duplicated webhooks plan exactly the same warnings by time."""
    original, scrambled, now = history
    assert evaluate(desk, scrambled, now).to_json() == evaluate(desk, original, now).to_json()


@settings(max_examples=200, deadline=None)
@given(
    opened=st.integers(0, 14 * 24 * 60),
    priority=st.sampled_from(["P1", "P2", "P3"]),
    minutes=st.integers(1, 600),
)
def test_exactly_that_much_working_time_is_left_at_a_warning_by_time(
    opened: int, priority: str, minutes: int
) -> None:
    """Opened at any minute of two weeks (nights, weekends, lunches), with any warning time: a
    warning by time that is planned falls where exactly that much working time is left, and it
    is planned whenever the target is longer and no other warning falls then."""
    policy = parse_policy(DESK.replace("[30m, 5m]", f"[{minutes}m]"), "d.yaml")
    created = at(2, 0) + timedelta(minutes=opened)
    sla = Ticket(created, priority=priority).sla(policy, created)
    calendar = CalendarBook(policy).get("office", "Europe/Madrid")
    metric = sla.metrics["first_response"]
    assert metric.target is not None and metric.due_at is not None
    left = timedelta(minutes=minutes)
    ours = [c for c in sla.checkpoints if c.metric == "first_response"]
    by_time = [c for c in ours if c.left is not None]
    if left >= metric.target:
        assert by_time == []
        return
    percent = _the(c for c in ours if c.key == "first_response:warning:75")
    if not by_time:  # merged into the 75 % warning, at the very same instant
        assert calendar.elapsed(percent.due_at, metric.due_at) == left
        return
    warning = _the(by_time)
    assert (warning.key, warning.left) == (f"first_response:{_suffix(left)}", left)
    assert calendar.elapsed(warning.due_at, metric.due_at) == left
    assert calendar.elapsed(created, warning.due_at) == metric.target - left
    assert warning.due_at != percent.due_at


def _the(checkpoints: Iterable[Checkpoint]) -> Checkpoint:
    (one,) = checkpoints
    return one


def _suffix(left: timedelta) -> str:
    return warning_key("", left).lstrip(":")
