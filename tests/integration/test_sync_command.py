"""`escalera sync` end to end: a day of changes, half of them already delivered by webhooks.

The portal here is a fake puller module (`worker.sync.zendesk` replaced for the test) reading
pages of canonical events from a local server through the real `PortalApi`, with the settings
the command gives it: the integration settings' base URL and credential variables, and the
command's sleep. The pages' JSON is this test's own format: what is under test is the command
(paging, what is already stored, the policy check, the queue), not a portal's mapping, which
the portal pullers' own tests check against each vendor's documented shapes.
"""

from __future__ import annotations

import sys
import threading
import types
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import func, select

from scheduler.evaluate import evaluate
from shared.config import settings
from shared.db.models import DeadLetter, StoredEvent, Ticket
from shared.errors import EscaleraError, TicketNotCreated
from shared.events import Event
from tests.integration.services import apply_now
from tests.portal_server import Answer, PortalServer, portal_server
from worker.cli import main
from worker.commands import sync as sync_command
from worker.events.applier import make_applier
from worker.portals.http import Credentials, PortalApi
from worker.runtime import runtime
from worker.sync.base import Page
from worker.sync.known import stored_events

DAY = datetime(2026, 12, 3, tzinfo=UTC)
AT = DAY + timedelta(days=1)
TOKEN = "zendesk-api-token-0123456789"
REPLY = {"author_role": "agent", "public": True}


def at(hour: int, minute: int = 0) -> datetime:
    return DAY + timedelta(hours=hour, minutes=minute)


def change(n: int, kind: str, when: datetime, ticket: str, **fields: Any) -> Event:
    """A change as the API reports it: dated when it was made, with a ``sync:`` id."""
    return Event.model_validate(
        {
            "event_id": f"sync:zendesk:audit:{n}",
            "source": "zendesk",
            "ticket_id": ticket,
            "type": kind,
            "occurred_at": when,
            **fields,
        }
    )


def webhook(pulled: Event) -> Event:
    """The same change as its webhook delivered it: the portal's own id, dated on delivery."""
    return pulled.model_copy(
        update={
            "event_id": f"01JE{pulled.event_id.rsplit(':', 1)[1]:0>8}",
            "occurred_at": pulled.occurred_at + timedelta(seconds=25),
        }
    )


# (the change, whether its webhook arrived)
DAY_OF_CHANGES: list[tuple[Event, bool]] = [
    (change(1, "created", at(9), "501", priority="high", requester_id="77"), True),
    (change(2, "agent_replied", at(9, 50), "501", author="9001", **REPLY), False),
    (change(3, "status_changed", at(10), "501", status="pending"), True),
    (change(4, "customer_replied", at(11, 30), "501", author="77", author_role="requester"), True),
    (change(5, "status_changed", at(11, 30), "501", status="open"), False),
    (change(6, "agent_replied", at(12), "501", author="9001", **REPLY), True),
    # pending again, as at 10:00: a distinct change that looks alike
    (change(7, "status_changed", at(12, 5), "501", status="pending"), False),
    (change(8, "resolved", at(15), "501", status="solved"), False),
    (change(9, "created", at(8), "502", priority="urgent"), False),
    (change(10, "agent_replied", at(8, 20), "502", author="9002", **REPLY), True),
    # the same agent again a minute later: one webhook arrived for the two replies
    (change(11, "agent_replied", at(8, 21), "502", author="9002", **REPLY), False),
    (change(12, "priority_changed", at(9), "502", priority="high"), True),
    (change(13, "assigned", at(13), "502", tier=2, group="360002222222"), False),
    (change(14, "assigned", at(13), "502", assignee="9003"), True),
    (change(15, "updated", at(14), "502", tags_added=["vip"]), False),
    (change(16, "created", at(16), "503", priority="normal"), True),
    (change(17, "customer_replied", at(17), "503", author="88", author_role="customer"), False),
    (
        change(
            18, "agent_replied", at(18), "503", author="9001", author_role="agent", public=False
        ),
        True,
    ),
    (change(19, "agent_replied", at(18, 30), "503", author="9001", **REPLY), False),
]
PULLED = [pulled for pulled, _ in DAY_OF_CHANGES]
DELIVERED = [webhook(pulled) for pulled, arrived in DAY_OF_CHANGES if arrived]
# what happened, each change once: as its webhook told it, else as the API does
HAPPENED = [webhook(pulled) if arrived else pulled for pulled, arrived in DAY_OF_CHANGES]


class FakePuller:
    """Reads ``GET /changes`` pages: ``{"events": [...], "tickets": n, "next": URL | null}``."""

    source = "zendesk"

    def __init__(self, api: PortalApi) -> None:
        self.api = api

    def page(self, since: datetime, until: datetime, cursor: str | None) -> Page:
        if cursor is None:
            body = self.api.get(
                "/changes", {"since": since.isoformat(), "until": until.isoformat()}
            )
        else:
            body = self.api.get(cursor)
        events = [Event.model_validate(e) for e in body["events"]]
        return Page(events, body["tickets"], body["next"])


def fake_module() -> types.ModuleType:
    module = types.ModuleType("worker.sync.zendesk")

    def make_puller(
        section: Any, environ: Mapping[str, str], *, sleep: Callable[[float], None]
    ) -> FakePuller:
        credentials = Credentials(environ[section.api_user_env], environ[section.api_token_env])
        return FakePuller(PortalApi(str(section.base_url), credentials, sleep=sleep))

    module.make_puller = make_puller  # type: ignore[attr-defined]
    return module


@pytest.fixture
def portal(
    configured: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[PortalServer]:
    """The portal's API on 127.0.0.1, named by the integration settings; the fake puller."""
    with portal_server() as server:
        settings_file = tmp_path / "integrations.yaml"
        settings_file.write_text(
            "zendesk:\n"
            f"  base_url: {server.url}\n"
            "  api_user_env: ZENDESK_API_USER\n"
            "  api_token_env: ZENDESK_API_TOKEN\n"
        )
        monkeypatch.setenv("ESCALERA_INTEGRATIONS", str(settings_file))
        monkeypatch.setenv("ZENDESK_API_USER", "sync@acme.example/token")
        monkeypatch.setenv("ZENDESK_API_TOKEN", TOKEN)
        monkeypatch.setitem(sys.modules, "worker.sync.zendesk", fake_module())
        settings.cache_clear()
        yield server


def serve_pages(server: PortalServer, *pages: list[Event], tickets: list[int]) -> None:
    """The pages in turn, each pointing to the next by a full URL; a 429 before the second."""
    for number, (events, count) in enumerate(zip(pages, tickets, strict=True), start=1):
        last = number == len(pages)
        body = {
            "events": [e.model_dump(mode="json") for e in events],
            "tickets": count,
            "next": None if last else f"{server.url}/changes?page={number + 1}",
        }
        if number == 1:
            server.answer("GET", "/changes", body)
        else:
            busy = Answer({"error": "APIRateLimitExceeded"}, 429, {"Retry-After": "7"})
            server.answer("GET", "/changes", busy, body, query={"page": str(number)})


def drain() -> None:
    """Apply what is queued, as the worker's applier does."""
    applier = make_applier(runtime())
    while batch := applier.queue.take(applier.batch, block_s=0):
        assert applier.apply(batch, threading.Event())
        applier.queue.ack()


def history(ticket: str) -> list[Event]:
    with runtime().sessions() as session:
        return stored_events(session, "zendesk", [ticket])[ticket]


def described(events: list[Event]) -> list[tuple[Any, ...]]:
    """Each change as a person reads it in the timeline: what, when (to the minute), to what."""
    rows = [
        (
            e.ticket_id,
            e.type.value,
            e.occurred_at.replace(second=0),
            e.status,
            e.priority,
            e.tier,
            e.author,
            e.public,
            e.tags_added,
        )
        for e in events
    ]
    return sorted(rows, key=repr)


def slas(events_by_ticket: Mapping[str, list[Event]]) -> dict[str, Any]:
    policy = runtime().policies.for_source("zendesk").policy
    found: dict[str, Any] = {}
    for ticket, events in events_by_ticket.items():
        try:
            found[ticket] = evaluate(policy, events, AT).to_json()
        except TicketNotCreated:
            found[ticket] = None
    return found


TICKETS = ("501", "502", "503")


def by_ticket(events: list[Event]) -> dict[str, list[Event]]:
    return {ticket: [e for e in events if e.ticket_id == ticket] for ticket in TICKETS}


def test_a_day_of_changes_is_recovered_with_nothing_doubled(
    portal: PortalServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    slept: list[float] = []
    monkeypatch.setattr(sync_command, "sleep", slept.append)
    apply_now(*DELIVERED)
    expected = slas(by_ticket(HAPPENED))
    assert slas({t: history(t) for t in TICKETS}) != expected  # the webhooks missed some
    # ticket 502 changed again while the pull ran: its tag change shows on both pages
    serve_pages(portal, PULLED[:15], [PULLED[14], *PULLED[15:]], tickets=[2, 2])

    argv = ["sync", "zendesk", "--since", "2026-12-03", "--until", "2026-12-04"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert slept == [7.0]
    assert "page 1: 2 tickets, 15 events: 7 already stored, 8 queued, 0 refused" in out
    assert "page 2: 2 tickets, 5 events: 3 already stored, 2 queued, 0 refused" in out
    assert (
        "zendesk: 2 pages, 4 tickets read, 20 events found, 10 already stored, 10 queued, "
        "0 refused, 7 s waited for rate limits"
    ) in out
    drain()

    stored = {t: history(t) for t in TICKETS}
    assert described([e for t in TICKETS for e in stored[t]]) == described(PULLED)
    assert slas(stored) == expected
    with runtime().sessions() as session:
        assert session.scalars(select(DeadLetter)).all() == []
        rows = session.execute(select(Ticket.ticket_id, Ticket.status)).all()
    status = {row.ticket_id: row.status for row in rows}
    assert status == {t: expected[t]["status"] for t in TICKETS}
    assert status["501"] == "solved"
    # the date was midnight in the policy's zone (America/Mexico_City: UTC-6)
    since = portal.asked_for("/changes")[0].query["since"]
    assert since == ["2026-12-03T00:00:00-06:00"]
    assert portal.asked_for("/changes")[0].headers["authorization"].startswith("Basic ")

    assert main(argv) == 0  # once more: all of it is stored now
    again = capsys.readouterr().out
    assert "20 events found, 20 already stored, 0 queued, 0 refused" in again
    drain()
    with runtime().sessions() as session:
        assert session.scalar(select(func.count()).select_from(StoredEvent)) == len(PULLED)


def test_a_dry_run_queues_nothing_and_reports_what_the_policy_refuses(
    portal: PortalServer, capsys: pytest.CaptureFixture[str]
) -> None:
    unknown = change(30, "created", at(10), "504", priority="Gravísimo")
    serve_pages(portal, [PULLED[0], unknown, PULLED[1]], tickets=[2])
    argv = ["sync", "zendesk", "--since", "2026-12-03T00:00:00Z", "--until", "2026-12-04T00:00Z"]
    assert main([*argv, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "page 1: 2 tickets, 3 events: 0 already stored, 2 to queue, 1 refused" in out
    assert "refused zendesk/504 created: event sync:zendesk:audit:30: unknown priority" in out
    assert "2 to queue (dry run: nothing queued)" in out
    assert make_applier(runtime()).queue.depth() == 0

    assert main(argv) == 0  # for real: the refused event is skipped, the others queued
    drain()
    assert [e.event_id for e in history("501")] == [PULLED[0].event_id, PULLED[1].event_id]
    assert history("504") == []


def test_a_timer_pulls_a_span_back_from_now(
    portal: PortalServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--since 70m``: what a systemd timer or cron runs every hour, overlapping the last run
    by ten minutes; the pull starts 70 minutes before now."""
    serve_pages(portal, [], tickets=[0])
    before = datetime.now(UTC)
    assert main(["sync", "zendesk", "--since", "70m", "--dry-run"]) == 0
    (asked,) = portal.asked_for("/changes")
    start = datetime.fromisoformat(asked.query["since"][0])
    assert before - timedelta(minutes=70) <= start <= datetime.now(UTC) - timedelta(minutes=70)
    assert "0 to queue" in capsys.readouterr().out


def test_a_portal_error_stops_the_run_with_exit_1_and_no_token(
    portal: PortalServer, capsys: pytest.CaptureFixture[str]
) -> None:
    portal.answer("GET", "/changes", Answer({"error": "Couldn't authenticate you"}, 401))
    assert main(["sync", "zendesk", "--since", "2026-12-03"]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("escalera: sync stopped: GET /changes: 401 ")
    assert TOKEN not in captured.err + captured.out


def test_stored_events_of_a_page_are_read_in_one_query(configured: None) -> None:
    apply_now(*DELIVERED)
    engine = runtime().engine
    statements: list[str] = []

    def seen(*args: Any) -> None:
        statements.append(args[2])

    sa_event.listen(engine, "before_cursor_execute", seen)
    try:
        with runtime().sessions() as session:
            found = stored_events(session, "zendesk", ["501", "502", "503", "999"])
    finally:
        sa_event.remove(engine, "before_cursor_execute", seen)
    assert len(statements) == 1
    assert {t: len(events) for t, events in found.items()} == {
        "501": 4,
        "502": 3,
        "503": 2,
        "999": 0,
    }


@pytest.fixture
def bare_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    monkeypatch.delenv("ESCALERA_INTEGRATIONS", raising=False)
    monkeypatch.setitem(sys.modules, "worker.sync.zendesk", fake_module())
    settings.cache_clear()
    yield tmp_path
    settings.cache_clear()


def test_what_sync_needs_is_named_when_missing(
    bare_settings: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sync", "zendesk", "--since", "2026-12-03"]) == 2
    assert "ESCALERA_INTEGRATIONS is not set" in capsys.readouterr().err
    only_jira = bare_settings / "integrations.yaml"
    only_jira.write_text("jira:\n  base_url: https://acme.atlassian.net\n")
    monkeypatch.setenv("ESCALERA_INTEGRATIONS", str(only_jira))
    settings.cache_clear()
    assert main(["sync", "zendesk", "--since", "2026-12-03"]) == 2
    assert f"{only_jira} has no zendesk: section" in capsys.readouterr().err
    assert main(["sync", "servicenow", "--since", "2026-12-03"]) == 2
    assert "unknown source 'servicenow'" in capsys.readouterr().err


def test_a_portal_without_a_puller_yet_is_a_usage_error(
    bare_settings: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "worker.sync.freshdesk", None)  # import fails: not there
    with pytest.raises(EscaleraError, match="sync from freshdesk is not available"):
        sync_command.puller_module("freshdesk")
