"""The `--demo` morning under the `soporte-completo` preset: pages within the first minute, and
more for a quarter of an hour; never a page about history the demo did not mean to show. Under
`--policy multi-team`: a page at once at any hour, told where its ticket's team and assignee say.

Each ticket is evaluated as the worker does: after each of its events arrives (nothing before its
`created` event), a checkpoint falling due before the ticket's next event fires then. A ticket
that arrives with several checkpoints of a clock overdue pages only the most advanced one (the
preset's default ``catch_up: latest``, `worker.notify.catch_up`).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

from scheduler.evaluate import evaluate
from shared.directory import EMPTY
from shared.events import Event
from tests.support import preset
from worker.demo.feed import feed_line
from worker.demo.morning import MORNING, TEAMS, morning_events
from worker.notify.catch_up import CatchUpRule, Due, silence
from worker.notify.routing import Fired, channels_of, routes_for

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # Monday, 10:00 in New York
NIGHT = datetime(2026, 3, 4, 3, 30, tzinfo=UTC)  # Tuesday, 22:30 in New York
SUNDAY = datetime(2026, 3, 8, 16, 0, tzinfo=UTC)  # noon in New York


def _schedule(
    name: str = "soporte-completo", start: datetime = START
) -> list[tuple[float, str, str]]:
    """(seconds after the start it pages, ticket, checkpoint key), in firing order."""
    policy = preset(name)
    horizon = start + timedelta(minutes=40)
    rule = CatchUpRule.of(policy)
    tickets: dict[str, list[tuple[datetime, Event]]] = defaultdict(list)
    for posted, event, _step in morning_events(start):
        tickets[event.ticket_id].append((posted, event))
    fired: list[tuple[float, str, str]] = []
    for ticket, arrivals in tickets.items():
        seen: set[str] = set()
        for i, (posted, _event) in enumerate(arrivals):
            so_far = [event for _, event in arrivals[: i + 1]]
            if not any(event.type.value == "created" for event in so_far):
                continue  # kept until the ticket's creation arrives
            following = arrivals[i + 1][0] if i + 1 < len(arrivals) else horizon
            planned = evaluate(policy, so_far, posted).checkpoints
            dues = [Due(0, c.key, c.kind.value, c.due_at) for c in planned]
            for checkpoint, due in zip(planned, dues, strict=True):
                if checkpoint.key not in seen and checkpoint.due_at < following:
                    seen.add(checkpoint.key)
                    at = max(checkpoint.due_at, posted)  # overdue on arrival: fires at once
                    if silence(due, rule, dues, at) is None:
                        fired.append(((at - start).total_seconds(), ticket, checkpoint.key))
    return sorted(fired)


def test_pages_fall_due_in_the_first_minute() -> None:
    """MX-1002 arrives 28 minutes into its 30: its 75 % and 90 % are both overdue, and only the
    90 % prints."""
    first_minute = [(ticket, key) for at, ticket, key in _schedule() if at <= 60]
    assert first_minute == [
        ("MX-1002", "first_response:warning:90"),
        ("MX-1005", "first_response:warning:75"),
        ("MX-1001", "first_response:warning:75"),
        ("MX-1003", "first_response:warning:75"),
    ]


def test_the_morning_keeps_paging_for_a_quarter_of_an_hour() -> None:
    later = [(round(at), ticket, key) for at, ticket, key in _schedule() if 60 < at <= 900]
    assert later == [
        (70, "MX-1004", "escalation:tier2"),
        (120, "MX-1002", "first_response:breach"),
        (250, "MX-1004", "update#3:warning:75"),
        (305, "MX-1001", "first_response:warning:90"),
        (360, "MX-1007", "first_response:warning:75"),
        (630, "MX-1007", "first_response:warning:90"),
    ]


def test_replies_beat_the_breaches_they_are_meant_to() -> None:
    """MX-1001 and MX-1007 are answered before their breach; the history of MX-1004 (resent
    with its creation last) raises nothing from the past."""
    keys = {(ticket, key) for _at, ticket, key in _schedule()}
    assert ("MX-1001", "first_response:breach") not in keys
    assert ("MX-1007", "first_response:breach") not in keys
    assert all(at >= 10 for at, ticket, _key in _schedule() if ticket == "MX-1004")


def test_a_tag_makes_every_id_new() -> None:
    """Into a database holding an earlier run, the feed starts tickets of its own."""
    events = [event for _posted, event, _step in morning_events(START, tag="-a1")]
    assert all(event.ticket_id.endswith("-a1") for event in events)
    assert len({event.event_id for event in events}) == len(MORNING)


def test_a_feed_line_says_which_ticket_what_and_why() -> None:
    posted, event, step = next(morning_events(START))
    assert posted == START
    assert feed_line(event, step).endswith(
        "  << api/MX-1002: created · urgent · transportes-lupita · Technical incident · 28 min ago"
        " (terminals down since before 8; nobody has answered)"
    )


def first_told(ticket: str, kind: str, priority: str) -> dict[str, list[str]]:
    """Route by route, where the first message of a checkpoint of the demo's ``ticket`` goes
    under multi-team."""
    policy = preset("multi-team")
    fired = Fired(kind, "first_response", None, priority, "standard")
    team = TEAMS[ticket]
    return {
        route.name: channels_of(
            policy,
            route,
            0,
            group=team.get("group"),
            assignee=team.get("assignee"),
            directory=EMPTY,
        ).channels
        for route in routes_for(policy, fired)
    }


def _quarter_under_multi_team(start: datetime) -> list[tuple[str, str]]:
    return [(ticket, key) for at, ticket, key in _schedule("multi-team", start) if at <= 900]


def test_under_multi_team_the_unassigned_incident_pages_the_desk_at_any_hour() -> None:
    """MX-1002, a Technical incident worked round the clock (15 minutes), arrives breached, at
    night and on Sunday too, where the office-hours tickets page nobody; with no assignee, its
    breach chain starts on the desk's channel."""
    for start in (NIGHT, SUNDAY):
        assert _quarter_under_multi_team(start) == [("MX-1002", "first_response:breach")]
    assert first_told("MX-1002", "breach", "P1") == {"breach-chain": ["desk"]}


def test_under_multi_team_office_hours_page_marco_about_his_incident() -> None:
    """At 10:00 in New York MX-1003 (Alto: P2, an hour in office hours) arrives breached too: its
    chain starts with its assignee Marco."""
    assert _quarter_under_multi_team(START) == [
        ("MX-1002", "first_response:breach"),
        ("MX-1003", "first_response:breach"),
    ]
    assert first_told("MX-1003", "breach", "P2") == {"breach-chain": ["marco_chat"]}
