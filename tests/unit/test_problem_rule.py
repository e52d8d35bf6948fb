"""Recurring incidents, pure: problem keys of a ticket, runs counted from their first ticket."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from scheduler.context import TicketContext
from shared.policy_problems import ProblemKey
from worker.notify.problem_rule import (
    NOTICE,
    SOLVED,
    Occurrence,
    Told,
    keys_of,
    recurring,
    reporters,
    runs,
)

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = timedelta(hours=24)


def _at(hours: float, name: str = "", customer: str | None = None) -> Occurrence:
    return Occurrence(name or f"api/T-{hours}", START + timedelta(hours=hours), customer)


def test_keys_are_the_tags_with_the_prefix_or_the_named_field() -> None:
    context = TicketContext(tags=("vpn", "problem_vpn", "problem_", "problem_mail"), group="Redes")
    assert keys_of(ProblemKey(tag_prefix="problem_"), context) == ["problem_mail", "problem_vpn"]
    assert keys_of(ProblemKey(field="group"), context) == ["Redes"]
    assert keys_of(ProblemKey(field="channel"), context) == []


def test_a_key_is_one_of_a_prefix_or_a_field() -> None:
    with pytest.raises(ValidationError):
        ProblemKey(tag_prefix="problem_", field="group")
    with pytest.raises(ValidationError):
        ProblemKey()


def test_a_window_counts_from_the_first_ticket_of_its_run() -> None:
    """Tickets at 0h, 5h, 23h share the first run; 25h opens the next (not 24h after 5h)."""
    found = runs([_at(25), _at(0), _at(23), _at(5), _at(30)], DAY)
    assert [(r.start, len(r.tickets)) for r in found] == [
        (START, 3),
        (START + timedelta(hours=25), 2),
    ]


def test_only_runs_reaching_the_threshold_are_told() -> None:
    told = recurring([_at(0), _at(1), _at(2), _at(3), _at(30), _at(31)], DAY, 3)
    assert [len(r.tickets) for r in told] == [4]


def test_reporters_are_each_customer_once_by_name() -> None:
    assert reporters([_at(0, "a", "zeta"), _at(1, "b", "acme"), _at(2, "c", "acme"), _at(3)]) == [
        "acme",
        "zeta",
    ]


def test_a_checkpoint_key_says_its_run_and_reads_back() -> None:
    told = Told(NOTICE, "tags", "problem_vpn", START, DAY)
    assert told.key == f"problem:tags:problem_vpn@{int(START.timestamp())}/86400"
    assert Told.parse(told.key) == told
    solved = Told(SOLVED, "subject", "VPN: down")
    assert Told.parse(solved.key) == solved
