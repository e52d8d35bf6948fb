"""Report tables in a terminal: at 80 columns they choose and shorten columns, one line per row,
instead of folding words letter by letter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from rich.console import Console

from scheduler.context import TicketContext
from tests.support import Ticket, preset
from worker.report.at_risk import at_risk
from worker.report.render import Section, layout, print_table
from worker.report.tickets import ReportTicket
from worker.report.views import at_risk_sections

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
POLICY = preset("soporte-completo")
ZONE = ZoneInfo("America/Mexico_City")
SUBJECT = "Terminales sin conexión desde antes de las 8 en la sucursal Centro"


def printed(sections: list[Section], width: int) -> list[str]:
    console = Console(width=width, record=True, color_system=None)
    print_table(sections, console)
    return console.export_text().splitlines()


def a_queue() -> list[Section]:
    now = T0 + timedelta(minutes=20)
    tickets = []
    for n, priority in enumerate(("P1", "P2", "P3"), 1):
        history = Ticket(T0, f"MX-100{n}", priority=priority, subject=SUBJECT, group="soporte-n1")
        history.add("assigned", T0 + timedelta(minutes=1), assignee="ana.garcia@example.com")
        sla = history.sla(POLICY, now)
        tickets.append(
            ReportTicket(sla, "transportes-lupita", TicketContext.of(history.events, now))
        )
    return at_risk_sections(at_risk(tickets, now), now, ZONE)


def test_at_80_columns_the_at_risk_queue_keeps_one_line_per_ticket() -> None:
    lines = printed(a_queue(), 80)
    assert max(len(line) for line in lines) <= 80
    rows = [line for line in lines if "api/MX-100" in line]
    assert len(rows) == 3  # one line each: nothing wrapped
    header = next(line for line in lines if line.startswith("┃"))
    for kept in ("next", "priority", "customer"):
        assert kept in header
    assert "first_response:warning:75" in rows[0]  # the next checkpoint whole
    assert "…" in "".join(rows)  # the subject shortened, not folded
    caption = " ".join(lines[-3:])
    assert "not shown at 80 columns:" in caption
    assert "assignee" in caption


def test_a_wide_terminal_shows_every_column_whole() -> None:
    lines = printed(a_queue(), 250)
    text = "\n".join(lines)
    assert SUBJECT in text
    assert "ana.garcia@example.com" in text
    assert "not shown" not in text


def test_a_wrapping_column_breaks_at_spaces_and_empty_columns_go_first() -> None:
    detail = "checkpoint_kind=warning state=fired fired_at=2026-03-02 15:22 route=desk"
    section = Section(
        "Timeline",
        ("at", "kind", "what", "nothing", "detail"),
        [("2026-03-02 15:22", "checkpoint", "first_response:warning:75", None, detail)],
        keep=("at", "what", "detail", "kind"),
        wraps=("detail",),
    )
    fitted = layout(section, 80)
    assert fitted.hidden == ("kind", "nothing")
    assert layout(section, 200).hidden == ()
    lines = printed([section], 80)
    words = " ".join(" ".join(line.split("│")[-2].split()) for line in lines if "│" in line)
    for word in detail.split():
        assert word in words.split(), word  # whole words, never cut inside


def test_the_columns_that_fit_are_all_kept_whole() -> None:
    section = Section("Small", ("a", "b"), [("one", "two")])
    assert layout(section, 80).widths == {0: 3, 1: 3}
