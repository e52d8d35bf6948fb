"""Which notifications go out alone and which as digests; the digest's words. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from worker.notify.messages import MessageFacts, render_digest
from worker.notify.storm import Pending, StormSettings, plan_sends

NOW = datetime(2026, 3, 2, 15, 31, tzinfo=UTC)


def pending(n: int, channel: str = "oncall", targets: tuple[int, ...] = (0,)) -> list[Pending]:
    return [Pending(i, channel, "en", targets) for i in range(1, n + 1)]


def test_under_the_threshold_each_notification_is_its_own_message() -> None:
    sends = plan_sends(pending(9), StormSettings(threshold=10))
    assert [send.ids for send in sends] == [(i,) for i in range(1, 10)]
    assert not any(send.digest for send in sends)


def test_at_the_threshold_a_channel_gets_digests_of_at_most_digest_max() -> None:
    sends = plan_sends(pending(450), StormSettings(threshold=10, digest_max=200))
    assert [len(send.ids) for send in sends] == [200, 200, 50]
    assert sorted(i for send in sends for i in send.ids) == list(range(1, 451))


def test_a_storm_on_one_channel_does_not_coalesce_a_quiet_one() -> None:
    sends = plan_sends([*pending(12), Pending(99, "email", "en", (0,))], StormSettings(5, 200))
    assert sorted((send.channel, len(send.ids)) for send in sends) == [("email", 1), ("oncall", 12)]


def test_notifications_needing_different_targets_never_share_a_digest() -> None:
    """A retry that still needs target 1 only is not sent to target 0 again with the others."""
    sends = plan_sends([*pending(6), Pending(7, "oncall", "en", (1,))], StormSettings(5))
    assert sorted((send.targets, len(send.ids)) for send in sends) == [((0,), 6), ((1,), 1)]


def test_threshold_zero_turns_coalescing_off() -> None:
    assert all(not s.digest for s in plan_sends(pending(50), StormSettings(threshold=0)))


def test_settings_come_from_the_environment_and_a_bad_value_names_the_variable() -> None:
    environ = {"ESCALERA_STORM_THRESHOLD": "25", "ESCALERA_STORM_DIGEST_MAX": "50"}
    assert StormSettings.from_environ(environ) == StormSettings(25, 50)
    assert StormSettings.from_environ({}) == StormSettings(10, 200)
    with pytest.raises(ValueError, match="ESCALERA_STORM_DIGEST_MAX='1': write a whole number"):
        StormSettings.from_environ({"ESCALERA_STORM_DIGEST_MAX": "1"})


def test_a_digest_counts_by_priority_and_lists_each_key() -> None:
    def facts(ticket: str, priority: str) -> MessageFacts:
        return MessageFacts(
            ticket_id=ticket,
            source="zendesk",
            customer=None,
            priority=priority,
            plan="pro",
            kind="breach",
            metric="first_response",
            percent=None,
            tier=None,
            due_at=NOW - timedelta(minutes=1),
            tz=ZoneInfo("Europe/Madrid"),
            link=None,
            dedupe_key=f"{ticket}:page:oncall:0",
            ack_link=f"https://e.example/ack/{ticket}",
        )

    message = render_digest("en", [facts("1", "P1"), facts("2", "P2"), facts("3", "P1")], NOW)
    assert message.title == "Storm: 3 SLA alerts at once (P1 ×2, P2 ×1)"
    lines = message.body.splitlines()
    assert lines[2] == (
        "- [P1] zendesk/1: first response breached · Deadline: 2026-03-02 16:30 CET (1m overdue)"
        " · Notification: 1:page:oncall:0"
    )
    assert lines[3] == "  Acknowledge: https://e.example/ack/1"
    assert sum("Notification: " in line for line in lines) == 3


def test_a_note_written_back_to_its_ticket_is_never_part_of_a_digest() -> None:
    """A storm on a channel with a write-back target: each ticket still gets its own note,
    while the same channel's other notifications are coalesced as usual."""
    notes = [Pending(i, "desk", "es", (0,), alone=True) for i in range(1, 6)]
    pages = [Pending(i, "desk", "es", (0,)) for i in range(6, 11)]
    sends = plan_sends(notes + pages, StormSettings(threshold=3, digest_max=100))
    assert sorted(send.ids for send in sends if not send.digest) == [(i,) for i in range(1, 6)]
    assert [send.ids for send in sends if send.digest] == [(6, 7, 8, 9, 10)]
