"""A ticket's timeline (pure) and the report renderers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.support import Ticket, preset
from worker.report.render import Section, span, to_csv
from worker.report.timeline import StoredCheckpoint, StoredNotification, ticket_timeline

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def test_timeline_orders_events_pauses_checkpoints_and_deliveries() -> None:
    """Within an instant: the event, the pause it causes, the checkpoint, its notification."""
    policy = preset("soporte-completo")
    ticket = Ticket(T0, priority="P1", customer="acme")
    ticket.status(T0 + timedelta(minutes=5), "on_hold").status(T0 + timedelta(minutes=20), "open")
    ticket.add("resolved", T0 + timedelta(minutes=50)).add("reopened", T0 + timedelta(hours=1))
    due = T0 + timedelta(minutes=45)
    checkpoint = StoredCheckpoint(7, "first_response:breach", "breach", due, "fired", due)
    dead = StoredNotification(7, "desk", "phone", 0, "dead", 5, due, None, None, "json: failed")
    entries = ticket_timeline(policy, ticket.events, [checkpoint], [dead], T0 + timedelta(hours=2))
    assert [(e.at - T0, e.kind, e.what) for e in entries] == [
        (timedelta(0), "event", "created"),
        (timedelta(minutes=5), "event", "status_changed"),
        (timedelta(minutes=5), "pause", "on_hold"),
        (timedelta(minutes=20), "event", "status_changed"),
        (timedelta(minutes=20), "resume", "open"),
        (timedelta(minutes=45), "checkpoint", "first_response:breach"),
        (timedelta(minutes=45), "notification", "desk → phone"),
        (timedelta(minutes=50), "event", "resolved"),
        (timedelta(hours=1), "event", "reopened"),
    ]
    assert entries[6].detail["status"] == "dead" and entries[6].detail["error"] == "json: failed"


def test_events_after_the_report_instant_are_left_out() -> None:
    policy = preset("soporte-completo")
    ticket = Ticket(T0, priority="P1").reply(T0 + timedelta(hours=3))
    entries = ticket_timeline(policy, ticket.events, [], [], T0 + timedelta(hours=1))
    assert [e.what for e in entries] == ["created"]


def test_csv_quotes_what_needs_it_and_spans_read_like_a_clock() -> None:
    section = Section("t", ("ticket", "note"), [("api/1", 'says "hi", twice'), ("api/2", None)])
    assert to_csv(section) == 'ticket,note\napi/1,"says ""hi"", twice"\napi/2,\n'
    assert span(timedelta(days=2, hours=3, minutes=5)) == "2d 3h 05m"
    assert span(-timedelta(minutes=90)) == "-1h 30m"


def test_an_acknowledged_page_says_who_and_when_once_per_route() -> None:
    """Two notifications of one route (the page and its repeat), acknowledged by Ana: each says
    who, and one entry at the acknowledgement's instant says who and how."""
    policy = preset("soporte-completo")
    ticket = Ticket(T0, priority="P1")
    due, acked = T0 + timedelta(minutes=30), T0 + timedelta(minutes=40)
    checkpoint = StoredCheckpoint(7, "first_response:breach", "breach", due, "fired", due)
    page = StoredNotification(
        7, "page", "phone", 0, "sent", 1, due, due, acked, None, "Ana Pérez", "link"
    )
    again = StoredNotification(
        7, "page", "phone", 1, "sent", 1, acked, acked, acked, None, "Ana Pérez", "link"
    )
    entries = ticket_timeline(
        policy, ticket.events, [checkpoint], [page, again], T0 + timedelta(hours=1)
    )
    acks = [e for e in entries if e.kind == "acknowledgement"]
    assert [(e.at, e.what, e.detail["by"], e.detail["via"]) for e in acks] == [
        (acked, "page", "Ana Pérez", "link")
    ]
    assert acks[0].detail["checkpoint"] == "first_response:breach"
    notes = [e for e in entries if e.kind == "notification"]
    assert [e.detail["acknowledged_by"] for e in notes] == ["Ana Pérez", "Ana Pérez"]


def test_a_checkpoint_that_paged_nobody_says_why() -> None:
    """A ticket that arrived late: its warning was caught up by the breach; a breach older than
    the policy's max_catch_up; a checkpoint that paged says nothing of the kind."""
    policy = preset("soporte-completo")
    ticket = Ticket(T0, priority="P1")
    late = T0 + timedelta(hours=4)
    checkpoints = [
        StoredCheckpoint(
            1, "first_response:warning:90", "warning", T0 + timedelta(minutes=27), "fired", late,
            "caught_up", "first_response:breach",
        ),
        StoredCheckpoint(
            2, "first_response:breach", "breach", T0 + timedelta(minutes=30), "fired", late,
            "too_old",
        ),
        StoredCheckpoint(3, "escalation:tier2", "escalation", late, "fired", late),
    ]  # fmt: skip
    entries = ticket_timeline(policy, ticket.events, checkpoints, [], late)
    said = {e.what: e.detail.get("not_paged") for e in entries if e.kind == "checkpoint"}
    assert said == {
        "first_response:warning:90": "caught up by first_response:breach",
        "first_response:breach": "older than max_catch_up",
        "escalation:tier2": None,
    }
