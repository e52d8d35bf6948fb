"""What a policy would have changed: the same tickets judged under two policies, side by side."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from shared.policy_file import parse_policy
from tests.support import Ticket, hours, preset_text_without_notifications
from worker.report.compare import Comparison, RowChange, Side, compare
from worker.report.compare_views import comparison_json, comparison_sections, points
from worker.report.outcomes import Outcome

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # the preset's clocks run 24x7
ZONE = ZoneInfo("America/Mexico_City")
COMPLETO = preset_text_without_notifications("soporte-completo")
P2_FIRST_RESPONSE = "  - priority: P2\n    first_response: 2h\n"


def side(label: str, text: str = COMPLETO) -> Side:
    return Side.of(label, parse_policy(text, label))


def edited(old: str, new: str) -> str:
    assert old in COMPLETO
    return COMPLETO.replace(old, new)


OLD = side("old.yaml")
P2_IN_1H = side("new.yaml", edited(P2_FIRST_RESPONSE, "  - priority: P2\n    first_response: 1h\n"))


def row(report: Comparison, dimension: str, group: str, metric: str) -> RowChange:
    return next(
        r for r in report.rows if (r.dimension, r.group, r.metric) == (dimension, group, metric)
    )


def test_the_same_policy_twice_changes_nothing() -> None:
    """Every row is equal on both sides and no ticket is listed."""
    tickets = [
        Ticket(T0, "A", priority="P2").reply(T0 + hours(1.5)).events,
        Ticket(T0, "B", priority="P1").events,
    ]
    report = compare(OLD, side("copy.yaml"), tickets, T0 + hours(3))
    assert report.tickets == 2 and report.changes == []
    assert all(not r.changed and r.change in (0, None) for r in report.rows)


def test_a_shorter_target_turns_a_reply_in_time_into_a_breach() -> None:
    """Answered after 90 minutes: met against 2 hours, breached against 1 hour; the share of
    first responses kept falls by the ticket's weight, and its deadlines are both shown."""
    late = Ticket(T0, "A", priority="P2", customer="acme").reply(T0 + hours(1.5))
    early = Ticket(T0, "B", priority="P2").reply(T0 + hours(0.5))
    report = compare(OLD, P2_IN_1H, [late.events, early.events], T0 + hours(3))
    [change] = report.changes
    assert (change.new.name, change.metric) == ("api/A", "first_response")
    assert (change.was, change.becomes) == (Outcome.MET, Outcome.BREACHED)
    assert (change.old_deadline, change.new_deadline) == (T0 + hours(2), T0 + hours(1))
    overall = row(report, "all", "all", "first_response")
    assert overall.old is not None and overall.new is not None
    assert (overall.old.met, overall.old.breached) == (2, 0)
    assert (overall.new.met, overall.new.breached) == (1, 1)
    assert overall.change == -50.0
    assert row(report, "priority", "P2", "first_response").change == -50.0
    assert row(report, "customer", "acme", "first_response").change == -100.0
    assert not row(report, "all", "all", "update").changed


def test_an_open_clock_can_become_a_breach() -> None:
    """Not answered after 90 minutes: still open under 2 hours, already breached under 1 hour,
    so the new side decides one more promise than the old."""
    waiting = Ticket(T0, "A", priority="P2").events
    report = compare(OLD, P2_IN_1H, [waiting], T0 + hours(1.5))
    [change] = report.changes
    assert (change.was, change.becomes) == (Outcome.OPEN, Outcome.BREACHED)
    assert (change.old_deadline, change.new_deadline) == (T0 + hours(2), T0 + hours(1))
    overall = row(report, "all", "all", "first_response")
    assert overall.old is not None and overall.new is not None
    assert (overall.old.open, overall.new.breached) == (1, 1)
    assert overall.change is None  # nothing was decided under the old policy


def test_an_earlier_escalation_shows_the_tier_due_and_the_one_missed() -> None:
    """Tier 2 due 1 hour after the first response instead of 8: the escalation promise is
    broken under the new policy; the old deadline is the tier still ahead."""
    new = side(
        "new.yaml",
        edited(
            "      - {tier: 2, after: 8h, from: first_response}",
            "      - {tier: 2, after: 1h, from: first_response}",
        ),
    )
    answered = Ticket(T0, "A", priority="P2").reply(T0 + hours(1)).events
    report = compare(OLD, new, [answered], T0 + hours(3))
    [change] = report.changes
    assert (change.metric, change.was, change.becomes) == (
        "escalation",
        Outcome.OPEN,
        Outcome.BREACHED,
    )
    assert (change.old_deadline, change.new_deadline) == (T0 + hours(9), T0 + hours(2))


def test_a_metric_only_the_new_policy_measures() -> None:
    """A resolution target added: the row exists on the new side only, and a resolved ticket
    goes from not measured to met."""
    new = side(
        "new.yaml",
        edited(P2_FIRST_RESPONSE, P2_FIRST_RESPONSE + "    resolution: 8h\n"),
    )
    solved = Ticket(T0, "A", priority="P2").reply(T0 + hours(1)).add("resolved", T0 + hours(2))
    report = compare(OLD, new, [solved.events], T0 + hours(3))
    resolution = row(report, "all", "all", "resolution")
    assert resolution.old is None and resolution.new is not None and resolution.change is None
    [change] = report.changes
    assert (change.metric, change.was, change.becomes) == ("resolution", Outcome.NONE, Outcome.MET)
    assert (change.old_deadline, change.new_deadline) == (None, T0 + hours(8))


def test_a_ticket_one_policy_cannot_evaluate_is_left_out_of_both() -> None:
    """A priority alias the new policy dropped: the ticket is named with the reason, and both
    sides count the same other tickets."""
    new = side("new.yaml", edited("aliases: [Alto, high]", "aliases: [high]"))
    alto = Ticket(T0, "A", priority="Alto").events
    high = Ticket(T0, "B", priority="high").events
    report = compare(OLD, new, [alto, high], T0 + hours(1))
    assert report.tickets == 1
    [refused] = report.refused
    assert (refused.ticket, refused.policy) == ("api/A", "new.yaml")
    assert "Alto" in refused.reason
    overall = row(report, "all", "all", "first_response")
    assert overall.old is not None and overall.new is not None
    assert overall.old.open == overall.new.open == 1


def test_only_tickets_created_in_the_period_are_compared() -> None:
    """With a period, a ticket created before it counts on neither side; one with no created
    event is listed as waiting."""
    before = Ticket(T0 - timedelta(days=2), "OLD", priority="P2").events
    inside = Ticket(T0, "IN", priority="P2").reply(T0 + hours(1.5)).events
    orphan = [Ticket(T0, "X").reply(T0 + hours(1)).events[1]]
    report = compare(
        OLD,
        P2_IN_1H,
        [before, inside, orphan],
        T0 + hours(3),
        created=(T0 - timedelta(days=1), T0 + timedelta(days=1)),
    )
    assert report.tickets == 1 and [c.new.name for c in report.changes] == ["api/IN"]
    assert report.waiting == ["api/X"]


def test_the_table_leaves_out_unchanged_customers_and_json_keeps_every_row() -> None:
    """Of two customers only the changed one is a table row (the title counts the other);
    the JSON document has both, with each side's figures and the change."""
    changed = Ticket(T0, "A", priority="P2", customer="acme").reply(T0 + hours(1.5))
    same = Ticket(T0, "B", priority="P2", customer="zeta").reply(T0 + hours(0.5))
    report = compare(OLD, P2_IN_1H, [changed.events, same.events], T0 + hours(3))
    table, tickets = comparison_sections(report, ZONE)
    customers = [r[1] for r in table.rows if r[0] == "customer"]
    assert customers == ["acme"] and "1 customers unchanged, not shown" in table.title
    acme = next(r for r in table.rows if r[:3] == ("customer", "acme", "first_response"))
    assert acme[3:8] == ("100.0 % (1/1)", "0.0 % (0/1)", "-100.0 pp", "95 %", "yes → NO")
    assert tickets.title == "Tickets that change outcome: 1 of 2"
    assert tickets.rows == [
        (
            "api/A",
            "acme",
            "P2",
            "first_response",
            "met → breached",
            "2026-03-02 11:00",
            "2026-03-02 10:00",
        )
    ]
    doc = comparison_json(report, ZONE)
    groups = {(r["dimension"], r["group"]) for r in doc["rows"]}
    assert {("customer", "acme"), ("customer", "zeta")} <= groups
    assert doc["changes"] == [
        {
            "source": "api",
            "ticket_id": "A",
            "customer": "acme",
            "subject": None,
            "plan": "completo",
            "priority": "P2",
            "metric": "first_response",
            "old": {"outcome": "met", "deadline": "2026-03-02T11:00:00-06:00"},
            "new": {"outcome": "breached", "deadline": "2026-03-02T10:00:00-06:00"},
        }
    ]


def test_a_change_of_share_reads_in_percentage_points() -> None:
    assert [points(v) for v in (-12.5, 4.0, 0.0, 1e-9, None)] == [
        "-12.5 pp",
        "+4.0 pp",
        "0.0 pp",
        "0.0 pp",
        None,
    ]
