"""Who the multi-team preset tells, and when, as shipped (deploy/policies/multi-team.yaml, the
"Who is told" table of its header): its directory, its breach chain and its quiet hours.

A P1 or P2 breach goes to the assignee's own channel (the desk's when the ticket has none, or one
the directory does not list), ten minutes later to the team leads, fifteen more to the on-call
phone, then the phone three more times; warnings and escalations go to the ticket's team; P3 and
P4 wait for New York office hours (Monday to Friday 08:00–18:00, US federal holidays), P1 and
P2 never wait.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from scheduler.calendars import CalendarBook
from scheduler.quiet_hours import held_until
from shared.directory import EMPTY
from shared.policy_routes import RouteSpec
from tests.support import preset
from worker.notify.routing import Fired, channels_of, routes_for

POLICY = preset("multi-team")
NEW_YORK = ZoneInfo("America/New_York")
MARCO = "marco@desk.example"


def told(
    kind: str,
    priority: str,
    *,
    group: str | None = None,
    assignee: str | None = None,
    metric: str = "first_response",
    tier: int | None = None,
) -> dict[str, list[list[str]]]:
    """Route by route, the channels each message of a checkpoint of a ticket goes to;
    ``priority`` as the portal sends it."""
    named = POLICY.priority_named(priority)
    assert named is not None, f"multi-team does not know priority {priority!r}"
    fired = Fired(kind, metric, tier, named, "standard")
    return {
        route.name: [
            channels_of(POLICY, route, n, group=group, assignee=assignee, directory=EMPTY).channels
            for n in range(route.last_repeat + 1)
        ]
        for route in routes_for(POLICY, fired)
    }


def route(name: str) -> RouteSpec:
    (found,) = [r for r in POLICY.routes if r.name == name]
    return found


def test_a_breach_walks_the_chain_from_the_assignee_to_the_on_call_phone() -> None:
    """Marco's P1 breach: his channel, then the leads, then the phone four times in all; each
    message waits for an acknowledgement 10, 15, then 10 minutes."""
    phone = [["oncall_phone"]] * 4
    assert told("breach", "P1", group="Technical", assignee=MARCO) == {
        "breach-chain": [["marco_chat"], ["team_leads"], *phone]
    }
    waits = [route("breach-chain").wait_after(n) for n in range(6)]
    minutes = [timedelta(minutes=m) for m in (10, 15, 10, 10, 10)]
    assert waits == [*minutes, None]


@pytest.mark.parametrize(
    ("assignee", "first"),
    [
        ("Marco@Desk.example", "marco_chat"),  # names match whatever their case
        ("ana@desk.example", "ana_chat"),
        ("luis@desk.example", "desk"),  # not in the directory
        (None, "desk"),  # nobody has it yet
    ],
)
def test_the_chain_starts_with_the_assignee_or_the_desk(assignee: str | None, first: str) -> None:
    """A P2 breach (the Spanish form's "Alto") starts where the assignee is, else on the desk."""
    chain = told("breach", "Alto", group="Billing", assignee=assignee)["breach-chain"]
    assert chain[:2] == [[first], ["team_leads"]]


def test_warnings_and_escalations_go_to_the_tickets_team_once() -> None:
    """Not a chain: one message, to the team's channel; a group not listed goes to the desk."""
    assert told("warning", "Crítico", group="Billing") == {"team-now": [["billing_team"]]}
    escalation = told("escalation", "P1", group="technical", metric="escalation", tier=2)
    assert escalation == {"team-now": [["technical_team"]]}
    assert told("warning", "P2", group="Sales") == {"team-now": [["desk"]]}
    assert told("warning", "P2") == {"team-now": [["desk"]]}


@pytest.mark.parametrize("priority", ["P3", "Normal", "P4", "Bajo"])
def test_p3_and_p4_go_to_the_team_breaches_too_and_page_nobody(priority: str) -> None:
    for kind in ("warning", "breach"):
        assert told(kind, priority, group="Billing") == {"team-office-hours": [["billing_team"]]}


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=NEW_YORK)


def held(name: str, at: str) -> datetime | None:
    return held_until(route(name), CalendarBook(POLICY), POLICY.default_timezone, local(at))


@pytest.mark.parametrize(
    ("at", "release"),
    [
        ("2026-03-03 10:00", None),  # Tuesday, open: sent now
        ("2026-03-03 23:10", "2026-03-04 08:00"),  # at night: the morning
        ("2026-03-06 18:30", "2026-03-09 08:00"),  # Friday evening: Monday
        ("2026-11-25 19:00", "2026-11-27 08:00"),  # the eve of Thanksgiving: Friday
    ],
)
def test_p3_and_p4_wait_for_office_hours(at: str, release: str | None) -> None:
    assert held("team-office-hours", at) == (local(release) if release else None)


@pytest.mark.parametrize("name", ["breach-chain", "team-now"])
def test_p1_and_p2_never_wait(name: str) -> None:
    assert route(name).always
    assert held(name, "2026-03-08 03:00") is None  # Sunday night
