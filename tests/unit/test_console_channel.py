"""The ``console://`` channel: an Apprise URL like any other, printed to the terminal it is given."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime

import pytest

from worker.notify.console import CONSOLE_FD_ENV, console_text
from worker.notify.messages import Message
from worker.notify.transport import AppriseSender


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """A pipe standing in for the terminal ``escalera up`` hands the worker."""
    read, write = os.pipe()
    monkeypatch.setenv(CONSOLE_FD_ENV, str(write))
    yield read
    os.close(read)
    os.close(write)


def test_a_notification_reaches_the_terminal_through_apprise(terminal: int) -> None:
    message = Message(
        "[P1] api/T-1: primera respuesta incumplida", "Ticket: api/T-1\nCliente: acme"
    )
    errors = AppriseSender().send(["console://oncall_phone"], message, "7:page:oncall_phone:0")
    assert errors == [None]
    printed = os.read(terminal, 4096).decode()
    lines = printed.splitlines()
    assert lines[0].endswith("  >> oncall_phone: [P1] api/T-1: primera respuesta incumplida")
    assert lines[1:] == ["           Ticket: api/T-1", "           Cliente: acme"]


def test_a_closed_terminal_is_a_failed_delivery(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retried like any channel that cannot be reached, not lost silently."""
    read, write = os.pipe()
    os.close(read)  # nobody reads: the write fails with a broken pipe
    monkeypatch.setenv(CONSOLE_FD_ENV, str(write))
    try:
        errors = AppriseSender().send(["console://desk"], Message("t", "b"), "k")
    finally:
        os.close(write)
    assert errors[0] is not None and errors[0].startswith("console:")


def test_console_text_puts_time_channel_and_title_first() -> None:
    at = datetime(2026, 3, 2, 9, 5, 7).astimezone()
    assert console_text("desk", "title", "a\nb", at) == (
        "09:05:07  >> desk: title\n           a\n           b\n"
    )
    assert console_text("", "title", "", at) == "09:05:07  >> title\n"
