"""Whether a ticket kept each promise, read from its evaluated SLA (soporte-completo, 24x7)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.support import Ticket, hours, preset
from worker.report.at_risk import at_risk
from worker.report.compliance import compliance
from worker.report.outcomes import breach_instants, outcomes
from worker.report.tickets import Period, ReportTicket

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
POLICY = preset("soporte-completo")  # P1: answer 30m, update every 2h, tier 2 4h / tier 3 8h


def judged(ticket: Ticket, now: datetime) -> dict[str, str]:
    return {k: v.value for k, v in outcomes(POLICY, ticket.sla(POLICY, now)).items()}


def test_an_update_late_once_breaches_the_ticket_even_if_the_last_was_on_time() -> None:
    ticket = Ticket(T0, priority="P1").reply(T0 + timedelta(minutes=10))
    ticket.reply(T0 + hours(3)).reply(T0 + hours(4)).add("resolved", T0 + hours(5))
    assert judged(ticket, T0 + hours(6))["update"] == "breached"


def test_an_update_exactly_at_its_deadline_is_on_time() -> None:
    ticket = Ticket(T0, priority="P1").reply(T0 + timedelta(minutes=30))
    ticket.reply(T0 + hours(2.5)).add("resolved", T0 + hours(3))
    assert judged(ticket, T0 + hours(4)) == {
        "first_response": "met",
        "update": "met",
        "next_reply": "none",
        "escalation": "met",
        "resolution": "none",
    }


def test_escalation_is_met_when_the_tier_was_reached_in_time_and_breached_when_late() -> None:
    replied = T0 + timedelta(minutes=10)
    on_time = Ticket(T0, priority="P1", ticket="ON").reply(replied)
    on_time.add("assigned", replied + hours(3), tier=2).add("assigned", replied + hours(7), tier=3)
    late = Ticket(T0, priority="P1", ticket="LATE").reply(replied)
    late.add("assigned", replied + hours(5), tier=3)
    running = Ticket(T0, priority="P1", ticket="RUN").reply(replied)
    at = replied + hours(9)
    assert judged(on_time, at)["escalation"] == "met"
    assert judged(late, at)["escalation"] == "breached"
    assert judged(running, replied + hours(2))["escalation"] == "open"


def test_an_escalation_the_customer_asked_for_is_no_broken_promise() -> None:
    ticket = Ticket(T0, priority="P1").reply(T0 + timedelta(minutes=10))
    ticket.add("escalation_requested", T0 + hours(1)).add("resolved", T0 + hours(1.5))
    assert judged(ticket, T0 + hours(2))["escalation"] == "met"


def test_breach_instants_name_each_broken_promise_once_with_its_first_instant() -> None:
    ticket = Ticket(T0, priority="P1").reply(T0 + hours(1)).reply(T0 + hours(4))
    sla = ticket.sla(POLICY, T0 + hours(10))
    assert breach_instants(sla) == {
        "first_response": T0 + timedelta(minutes=30),
        "update": T0 + hours(3),
        "escalation": T0 + hours(5),
    }


def test_compliance_counts_shares_against_commitments_and_ranks_customers() -> None:
    at = T0 + hours(1)
    tickets = [
        ReportTicket(
            Ticket(T0, priority="P1", ticket=f"T{i}", customer=c)
            .reply(T0 + timedelta(minutes=m))
            .sla(POLICY, at),
            c,
        )
        for i, (c, m) in enumerate([("a", 10), ("a", 40), ("b", 20), ("b", 25)])
    ]
    report = compliance(POLICY, tickets, Period(T0, T0 + hours(1), at))
    rows = {(r.dimension, r.group, r.metric): r for r in report.rows}
    overall = rows["all", "all", "first_response"]
    assert (overall.met, overall.breached, overall.open, overall.share) == (3, 1, 0, 75.0)
    assert (overall.commitment, overall.kept) == (95, False)
    assert rows["customer", "b", "first_response"].kept is True
    assert [(c.customer, c.breaches) for c in report.worst_customers] == [("a", 1)]
    assert [o.ticket.name for o in report.worst_tickets] == ["api/T1"]


def test_a_ticket_created_outside_the_period_is_not_counted() -> None:
    sla = Ticket(T0, priority="P1").sla(POLICY, T0 + hours(1))
    report = compliance(
        POLICY, [ReportTicket(sla, None)], Period(T0 + hours(1), T0 + hours(2), T0 + hours(2))
    )
    assert report.rows == []


def test_a_paused_ticket_is_not_at_risk_and_a_solved_one_neither() -> None:
    at = T0 + timedelta(minutes=5)
    paused = Ticket(T0, priority="P1", ticket="P").status(T0 + timedelta(minutes=1), "pending")
    solved = Ticket(T0, priority="P1", ticket="S").add("resolved", T0 + timedelta(minutes=2))
    running = Ticket(T0, priority="P2", ticket="R")
    queue = at_risk([ReportTicket(t.sla(POLICY, at), None) for t in (paused, solved, running)], at)
    assert [(r.ticket.name, r.checkpoint.key, r.left) for r in queue] == [
        ("api/R", "first_response:warning:75", timedelta(minutes=85))
    ]
