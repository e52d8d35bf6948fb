"""What each Apprise send carries: its own dedupe key, no wait for the send before it, no secret
in a log line, and a URL Apprise cannot read named by its scheme every time it is tried."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from types import SimpleNamespace

import apprise.url
import pytest

from tests.integration.sinks import JsonSink, SmtpSink
from worker.notify.messages import Message
from worker.notify.transport import DEDUPE_HEADER, AppriseSender, send_all, send_one


@pytest.fixture
def webhook() -> Iterator[JsonSink]:
    sink = JsonSink()
    yield sink
    sink.close()


@pytest.fixture
def mailbox() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    yield sink
    sink.close()


def test_concurrent_sends_to_one_webhook_each_carry_their_own_dedupe_key(
    webhook: JsonSink,
) -> None:
    """The receiving end drops repeats by the header: another page's key would drop this one."""
    sender = AppriseSender()
    keys = [f"{n}:page:oncall:0" for n in range(40)]
    results = send_all(lambda key: send_one(sender, webhook.url(), Message(key, "b"), key), keys)
    assert results == [None] * len(keys)
    received = {(r["json"]["title"], r["headers"][DEDUPE_HEADER]) for r in webhook.received}
    assert received == {(key, key) for key in keys}


def test_a_url_apprise_cannot_read_is_reported_by_its_scheme_each_time() -> None:
    sender = AppriseSender()
    for _ in range(2):  # the second time from what was remembered of the first
        assert sender.send(["nope://secret@host/path"], Message("t", "b"), "k") == [
            "not an Apprise URL (nope://…)"
        ]


def test_a_url_its_plugin_refuses_reports_itself_without_its_password_in_a_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    # parsed, then refused by the e-mail plugin: user@h is no address to send from
    errors = AppriseSender().send(["mailto://user:hunter2@h"], Message("t", "b"), "k")
    assert errors == ["not an Apprise URL (mailto://…)"]
    assert not [r for r in caplog.records if "hunter2" in r.getMessage()]


def test_a_page_to_a_mailbox_does_not_wait_for_the_one_sent_before_it(
    mailbox: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Apprise paces a plugin instance to its service's rate (5.5 s apart for e-mail)."""
    slept: list[float] = []
    monkeypatch.setattr(apprise.url, "time", SimpleNamespace(sleep=slept.append))
    sender = AppriseSender()
    for n in range(2):
        assert sender.send([mailbox.url()], Message(f"page {n}", "b"), f"{n}:page:oncall:0") == [
            None
        ]
    assert [m["Subject"] for m in mailbox.messages] == ["page 0", "page 1"]
    assert slept == []
