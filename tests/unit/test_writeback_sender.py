"""The write-back channel's sender: ``portal://`` targets become notes, the others go on."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from shared.integrations import parse_integrations
from tests.support import message_facts
from worker.notify.messages import Message, render
from worker.notify.writeback import WritebackSender, note_for

NOW = datetime(2026, 3, 2, 15, 31, tzinfo=UTC)


class Recorder:
    """An inner sender that records what reached it, and fails nothing."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    def send(self, urls: Sequence[str], message: Message, dedupe_key: str) -> list[str | None]:
        self.urls += urls
        return [None for _ in urls]


def test_a_breach_note_holds_the_message_and_its_key_and_adds_the_breach_tag() -> None:
    message = render("en", message_facts(), NOW)
    note = note_for(message, message_facts(), None)
    assert note.ticket_id == "4021"
    assert note.text.startswith("[P1] zendesk/4021: first response breached\n\n")
    assert "Notification: cp-17:p1-page:0" in note.text
    assert note.key == "cp-17:p1-page:0"
    assert note.tags == ("sla_breached",)


def test_an_escalation_adds_its_tier_to_the_tag_and_a_warning_adds_none() -> None:
    escalation = message_facts(kind="escalation", metric="escalation", tier=2)
    assert note_for(render("en", escalation, NOW), escalation, None).tags == ("escalated_tier2",)
    warning = message_facts(kind="warning", percent=75)
    assert note_for(render("en", warning, NOW), warning, None).tags == ()


def test_a_desk_names_its_own_tags_or_none() -> None:
    section = parse_integrations("jira: {breach_tag: null, escalation_tag: 'l{tier}-needed'}").jira
    breach, escalation = (
        message_facts(source="jira"),
        message_facts(source="jira", kind="escalation", tier=3),
    )
    assert note_for(render("en", breach, NOW), breach, section).tags == ()
    assert note_for(render("en", escalation, NOW), escalation, section).tags == ("l3-needed",)


def test_other_targets_go_to_the_inner_sender_and_results_keep_their_order() -> None:
    """A channel with a Slack URL and the write-back: Slack through Apprise, the note not
    written (this source has no portal), each result in its URL's place."""
    inner = Recorder()
    sender = WritebackSender(inner, parse_integrations(""), {})
    message = render("en", message_facts(source="api"), NOW)
    results = sender.send(["slack://a/b/c", "portal://", "json://127.0.0.1/x"], message, "k")
    assert inner.urls == ["slack://a/b/c", "json://127.0.0.1/x"]
    assert results[0] is None and results[2] is None
    assert results[1] is not None and "tickets from api have no portal" in results[1]


def test_a_digest_is_refused_by_the_write_back() -> None:
    sender = WritebackSender(Recorder(), parse_integrations(""), {})
    (error,) = sender.send(["portal://"], Message("Storm", "…"), "digest:desk:1:3")
    assert error is not None and "digest" in error


def test_a_portal_without_settings_is_named_with_what_to_set() -> None:
    sender = WritebackSender(Recorder(), parse_integrations(""), {})
    (error,) = sender.send(["portal://"], render("en", message_facts(), NOW), "k")
    assert error is not None and "base_url" in error and "zendesk" in error
