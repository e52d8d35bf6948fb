"""The suite's own checks can fail: the lives fire what they were designed to, and `judge`
reports a missing event, a lost checkpoint, a checkpoint fired without cause and a repeat."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.events import Event
from tests.chaos.expected import CHAIN_KEY, channels_for, must_fire
from tests.chaos.lives import LIVES, chaos_policy, generate
from tests.chaos.verify import (
    ACK_RACE,
    Stored,
    applied_times,
    excuse_resends,
    excuse_stalls,
    judge,
    sent_times,
)

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LATER = START + timedelta(hours=1)


@pytest.mark.parametrize(
    ("kind", "keys"),
    [
        ("quick", []),
        ("late_reply", ["first_response:breach", "first_response:warning:50"]),
        ("silent", ["escalation:tier2", "update#1:breach", "update#1:warning:50"]),
        ("paused", []),
        (
            "p2_breach",
            [
                "escalation:tier2:first_response",
                "first_response:breach",
                "first_response:warning:50",
            ],
        ),
        ("reopened", ["update#2:warning:50"]),
        ("chain_walks", ["escalation:tier2", "first_response:breach", "first_response:warning:50"]),
        ("chain_acked", ["escalation:tier2", "first_response:breach", "first_response:warning:50"]),
    ],
)
def test_each_life_fires_what_it_was_written_for(kind: str, keys: list[str]) -> None:
    events = [s.event for s in generate(1, 1, START, 0, prefix="t", kinds=(kind,))]
    assert sorted(key for _, key in must_fire(chaos_policy(), events, LATER)) == keys


def test_every_life_ends_with_nothing_left_to_fall_due() -> None:
    for kind in LIVES:
        schedule = generate(2, 3, START, 5, prefix="t", kinds=(kind,))
        last = max(s.at for s in schedule)
        events = [s.event for s in schedule]
        assert must_fire(chaos_policy(), events, last) == must_fire(
            chaos_policy(), events, last + timedelta(days=30)
        )


class FakeSink:
    def __init__(self, messages: list[dict[str, Any]]) -> None:
        self._messages = messages

    def messages(self) -> list[dict[str, Any]]:
        return self._messages


def _fired_warning(ticket: str, due_at: datetime, fired_at: datetime) -> dict[str, Any]:
    """A ticket's first-response warning as a checkpoint row the judge reads, fired."""
    return {
        "id": 1,
        "ticket": ticket,
        "key": "first_response:warning:50",
        "kind": "warning",
        "state": "fired",
        "due_at": due_at,
        "fired_at": fired_at,
    }


def _late_reply() -> tuple[list[dict[str, Any]], Stored, list[dict[str, Any]]]:
    """One late_reply ticket the system handled perfectly: two checkpoints, a message each, and
    the first of the chain its breach walks (the reply stops it), last."""
    return _life("late_reply")


def _life(kind: str, seed: int = 3) -> tuple[list[dict[str, Any]], Stored, list[dict[str, Any]]]:
    """One ticket of ``kind`` the system handled perfectly: its checkpoints fired, each one's
    message on `desk` (and `escalate`), then the first of the chain its P1 breach walks."""
    schedule = generate(seed, 1, START, 0, prefix="t", kinds=(kind,))
    events = [s.event for s in schedule]
    ticket = events[0]["ticket_id"]
    due = must_fire(chaos_policy(), events, LATER)
    checkpoints = {
        i: {
            "id": i,
            "ticket": ticket,
            "key": key,
            "kind": kind,
            "state": "fired",
            "due_at": at,
            "fired_at": at,
        }
        for i, ((_, key), (kind, at)) in enumerate(sorted(due.items()), start=1)
    }
    stored = Stored(
        events={ticket: [(s.at, Event.model_validate(s.event)) for s in schedule]},
        checkpoints=checkpoints,
        notifications=[],
    )
    messages = [
        _message(row["due_at"] + timedelta(seconds=1), f"{i}:{route}:{channel}:0", ticket)
        for i, row in checkpoints.items()
        for route, channel in channels_for(row["kind"])
    ]
    messages += [
        _message(row["due_at"] + timedelta(seconds=1), f"{i}:chain:lead:0", ticket)
        for i, row in checkpoints.items()
        if row["key"] == CHAIN_KEY
    ]
    return events, stored, messages


def _message(at: datetime, key: str, ticket: str) -> dict[str, Any]:
    return {"at": at, "key": key, "json": {"title": f"[P1] api/{ticket}: …"}}


def test_a_perfect_run_is_ok() -> None:
    events, stored, messages = _late_reply()
    verdict = judge(chaos_policy(), events, LATER, stored, [FakeSink(messages)])  # type: ignore[list-item]
    assert verdict.ok, verdict.explain()
    assert verdict.summary()["lateness_p99_s"] == 1.0


def test_judge_reports_each_kind_of_failure() -> None:
    events, stored, messages = _late_reply()
    stored.events[events[0]["ticket_id"]].pop()  # the resolution never reached the database
    del stored.checkpoints[2]  # the warning never fired
    verdict = judge(
        chaos_policy(), events, LATER, stored, [FakeSink(messages[:1] * 2 + messages[-1:])]
    )  # type: ignore[list-item]
    assert verdict.events_missing == [events[-1]["event_id"]]
    assert [key for _, key in verdict.checkpoints_lost] == ["first_response:warning:50"]
    assert [n[1] for n in verdict.notifications_lost] == ["first_response:warning:50"]
    assert verdict.duplicated == 1
    assert not verdict.ok


def test_a_dead_lettered_event_is_accounted_for_and_counted_apart() -> None:
    """An event the worker could not apply but kept as a dead letter is not lost; it is
    reported under `events_dead_lettered`. One in neither table is missing."""
    events, stored, messages = _late_reply()
    ticket = events[0]["ticket_id"]
    resolution = stored.events[ticket].pop()[1]
    stored.dead_letters = {resolution.event_id}
    verdict = judge(chaos_policy(), events, LATER, stored, [FakeSink(messages)])  # type: ignore[list-item]
    assert verdict.events_missing == []
    assert verdict.summary()["events_dead_lettered"] == 1
    stored.dead_letters = set()
    verdict = judge(chaos_policy(), events, LATER, stored, [FakeSink(messages)])  # type: ignore[list-item]
    assert verdict.events_missing == [resolution.event_id]


def test_a_checkpoint_fired_after_the_reply_arrived_is_without_cause() -> None:
    schedule = generate(4, 1, START, 0, prefix="t", kinds=("quick",))
    events = [s.event for s in schedule]
    ticket = events[0]["ticket_id"]
    warning_due = START + timedelta(seconds=12)
    fired = {
        "id": 1,
        "ticket": ticket,
        "key": "first_response:warning:50",
        "kind": "warning",
        "state": "fired",
    }
    received_early = Stored(
        {ticket: [(s.at, Event.model_validate(s.event)) for s in schedule]},
        {1: {**fired, "due_at": warning_due, "fired_at": warning_due + timedelta(seconds=1)}},
        [],
    )
    assert judge(chaos_policy(), events, LATER, received_early, []).fired_unjustified == [
        (ticket, "first_response:warning:50")
    ]
    # the reply stored only after the warning was due: firing it was right at the time
    received_late = Stored(
        {
            ticket: [
                (s.at + timedelta(seconds=30 * (i > 0)), Event.model_validate(s.event))
                for i, s in enumerate(schedule)
            ]
        },
        received_early.checkpoints,
        [],
    )
    verdict = judge(chaos_policy(), events, LATER, received_late, [])
    assert verdict.fired_unjustified == [] and verdict.fired_early_justified == 1


def test_only_a_repeat_right_before_a_worker_kill_is_excused() -> None:
    events, stored, messages = _late_reply()
    verdict = judge(chaos_policy(), events, LATER, stored, [FakeSink([*messages, messages[0]])])  # type: ignore[list-item]
    first = messages[0]["at"]
    excuse_resends(verdict, [first + timedelta(seconds=30)])
    assert not verdict.ok
    excuse_resends(verdict, [first + timedelta(seconds=0.5)])
    assert verdict.ok


def test_a_firing_is_judged_by_what_had_been_committed_as_the_worker_logged_it(
    tmp_path: Path,
) -> None:
    """A batch stamps its events' ``received_at`` when it begins and commits later: the
    worker's ``event_applied`` line (written after the commit) says when the reply counted."""
    schedule = generate(4, 1, START, 0, prefix="t", kinds=("quick",))
    events = [s.event for s in schedule]
    ticket, reply, resolution = events[0]["ticket_id"], events[1]["event_id"], events[2]["event_id"]
    warning_due = START + timedelta(seconds=12)
    fired_at = warning_due + timedelta(seconds=5)
    logged = fired_at + timedelta(seconds=0.3)  # the reply's batch committed after the firing
    lines = [
        json.dumps(
            {
                "event": "event_applied",
                "event_id": event_id,
                "timestamp": logged.isoformat().replace("+00:00", "Z"),
            }
        )
        for event_id in (reply, resolution)
    ] + [
        '{"event": "event_applied", "event_id": "x", "time',  # cut short by a kill
    ]
    (tmp_path / "worker.log").write_text("\n".join(lines) + "\n")
    stored = Stored(
        {ticket: [(s.at, Event.model_validate(s.event)) for s in schedule]},
        {1: _fired_warning(ticket, warning_due, fired_at)},
        [],
        applied_times(tmp_path),
    )
    assert stored.applied_at == {reply: logged, resolution: logged}
    verdict = judge(chaos_policy(), events, LATER, stored, [])
    assert verdict.fired_unjustified == [] and verdict.fired_early_justified == 1
    stored.applied_at[reply] = fired_at - timedelta(seconds=0.3)  # committed before: no cause
    verdict = judge(chaos_policy(), events, LATER, stored, [])
    assert verdict.fired_unjustified == [(ticket, "first_response:warning:50")]


def test_a_firing_right_after_an_unlogged_created_event_is_justified() -> None:
    """The worker was killed between the commit and the log line of the batch that created
    the ticket: the firing that followed at once still counts as due."""
    schedule = generate(4, 1, START, 0, prefix="t", kinds=("quick",))
    events = [s.event for s in schedule]
    ticket = events[0]["ticket_id"]
    warning_due = START + timedelta(seconds=12)
    fired_at = warning_due + timedelta(seconds=60)  # the system was a minute behind
    created = Event.model_validate(events[0])
    stored = Stored(
        {ticket: [(fired_at - timedelta(seconds=0.5), created)]},  # the rest came later
        {1: _fired_warning(ticket, warning_due, fired_at)},
        [],
    )
    verdict = judge(chaos_policy(), events, LATER, stored, [])
    assert verdict.fired_unjustified == [] and verdict.fired_early_justified == 1


def test_a_firing_between_a_reopening_and_the_reply_after_it_is_justified() -> None:
    """Found by a full kill -9 trial a couple of minutes behind: the reopening's batch had
    committed (its log line came just after the firing), the reply after it had not. Neither
    the events certainly committed (the ticket still resolved) nor all those received (the
    update answered) make the reopened update's breach due; the set between them does."""
    schedule = generate(3, 1, START, 0, prefix="t", kinds=("reopened",))
    events = [s.event for s in schedule]
    ticket = events[0]["ticket_id"]
    assert [e["type"] for e in events][3:5] == ["reopened", "agent_replied"]
    fired_at = START + timedelta(seconds=34)  # the update owed since the reopening, breached
    logged = {s.event["event_id"]: s.at + timedelta(seconds=0.1) for s in schedule}
    logged[events[3]["event_id"]] = fired_at + timedelta(seconds=0.2)
    logged[events[4]["event_id"]] = logged[events[5]["event_id"]] = fired_at + timedelta(seconds=9)
    row = {**_fired_warning(ticket, fired_at, fired_at), "key": "update#2:breach", "kind": "breach"}
    stored = Stored(
        {ticket: [(s.at, Event.model_validate(s.event)) for s in schedule]}, {1: row}, [], logged
    )
    verdict = judge(chaos_policy(), events, LATER, stored, [])
    assert verdict.fired_unjustified == [] and verdict.fired_early_justified == 1
    logged[events[4]["event_id"]] = fired_at - timedelta(seconds=5)  # the reply had committed
    verdict = judge(chaos_policy(), events, LATER, stored, [])
    assert verdict.fired_unjustified == [(ticket, "update#2:breach")]


def test_a_repeat_is_excused_if_the_worker_died_before_the_send_was_committed() -> None:
    """A digest batch sends for seconds and commits at the end: a worker killed 5 s after the
    first copy, before the worker logged the send, explains the repeat; one killed after the
    send was recorded does not."""
    events, stored, messages = _late_reply()
    verdict = judge(chaos_policy(), events, LATER, stored, [FakeSink([*messages, messages[0]])])  # type: ignore[list-item]
    ((item, first, _later),) = verdict.duplicates
    verdict.recorded_at[item] = first + timedelta(seconds=8)
    excuse_resends(verdict, [first + timedelta(seconds=5)])
    assert verdict.ok
    excuse_resends(verdict, [first + timedelta(seconds=9)])
    assert not verdict.ok


def test_a_copy_the_sink_read_just_after_the_kill_was_sent_before_it() -> None:
    """Seen in a full-size trial: the sink stamped the first copy 1 ms after the monkey noted
    the kill. The killed worker had sent it; no other worker ran yet."""
    events, stored, messages = _late_reply()
    verdict = judge(chaos_policy(), events, LATER, stored, [FakeSink([*messages, messages[0]])])  # type: ignore[list-item]
    ((item, first, _later),) = verdict.duplicates
    verdict.recorded_at[item] = first + timedelta(seconds=11)
    excuse_resends(verdict, [first - timedelta(milliseconds=1)])
    assert verdict.ok
    excuse_resends(verdict, [first - timedelta(seconds=1)])  # sent after that worker was gone
    assert not verdict.ok


def test_a_digest_line_tells_when_each_notification_in_it_was_sent(tmp_path: Path) -> None:
    """A storm's notifications are logged as one ``digest_delivery`` line naming them all: the
    judge reads each one's commit time from it, as from a single ``notification_delivery``."""
    logged = START + timedelta(minutes=2)

    def line(**fields: object) -> str:
        return json.dumps({**fields, "timestamp": logged.isoformat().replace("+00:00", "Z")})

    lines = [
        line(event="digest_delivery", notification_ids=[7, 8, 9], outcome="sent"),
        line(event="notification_delivery", notification_id=10, outcome="sent"),
        line(event="digest_delivery", notification_ids=[11, 12], outcome="retry"),  # not sent
    ]
    (tmp_path / "worker.log").write_text("\n".join(lines) + "\n")
    assert sent_times(tmp_path) == {7: logged, 8: logged, 9: logged, 10: logged}


def test_a_warning_fired_late_with_its_breach_owes_no_page_but_one_fired_on_time_does() -> None:
    """The worker fell behind: the warning fired only once the breach was due too, so under
    ``catch_up: latest`` the breach paged alone; paging the warning as well is no fault either
    (the worker may not have stored the events that made the breach due). A warning fired on
    time still owes its page."""
    events, stored, messages = _late_reply()
    breach = next(r for r in stored.checkpoints.values() if r["kind"] == "breach")
    warning = next(r for r in stored.checkpoints.values() if r["kind"] == "warning")
    breach_only = [m for m in messages if m["key"].startswith(f"{breach['id']}:")]

    warning["fired_at"] = breach["due_at"] + timedelta(seconds=1)
    verdict = judge(chaos_policy(), events, LATER, stored, [FakeSink(breach_only)])  # type: ignore[list-item]
    assert verdict.ok, verdict.explain()
    assert verdict.caught_up == [(warning["ticket"], warning["key"])]
    assert judge(chaos_policy(), events, LATER, stored, [FakeSink(messages)]).ok  # type: ignore[list-item]

    warning["fired_at"] = warning["due_at"]
    verdict = judge(chaos_policy(), events, LATER, stored, [FakeSink(breach_only)])  # type: ignore[list-item]
    assert [n[1] for n in verdict.notifications_lost] == ["first_response:warning:50"]
    assert not verdict.ok


# -- escalation chains ------------------------------------------------------------------------


def _chain(kind: str) -> tuple[list[dict[str, Any]], Stored, list[dict[str, Any]], int, datetime]:
    """A chain life handled perfectly up to the chain's first message: with its checkpoint id
    and the instant that message arrived."""
    events, stored, messages = _life(kind)
    cid = next(i for i, row in stored.checkpoints.items() if row["key"] == CHAIN_KEY)
    return events, stored, messages, cid, messages[-1]["at"]


def _judged(events: list[dict[str, Any]], stored: Stored, messages: list[dict[str, Any]]) -> Any:
    return judge(chaos_policy(), events, LATER, stored, [FakeSink(messages)])  # type: ignore[list-item]


def test_a_chain_walked_to_its_end_is_ok_and_one_that_stalls_is_not() -> None:
    """Lead, phone 6 s later, phone again 6 s after that: all owed, since nobody answers for a
    minute. Stopping after the lead (its successor never armed) is a missing step."""
    events, stored, messages, cid, lead = _chain("chain_walks")
    ticket = stored.checkpoints[cid]["ticket"]
    walked = [
        _message(lead + timedelta(seconds=6.5), f"{cid}:chain:phone:1", ticket),
        _message(lead + timedelta(seconds=13), f"{cid}:chain:phone:2", ticket),
    ]
    verdict = _judged(events, stored, messages + walked)
    assert verdict.ok, verdict.explain()
    assert (verdict.chain_pages, verdict.chain_messages) == (1, 3)

    stalled = _judged(events, stored, messages)
    assert [item[3:] for item, _since, _due in stalled.chain_missing] == [("phone", "1")]
    assert not stalled.ok


def test_a_chain_step_skipped_or_sent_after_the_acknowledgement_fails_the_run() -> None:
    events, stored, messages, cid, lead = _chain("chain_acked")
    ticket = stored.checkpoints[cid]["ticket"]
    phone_1 = _message(lead + timedelta(seconds=6.5), f"{cid}:chain:phone:1", ticket)
    phone_2 = _message(lead + timedelta(seconds=13), f"{cid}:chain:phone:2", ticket)
    stored.acks[(cid, "chain")] = phone_1["at"] + timedelta(seconds=0.5)  # the acker pressed
    notice = _message(
        phone_1["at"] + timedelta(seconds=1), f"{cid}:chain:lead:acknowledged", ticket
    )
    acknowledged = _judged(events, stored, [*messages, phone_1, notice])
    assert acknowledged.ok and acknowledged.chain_acknowledged == 1, acknowledged.explain()

    after_ack = _judged(events, stored, [*messages, phone_1, phone_2])
    assert [item[3:] for item in after_ack.chain_after_ack] == [("phone", "2")]
    assert not after_ack.ok

    skipped = _judged(events, stored, [*messages, phone_2])
    assert [item[3:] for item in skipped.chain_skipped] == [("phone", "2")]
    assert not skipped.ok


def test_an_acknowledgement_that_stops_a_chain_owes_each_told_channel_one_notice() -> None:
    """The acker presses after the phone's first ring: the lead and the phone are each owed
    one notice of who acknowledged; a missing one fails the run, and so does a notice for a
    chain nobody acknowledged."""
    events, stored, messages, cid, lead = _chain("chain_acked")
    ticket = stored.checkpoints[cid]["ticket"]
    phone_1 = _message(lead + timedelta(seconds=6.5), f"{cid}:chain:phone:1", ticket)
    pressed = phone_1["at"] + ACK_RACE + timedelta(seconds=1)
    stored.acks[(cid, "chain")] = pressed
    notices = [
        _message(pressed + timedelta(seconds=0.5), f"{cid}:chain:{channel}:acknowledged", ticket)
        for channel in ("lead", "phone")
    ]
    told = _judged(events, stored, [*messages, phone_1, *notices])
    assert told.ok and told.chain_notices == 2, told.explain()

    one_missing = _judged(events, stored, [*messages, phone_1, notices[0]])
    assert [item[3:] for item in one_missing.chain_notices_missing] == [("phone", "acknowledged")]
    assert not one_missing.ok

    del stored.acks[(cid, "chain")]
    walked = [
        *messages,
        phone_1,
        _message(lead + timedelta(seconds=13), f"{cid}:chain:phone:2", ticket),
    ]
    unowed = _judged(events, stored, [*walked, *notices])
    assert len(unowed.chain_notices_unowed) == 2
    assert not unowed.ok


def test_a_missing_chain_step_is_excused_only_by_a_kill_while_it_was_due() -> None:
    """A worker killed between the lead's send and arming the phone: reconcile re-arms it
    within a minute, after the reply here. A kill long before explains nothing."""
    events, stored, messages, _cid, lead = _chain("chain_walks")
    verdict = _judged(events, stored, messages)
    excuse_stalls(verdict, [lead - timedelta(seconds=30)])
    assert not verdict.ok
    excuse_stalls(verdict, [lead + timedelta(seconds=0.1)])
    assert verdict.ok, verdict.explain()
