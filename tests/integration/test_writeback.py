"""The write-back channel end to end: fire, deliver, and a note on the ticket in its own Zendesk.

Zendesk's API answers on 127.0.0.1 in the shapes its reference documents (List Comments, Update
Ticket: tests/unit/test_portal_notes.py names them; the comment list is
tests/fixtures/api/zendesk/comments_48213.json). The note is delivered by the fire task itself
and by the delivery task's retries, on PostgreSQL and SQLite, with the integration settings and
credentials read from the environment as a worker reads them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from shared.db.models import Notification
from tests.integration.breach import START, add_routes
from tests.integration.services import apply_now
from tests.portal_server import Answer, PortalServer, portal_server
from tests.support import event
from worker import tasks
from worker.notify import deliver
from worker.runtime import runtime

COMMENTS = "/api/v2/tickets/48213/comments.json"
TICKET = "/api/v2/tickets/48213.json"
DOCUMENTED = json.loads(
    (Path(__file__).parent.parent / "fixtures/api/zendesk/comments_48213.json").read_text()
)
ROUTES = """
channels:
  portal: {}
routes:
  - {name: write-back, when: {priorities: [P1], kinds: [breach]}, channels: [portal], attempts: 3}
"""


@pytest.fixture
def zendesk(
    policy_dir: Path, configured: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[PortalServer]:
    """A Zendesk API on 127.0.0.1, named by the integration settings; the ``portal`` channel
    writes back to it; acknowledgement links are on (a note must not carry one)."""
    with portal_server() as server:
        settings_file = tmp_path / "integrations.yaml"
        settings_file.write_text(
            "zendesk:\n"
            f"  base_url: {server.url}\n"
            "  api_user_env: ZENDESK_API_USER\n"
            "  api_token_env: ZENDESK_API_TOKEN\n"
        )
        monkeypatch.setenv("ESCALERA_INTEGRATIONS", str(settings_file))
        monkeypatch.setenv("ZENDESK_API_USER", "escalera@desk.example")
        monkeypatch.setenv("ZENDESK_API_TOKEN", "zd-token-8c1f")
        monkeypatch.setenv("ESCALERA_CHANNEL_PORTAL", "portal://")
        monkeypatch.setenv("ESCALERA_PUBLIC_URL", "https://escalera.example")
        monkeypatch.setenv("ESCALERA_ACK_SECRET", "write-back-ack-secret")
        add_routes(policy_dir, ROUTES)
        yield server


def _queued(monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """What the task hands to the delivery queue (retries, SQLite's pending), run by the test."""
    queued: list[list[int]] = []
    monkeypatch.setattr(
        tasks.deliver_notifications_task, "apply_async", lambda args, **_: queued.append(args[0])
    )
    return queued


def _breach_claimed() -> list[int]:
    apply_now(event("created", START, "48213", source="zendesk", priority="P1"))
    return runtime().timers.claim(START + timedelta(minutes=30))


def _with_our_note(put: Any) -> dict[str, Any]:
    """The comment list once the PUT's note is stored, newest first, as Zendesk lists it."""
    body = put.body["ticket"]["comment"]["body"]
    ours = {**DOCUMENTED["comments"][0], "id": 3300900000999, "public": False}
    ours.update(body=body, plain_body=body)
    return {**DOCUMENTED, "comments": [ours, *DOCUMENTED["comments"]], "count": 3}


def _statuses() -> list[str]:
    with runtime().sessions() as s:
        return sorted(s.scalars(select(Notification.status)))


def test_a_breach_leaves_one_private_note_and_its_tag(
    zendesk: PortalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fire task writes the breach as a private comment with the tag sla_breached, signed
    in with the settings' credentials; the note says what a page says, without an ack link."""
    _queued(monkeypatch)
    zendesk.answer("GET", COMMENTS, DOCUMENTED)
    zendesk.answer("PUT", TICKET, {"ticket": {"id": 48213}})
    ids = _breach_claimed()
    tasks.fire_checkpoints_task.run(ids)
    (put,) = zendesk.asked_for(TICKET)
    change = put.body["ticket"]
    assert change["additional_tags"] == ["sla_breached"]
    assert change["comment"]["public"] is False
    note = change["comment"]["body"]
    assert note.startswith("[P1] zendesk/48213: primera respuesta incumplida")
    assert ":write-back:portal:0" in note  # its dedupe key: how a retry finds it
    assert "/v1/acks" not in note
    assert put.headers["authorization"].startswith("Basic ")
    assert _statuses() == ["sent"]


def test_a_note_whose_answer_was_lost_is_not_written_twice(
    zendesk: PortalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Zendesk stores the note but its answer is lost (504): the try fails and is retried by
    the delivery task; the retry finds the note among the ticket's comments and writes none."""
    queued = _queued(monkeypatch)
    zendesk.answer("PUT", TICKET, Answer({"error": "GatewayTimeout"}, status=504))
    zendesk.answer("GET", COMMENTS, DOCUMENTED)
    tasks.fire_checkpoints_task.run(_breach_claimed())
    assert _statuses() == ["retrying"]
    (put,) = zendesk.asked_for(TICKET)
    zendesk.answer("GET", COMMENTS, _with_our_note(put))
    for batch in queued:
        tasks.deliver_notifications_task.run(batch)
    assert len(zendesk.asked_for(TICKET)) == 1
    assert _statuses() == ["sent"]


def test_a_fire_task_cut_off_after_writing_writes_no_second_note(
    zendesk: PortalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database goes away after the note was written but before its result was stored: the
    fire task runs again (its claim comes back) and the note is there, so nothing is written."""
    queued = _queued(monkeypatch)
    zendesk.answer("GET", COMMENTS, DOCUMENTED)
    zendesk.answer("PUT", TICKET, {"ticket": {"id": 48213}})
    ids = _breach_claimed()

    def cut(*_args: object, **_kwargs: object) -> None:
        raise OperationalError("INSERT …", {}, Exception("connection to the database lost"))

    with monkeypatch.context() as during:
        during.setattr(deliver, "write_back", cut)  # sent after storing them pending
        with pytest.raises(OperationalError):
            tasks.fire_checkpoints_task.run(ids)
    (put,) = zendesk.asked_for(TICKET)
    zendesk.answer("GET", COMMENTS, _with_our_note(put))
    tasks.fire_checkpoints_task.run(ids)
    for batch in queued:  # the pending one goes to a delivery task
        tasks.deliver_notifications_task.run(batch)
    assert len(zendesk.asked_for(TICKET)) == 1
    assert _statuses() == ["sent"]


def test_missing_credentials_are_named_and_the_note_is_retried(
    zendesk: PortalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the token's variable, the try fails naming the variable (never a value) and the
    route's retries go on: set the variable, and the next try writes the note."""
    queued = _queued(monkeypatch)
    monkeypatch.delenv("ZENDESK_API_TOKEN")
    zendesk.answer("GET", COMMENTS, DOCUMENTED)
    zendesk.answer("PUT", TICKET, {"ticket": {"id": 48213}})
    tasks.fire_checkpoints_task.run(_breach_claimed())
    with runtime().sessions() as s:
        (error,) = s.scalars(select(Notification.last_error))
    assert error is not None and "ZENDESK_API_TOKEN" in error and "zd-token" not in error
    assert zendesk.asked == []
    monkeypatch.setenv("ZENDESK_API_TOKEN", "zd-token-8c1f")
    for batch in queued:
        tasks.deliver_notifications_task.run(batch)
    assert len(zendesk.asked_for(TICKET)) == 1
    assert _statuses() == ["sent"]
