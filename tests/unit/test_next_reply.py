"""Next reply time (``next_reply: 2h``): every customer message waits for an answer.

The desk is open round the clock (UTC), so working time is wall time. P1: first response 1 h,
next reply 2 h, update every 4 h, resolution 8 h; warnings at 75 % and 15 minutes before. P2
has next reply 4 h and nothing else; P3 no next reply. The requester is user ``u-7``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from scheduler.clock import State
from scheduler.evaluate import evaluate
from scheduler.sla import Kind, TicketSla
from shared.events import Event
from shared.policy import Policy
from shared.policy_file import parse_policy
from tests.support import Ticket, event, message_facts
from worker.commands.render import simulation_table
from worker.commands.simulate import Simulation
from worker.notify.messages import render
from worker.notify.paging import page_stands
from worker.notify.routing import Fired, routes_for
from worker.report.compliance import compliance
from worker.report.outcomes import outcomes
from worker.report.tickets import Period, ReportTicket

DESK = """\
name: replies
calendars: {always: 24x7}
priorities: {P1: {}, P2: {}, P3: {}}
plans: {standard: {calendar: always}}
default_plan: standard
warn_at: [75]
warn_before: [15m]
commitments: {first_response: 95, next_reply: 90}
targets:
  - {priority: P1, first_response: 1h, next_reply: 2h, update_every: 4h, resolution: 8h}
  - {priority: P2, next_reply: 4h}
  - {priority: P3, first_response: 4h}
channels: {desk: {}, leads: {}}
routes:
  - {name: replies, when: {metrics: [next_reply], kinds: [breach]}, channels: [leads]}
  - {name: all, channels: [desk]}
"""
T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


@pytest.fixture(scope="module")
def desk() -> Policy:
    return parse_policy(DESK, "desk.yaml")


def at(hour: float) -> datetime:
    return T0 + timedelta(hours=hour - 9)


def ticket(priority: str = "P1") -> Ticket:
    return Ticket(at(9), priority=priority, requester_id="u-7")


def asked(t: Ticket, hour: float, **fields: Any) -> Ticket:
    """A message from the customer's side (the requester unless ``fields`` say otherwise)."""
    return t.add("customer_replied", at(hour), **{"author": "u-7", **fields})


def cycles(sla: TicketSla) -> dict[str, datetime]:
    """Every next-reply checkpoint by key."""
    return {c.key: c.due_at for c in sla.checkpoints if c.metric == "next_reply"}


# -- where a wait starts and ends ---------------------------------------------------------
def test_the_first_wait_runs_from_creation_to_the_first_reply(desk: Policy) -> None:
    """Opened 09:00, answered 10:00: the first next reply was due at 11:00 and is met."""
    sla = ticket().reply(at(10)).sla(desk, at(10.5))
    metric = sla.metrics["next_reply"]
    assert (metric.state, metric.due_at, metric.completed_at) == (State.MET, at(11), at(10))
    assert cycles(sla) == {}  # nothing was left to warn about


def test_a_wait_counts_from_the_first_unanswered_message(desk: Policy) -> None:
    """Answered 09:30; the customer writes at 10:00, 10:30 and 11:00: the reply is due 12:00,
    two hours after the first of them, and met at 11:45; a message at 13:00 starts cycle 3."""
    t = ticket().reply(at(9.5))
    for hour in (10, 10.5, 11):
        asked(t, hour)
    assert t.sla(desk, at(11.5)).metrics["next_reply"].due_at == at(12)
    assert cycles(t.sla(desk, at(11.5))) == {
        "next_reply#2:warning:75": at(11.5),
        "next_reply#2:warning:15m": at(11.75),
        "next_reply#2:breach": at(12),
    }
    t.reply(at(11.75))
    assert t.sla(desk, at(12)).metrics["next_reply"].state is State.MET
    asked(t, 13)
    assert t.sla(desk, at(13)).metrics["next_reply"].due_at == at(15)


def test_a_late_reply_keeps_its_breach_and_is_not_reminded(desk: Policy) -> None:
    """Waiting from 10:00, answered 12:30: the 12:00 breach stays on record. Left unanswered
    until 20:00, no reminder follows it either: update's clock reminds, a reply's clock has its
    warnings and its breach."""
    t = asked(ticket().reply(at(9.5)), 10).reply(at(12.5))
    sla = t.sla(desk, at(20))
    metric = sla.metrics["next_reply"]
    assert (metric.state, metric.breached_at) == (State.BREACHED, at(12))
    fired = {c.key: c.fired for c in sla.checkpoints if c.metric == "next_reply"}
    assert fired == {
        "next_reply#2:warning:75": True,
        "next_reply#2:warning:15m": True,
        "next_reply#2:breach": True,
    }
    unanswered = asked(ticket().reply(at(9.5)), 10).sla(desk, at(20))
    assert set(cycles(unanswered)) == set(fired)


def test_a_resolution_ends_the_wait(desk: Policy) -> None:
    """Waiting from 10:00, solved 10:30: met then; nobody waits on a solved ticket."""
    sla = asked(ticket().reply(at(9.5)), 10).add("resolved", at(10.5)).sla(desk, at(15))
    metric = sla.metrics["next_reply"]
    assert (metric.state, metric.completed_at) == (State.MET, at(10.5))


def test_a_message_on_a_solved_ticket_waits_from_the_reopening(desk: Policy) -> None:
    """Solved 10:30; the customer writes at 11:00 and the portal reopens at 12:00: the reply is
    due 14:00. Reopened in the same second as the message, as Zendesk does, it counts from the
    message. Never reopened, nobody waits."""
    solved = ticket().reply(at(9.5)).add("resolved", at(10.5))
    asked(solved, 11)
    assert solved.sla(desk, at(11.5)).metrics["next_reply"].state is State.MET
    solved.add("reopened", at(12))
    assert solved.sla(desk, at(12.5)).metrics["next_reply"].due_at == at(14)
    together = ticket().reply(at(9.5)).add("resolved", at(10.5))
    asked(together.add("reopened", at(11)), 11)
    assert together.sla(desk, at(11.5)).metrics["next_reply"].due_at == at(13)


def test_a_message_while_pending_waits_from_when_the_ticket_runs_again(desk: Policy) -> None:
    """Asked for details at 09:30 and set pending; the customer answers at 12:00 and the ticket
    is opened at 12:10: the reply is due at 14:10. Left pending, the clock waits with its two
    hours; a policy whose ``pause_when`` does not name next_reply runs it from 12:00."""
    t = ticket().reply(at(9.5)).status(at(9.5), "pending")
    asked(t, 12)
    held = t.sla(desk, at(12.1)).metrics["next_reply"]
    assert (held.state, held.remaining) == (State.PAUSED, timedelta(hours=2))
    t.status(at(12 + 1 / 6), "open")
    assert t.sla(desk, at(12.5)).metrics["next_reply"].due_at == at(14 + 1 / 6)
    own = parse_policy(DESK.replace("targets:", "pause_when: {update: [pending]}\ntargets:"), "p")
    assert t.sla(own, at(12.5)).metrics["next_reply"].due_at == at(14)


# -- who writes ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        ("customer_replied", {"author": "u-7", "author_role": "requester"}),
        ("customer_replied", {"author": "u-9", "author_role": "customer"}),  # a colleague in copy
        ("agent_replied", {"author": "u-7"}),  # the requester, called an agent by the portal
        ("agent_replied", {"author": "u-9", "author_role": "customer"}),
    ],
)
def test_anyone_on_the_customers_side_waits_for_a_reply(
    desk: Policy, kind: str, fields: dict[str, str]
) -> None:
    t = ticket().reply(at(9.5)).add(kind, at(10), **fields)
    assert t.sla(desk, at(10.5)).metrics["next_reply"].due_at == at(12)


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        ("customer_replied", {"automatic": True}),  # an out-of-office answer
        ("customer_replied", {"author_role": "system"}),
        ("agent_replied", {"public": False}),  # an internal note
        ("agent_replied", {"author_role": "system", "automatic": True}),
    ],
)
def test_automatic_messages_and_notes_neither_wait_nor_answer(
    desk: Policy, kind: str, fields: dict[str, Any]
) -> None:
    """Neither an automatic message nor an internal note moves the clock: the customer who
    wrote at 10:00 is still waiting after each."""
    t = asked(ticket().reply(at(9.5)), 10).add(kind, at(10.5), **fields)
    metric = t.sla(desk, at(11)).metrics["next_reply"]
    assert (metric.state, metric.due_at) == (State.RUNNING, at(12))
    quiet = ticket().reply(at(9.5)).add(kind, at(10), **fields)
    assert quiet.sla(desk, at(11)).metrics["next_reply"].state is State.MET


def test_the_requesters_own_reply_never_answers(desk: Policy) -> None:
    """The portal called the requester's comment an agent's reply: the first wait runs on."""
    t = ticket().add("agent_replied", at(9.5), author="u-7")
    assert t.sla(desk, at(10)).metrics["next_reply"].due_at == at(11)


# -- targets, priorities, escalation -------------------------------------------------------
def test_a_target_without_next_reply_has_none(desk: Policy) -> None:
    sla = asked(ticket("P3").reply(at(9.5)), 10).sla(desk, at(11))
    assert sla.metrics["next_reply"].state is State.NOT_APPLICABLE
    assert cycles(sla) == {}


def test_a_priority_change_re_times_the_same_checkpoints(desk: Policy) -> None:
    """P2 (4 h) waiting from 10:00 is due 14:00; raised to P1 (2 h) at 10:30, the same
    checkpoints move to 11:30, 11:45 and 12:00."""
    t = asked(ticket("P2").reply(at(9.5)), 10)
    before = cycles(t.sla(desk, at(10.25)))
    t.add("priority_changed", at(10.5), priority="P1")
    after = cycles(t.sla(desk, at(10.75)))
    assert before.keys() == after.keys()
    assert after["next_reply#2:breach"] == at(12)


def test_a_next_reply_breach_may_escalate() -> None:
    policy = parse_policy(
        DESK.replace(
            "resolution: 8h}", "resolution: 8h, escalations: [{tier: 2, on_breach: next_reply}]}"
        ),
        "e.yaml",
    )
    sla = asked(ticket().reply(at(9.5)), 10).sla(policy, at(10.5))
    assert {c.key: c.due_at for c in sla.checkpoints if c.kind is Kind.ESCALATION} == {
        "escalation:tier2:next_reply": at(12)
    }


# -- what people see ----------------------------------------------------------------------
def test_the_json_shows_the_metric_and_its_cycles(desk: Policy) -> None:
    shown = asked(ticket().reply(at(9.5)), 10).sla(desk, at(10.5)).to_json()
    assert shown["metrics"]["next_reply"] == {
        "state": "running",
        "target_seconds": 7200,
        "elapsed_seconds": 1800,
        "due_at": "2026-03-02T12:00:00+00:00",
        "completed_at": None,
        "breached_at": None,
    }
    assert "next_reply#2:breach" in {c["key"] for c in shown["checkpoints"]}


def test_the_simulate_table_has_a_next_reply_column(desk: Policy) -> None:
    result = Simulation(at(10.5), [asked(ticket().reply(at(9.5)), 10).sla(desk, at(10.5))], [])
    console = Console(width=250, record=True)
    simulation_table(result, console)
    shown = console.export_text()
    assert "Next reply" in shown
    assert "running → 12:00 (1h 30m)" in shown


@pytest.mark.parametrize(
    ("language", "kind", "left", "headline"),
    [
        ("en", "breach", None, "next reply breached"),
        ("es", "breach", None, "próxima respuesta incumplida"),
        ("en", "warning", timedelta(minutes=15), "15 minutes left on next reply"),
        ("es", "warning", timedelta(minutes=15), "quedan 15 minutos de próxima respuesta"),
    ],
)
def test_messages_name_it_in_the_policys_language(
    language: str, kind: str, left: timedelta | None, headline: str
) -> None:
    facts = message_facts(metric="next_reply", kind=kind, time_left=left)
    assert render(language, facts, at(9)).title == f"[P1] zendesk/4021: {headline}"


def test_routes_select_it_by_name(desk: Policy) -> None:
    breach = Fired("breach", "next_reply", None, "P1", "standard")
    assert [r.name for r in routes_for(desk, breach)] == ["replies", "all"]
    other = Fired("breach", "update", None, "P1", "standard")
    assert [r.name for r in routes_for(desk, other)] == ["all"]


def test_reports_count_it_against_its_commitment(desk: Policy) -> None:
    """One late reply breaks the promise for the ticket; compliance sets it against 90 %."""
    late = asked(ticket().reply(at(9.5)), 10).reply(at(12.5)).add("resolved", at(13))
    on_time = Ticket(at(9), ticket="T-2", priority="P1").reply(at(9.5)).add("resolved", at(10))
    slas = [t.sla(desk, at(14)) for t in (late, on_time)]
    assert [outcomes(desk, s)["next_reply"].value for s in slas] == ["breached", "met"]
    report = compliance(desk, [ReportTicket(s, None) for s in slas], Period(at(0), at(24), at(14)))
    (row,) = [r for r in report.rows if r.dimension == "all" and r.metric == "next_reply"]
    assert (row.met, row.breached, row.commitment, row.kept) == (1, 1, 90, False)


@pytest.mark.parametrize(
    ("key", "completed", "latest", "stands"),
    [
        ("next_reply#2:breach", None, 2, True),
        ("next_reply#2:breach", "12:30", 2, False),  # answered
        ("next_reply#2:breach", None, 3, False),  # answered, and the customer wrote again
    ],
)
def test_a_next_reply_page_stands_until_that_wait_is_answered(
    key: str, completed: str | None, latest: int, stands: bool
) -> None:
    sla = {"metrics": {"next_reply": {"completed_at": completed}}}
    assert (
        page_stands(
            "breach",
            key,
            None,
            status="open",
            sla=sla,
            latest_update=None,
            latest_next_reply=latest,
        )
        is stands
    )


# -- any order, any duplication: the same answer -----------------------------------------
_KINDS = st.sampled_from(
    [
        {"type": "agent_replied"},
        {"type": "agent_replied", "public": False},
        {"type": "agent_replied", "author": "u-7"},
        {"type": "agent_replied", "author_role": "customer"},
        {"type": "customer_replied", "author": "u-7"},
        {"type": "customer_replied", "author": "u-9", "author_role": "customer"},
        {"type": "customer_replied", "automatic": True},
        {"type": "status_changed", "status": "pending"},
        {"type": "status_changed", "status": "open"},
        {"type": "priority_changed", "priority": "P2"},
        {"type": "priority_changed", "priority": "P1"},
        {"type": "resolved"},
        {"type": "reopened"},
    ]
)


@st.composite
def conversations(draw: st.DrawFn) -> tuple[list[Event], list[Event], datetime]:
    """A ticket's conversation over two days, with repeats and same-instant events."""
    start = T0 + timedelta(minutes=draw(st.integers(0, 24 * 60)))
    priority = draw(st.sampled_from(["P1", "P2", "P3"]))
    events = [event("created", start, priority=priority, requester_id="u-7")]
    for fields in draw(st.lists(_KINDS, max_size=14)):
        offset = timedelta(minutes=draw(st.integers(0, 2 * 24 * 60)) // 30 * 30)
        extra = {k: v for k, v in fields.items() if k != "type"}
        events.append(event(fields["type"], start + offset, **extra))
    shuffled = draw(st.permutations(events))
    repeated = shuffled + draw(st.lists(st.sampled_from(events), max_size=5))
    now = start + timedelta(minutes=draw(st.integers(0, 3 * 24 * 60)))
    return events, repeated, now


@settings(max_examples=200, deadline=None)
@given(history=conversations())
def test_any_order_or_repetition_of_a_conversation_gives_the_same_waits(
    desk: Policy, history: tuple[list[Event], list[Event], datetime]
) -> None:
    """Shuffled and repeated webhooks: the same cycles, deadlines and checkpoints."""
    original, scrambled, now = history
    assert evaluate(desk, scrambled, now).to_json() == evaluate(desk, original, now).to_json()
