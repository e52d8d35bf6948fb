"""A ticket's clocks drawn over business time: positions are percentages of a strip from the
ticket's creation to a little past the clock's last instant (soporte-completo, P3: answer in
4 h; the calendar here is open 09:00-17:00 UTC)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from tests.support import Ticket, hours, preset
from worker.api.board.clocks import MARGIN, SAMPLES, Drawing, draw_clocks

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
POLICY = preset("soporte-completo")
STRIP = 4 * (1 + MARGIN)  # hours: the first response's deadline is the clock's last instant
ONE_SAMPLE = 100 / SAMPLES
Pauses = Sequence[tuple[datetime, datetime | None]]
ROUNDED = 0.001  # positions are kept to three decimals


def office(_metric: str, at: datetime) -> bool:
    return 9 <= at.hour < 17


def first_response(ticket: Ticket, now: datetime, pauses: Pauses = ()) -> Drawing:
    drawings = draw_clocks(ticket.sla(POLICY, now), list(pauses), office, now)
    return next(d for d in drawings if d.metric == "first_response")


def test_open_hours_warnings_breach_and_now_fall_where_their_instants_are() -> None:
    clock = first_response(Ticket(T0, priority="P3"), T0 + hours(1))
    assert clock.start == T0
    assert len(clock.open) == 1
    x, width = clock.open[0]
    assert x == 0
    assert width == pytest.approx(100 * 2 / STRIP, abs=ONE_SAMPLE)  # open until 17:00
    marks = {m.key: m.x for m in clock.marks}
    assert marks["first_response:warning:75"] == pytest.approx(100 * 3 / STRIP, abs=ROUNDED)
    assert marks["first_response:breach"] == pytest.approx(100 * 4 / STRIP, abs=ROUNDED)
    assert clock.now_x == pytest.approx(100 * 1 / STRIP, abs=ROUNDED)
    assert not any(m.fired for m in clock.marks)


def test_a_paused_stretch_is_drawn_and_a_met_clock_ends_where_it_was_answered() -> None:
    ticket = Ticket(T0, priority="P3").status(T0 + hours(1), "pending")
    ticket.status(T0 + hours(2), "open").reply(T0 + hours(3))
    pause = (T0 + hours(1), T0 + hours(2))
    clock = first_response(ticket, T0 + hours(8), [pause])
    assert clock.state == "met"
    # the deadline moved an hour later (the pause): 20:00, the strip's last instant
    last = 5 * (1 + MARGIN)
    assert clock.paused == [pytest.approx((100 * 1 / last, 100 * 1 / last), abs=ROUNDED)]
    assert clock.done_x == pytest.approx(100 * 3 / last, abs=ROUNDED)
    assert clock.now_x is None  # 23:00 is past the strip: the clock ended long before


def test_a_clock_that_does_not_apply_is_not_drawn() -> None:
    drawn = draw_clocks(Ticket(T0, priority="P3").sla(POLICY, T0), [], office, T0)
    assert {d.metric for d in drawn} <= {"first_response", "update", "resolution", "next_reply"}
    assert "first_response" in {d.metric for d in drawn}
