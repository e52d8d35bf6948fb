"""The board's rows: each open ticket's colour and its place (soporte-completo, 24x7; P1 answer
in 30 min with warnings at 75 % and 90 %)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from scheduler.context import TicketContext
from shared.policy import Metric
from tests.support import Ticket, preset
from worker.api.board.rows import BoardState, board_rows, choices, chosen, state_of
from worker.api.board.words import WORDS
from worker.report.tickets import ReportTicket

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
POLICY = preset("soporte-completo")


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def report(ticket: Ticket, now: datetime, customer: str | None = None) -> ReportTicket:
    return ReportTicket(ticket.sla(POLICY, now), customer, TicketContext.of(ticket.events, now))


def test_a_ticket_turns_warned_when_its_warning_falls_due_then_breached() -> None:
    ticket = Ticket(T0, priority="P1")
    assert state_of(report(ticket, T0 + minutes(22))) is BoardState.RUNNING
    assert state_of(report(ticket, T0 + minutes(23))) is BoardState.WARNED  # 75 % at 22.5 min
    assert state_of(report(ticket, T0 + minutes(31))) is BoardState.BREACHED


def test_an_answer_clears_the_warning_of_the_clock_it_stopped() -> None:
    ticket = Ticket(T0, priority="P1").reply(T0 + minutes(25))
    assert state_of(report(ticket, T0 + minutes(26))) is BoardState.RUNNING


def test_a_warning_of_an_earlier_update_cycle_does_not_colour_the_next_one() -> None:
    """Update every 2 h: the first cycle warned at 1.5 h, a reply at 1 h 45 began the next."""
    ticket = Ticket(T0, priority="P1").reply(T0 + minutes(10)).reply(T0 + minutes(115))
    assert state_of(report(ticket, T0 + minutes(120))) is BoardState.RUNNING


def test_a_ticket_waiting_on_the_customer_is_paused_and_comes_last() -> None:
    waiting = Ticket(T0, "T-1", priority="P1").status(T0 + minutes(5), "pending")
    running = Ticket(T0, "T-2", priority="P3")
    rows = board_rows(
        [report(waiting, T0 + minutes(40)), report(running, T0 + minutes(40))], T0 + minutes(40)
    )
    assert [(r.ticket.name, r.state) for r in rows] == [
        ("api/T-2", BoardState.RUNNING),
        ("api/T-1", BoardState.PAUSED),
    ]
    assert rows[1].following is None and rows[1].left is None


def test_rows_run_soonest_first_and_a_breach_with_nothing_ahead_leads() -> None:
    now = T0 + minutes(50)
    late = Ticket(T0, "LATE", priority="P1")  # breached at 30 min; tier 2 waits for an answer
    soon = Ticket(T0 + minutes(40), "SOON", priority="P1")  # 75 % at 62.5 min
    later = Ticket(T0 + minutes(45), "LATER", priority="P2")
    done = Ticket(T0, "DONE", priority="P2").reply(T0 + minutes(1)).add("resolved", T0 + minutes(2))
    rows = board_rows([report(t, now) for t in (later, done, soon, late)], now)
    assert [r.ticket.sla.ticket_id for r in rows] == ["LATE", "SOON", "LATER"]
    assert rows[0].left == -minutes(20)
    assert rows[1].left == minutes(12.5)


def test_filters_match_every_field_given_and_offer_the_values_seen() -> None:
    now = T0 + minutes(5)
    rows = board_rows(
        [
            report(Ticket(T0, "A", priority="P1", group="tier1"), now, "acme"),
            report(Ticket(T0, "B", priority="P2", group="tier1"), now, "zeta"),
            report(Ticket(T0, "C", priority="P1"), now, "zeta"),
        ],
        now,
    )
    assert [
        r.ticket.sla.ticket_id for r in chosen(rows, {"priority": "P1", "customer": "zeta"})
    ] == ["C"]
    assert len(chosen(rows, {"group": "", "unknown": "x"})) == 3
    assert choices(rows) == {
        "priority": ["P1", "P2"],
        "plan": ["completo"],
        "group": ["tier1"],
        "customer": ["acme", "zeta"],
    }


def test_every_metric_has_its_name_on_the_board_in_both_languages() -> None:
    """A metric added to policies (next reply) is named on the board, not shown as its key."""
    for language, words in WORDS.items():
        missing = [m.value for m in Metric if f"metric_{m.value}" not in words]
        assert missing == [], f"{language}: no board name for {missing}"
