"""No secret in any log line of a real run: ingest, worker and beat, every line of their output.

The three processes run with every credential set to a distinctive string (API token, HMAC
secret, each portal's secret, the acknowledgement secret, two channel URLs with a user, a
password and a path of their own), take valid and wrongly authenticated requests, fire pages
to one channel that answers and one that fails until dead-lettered. Then every line any of them
wrote (stdout and stderr) is searched for those strings, and must be a JSON object.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from shared.db.engine import make_engine, session_factory
from shared.db.models import Notification
from tests.integration.processes import free_port, running, wait_ready
from tests.integration.services import REDIS_URL, truncate
from tests.integration.sinks import JsonSink
from tests.support import ROOT, preset_text_without_notifications
from worker.adapters.signatures import sign_escalera, sign_jira, sign_zendesk

TOKEN = "tok-LEAKCHECK-api-a1b2c3"
HMAC_SECRET = "hmac-LEAKCHECK-d4e5f6"
ZENDESK_SECRET = "zd-LEAKCHECK-0708"
JIRA_SECRET = "jira-LEAKCHECK-0910"
FRESHDESK_SECRET = "fd-LEAKCHECK-1112"
ACK_SECRET = "ack-LEAKCHECK-1314"
GOOD_USER, GOOD_PASSWORD, GOOD_PATH = (
    "chanuser-LEAKCHECK",
    "chanpw-LEAKCHECK-15",
    "hook-LEAKCHECK-16",
)
BAD_PASSWORD, BAD_PATH = "deadpw-LEAKCHECK-17", "deadhook-LEAKCHECK-18"
GONE_PASSWORD, GONE_PATH = "gonepw-LEAKCHECK-20", "gonehook-LEAKCHECK-21"  # nobody listens
WRONG_TOKEN = "tok-LEAKCHECK-wrong-19"  # presented by a caller: not ours to log either
SECRETS = [
    TOKEN,
    HMAC_SECRET,
    ZENDESK_SECRET,
    JIRA_SECRET,
    FRESHDESK_SECRET,
    ACK_SECRET,
    GOOD_USER,
    GOOD_PASSWORD,
    GOOD_PATH,
    BAD_PASSWORD,
    BAD_PATH,
    GONE_PASSWORD,
    GONE_PATH,
    WRONG_TOKEN,
]
ROUTES = """
channels:
  oncall: {}
  broken: {}
routes:
  - {name: page, when: {kinds: [warning, breach]}, channels: [oncall]}
  - {name: mirror, when: {kinds: [breach]}, channels: [broken], attempts: 2}
"""
FIXTURES = ROOT / "tests" / "fixtures" / "webhooks"


@pytest.fixture
def sinks() -> Iterator[tuple[JsonSink, JsonSink]]:
    good, bad = JsonSink(), JsonSink()
    bad.failing = True
    yield good, bad
    good.close()
    bad.close()


def channel(sink: JsonSink, user: str | None, password: str, path: str) -> str:
    who = f"{user}:{password}" if user else f"x:{password}"
    return sink.url(path).replace("json://", f"json://{who}@")


@dataclass(frozen=True)
class Run:
    commands: dict[str, list[str]]
    env: dict[str, str]
    logs: Path
    base: str


@pytest.fixture
def run(
    postgres_url: str, redis_prefix: str, tmp_path: Path, sinks: tuple[JsonSink, JsonSink]
) -> Run:
    """Ingest, worker and beat with every secret set, to be started by the test."""
    truncate(postgres_url)
    good, bad = sinks
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "desk.yaml").write_text(
        preset_text_without_notifications("soporte-completo") + ROUTES
    )
    logs = tmp_path / "logs"
    logs.mkdir()
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": postgres_url,
        "REDIS_URL": REDIS_URL,
        "ESCALERA_REDIS_PREFIX": redis_prefix,
        "ESCALERA_EVENTS_QUEUE": f"{redis_prefix}-events",
        "ESCALERA_FIRE_QUEUE": f"{redis_prefix}-fire",
        "ESCALERA_POLICY_DIR": str(policies),
        "ESCALERA_DEFAULT_POLICY": "desk",
        "ESCALERA_API_TOKENS": json.dumps([TOKEN]),
        "ESCALERA_API_HMAC_SECRET": HMAC_SECRET,
        "ESCALERA_ZENDESK_SECRET": ZENDESK_SECRET,
        "ESCALERA_JIRA_SECRET": JIRA_SECRET,
        "ESCALERA_FRESHDESK_SECRET": FRESHDESK_SECRET,
        "ESCALERA_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "ESCALERA_ACK_SECRET": ACK_SECRET,
        "ESCALERA_CHANNEL_ONCALL": channel(good, GOOD_USER, GOOD_PASSWORD, GOOD_PATH),
        "ESCALERA_CHANNEL_BROKEN": " ".join(  # one target answers 500, one refuses connections
            [
                channel(bad, None, BAD_PASSWORD, BAD_PATH),
                f"json://x:{GONE_PASSWORD}@127.0.0.1:{free_port()}/{GONE_PATH}",
            ]
        ),
    }
    commands = {
        "ingest": ["ingest", "--port", str(port), "--workers", "1"],
        "worker": ["worker", "--concurrency", "2"],
        "beat": ["beat"],
    }
    return Run(commands, env, logs, f"http://127.0.0.1:{port}")


def wait_for(condition: Callable[[], Any], what: str, seconds: float = 60) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.2)
    pytest.fail(f"{what} within {seconds} s")


def traffic(base: str) -> dict[str, int]:
    """Accepted and refused requests of every kind; returns each one's status by name."""
    created = datetime.now(UTC) - timedelta(minutes=40)  # its first response is overdue now
    event = {
        "event_id": "leak-1",
        "ticket_id": "LEAK-1",
        "type": "created",
        "occurred_at": created.isoformat(),
        "priority": "Crítico",
    }
    body = json.dumps(event).encode()
    json_type = {"content-type": "application/json"}
    zendesk = json.loads((FIXTURES / "zendesk" / "comment_added_public_agent.json").read_text())
    zendesk["time"] = datetime.now(UTC).isoformat()
    zd_body = json.dumps(zendesk).encode()
    jira = json.loads((FIXTURES / "jira" / "issue_created.json").read_text())
    jira["timestamp"] = int(time.time() * 1000)
    jira["issue"]["fields"]["created"] = created.isoformat()
    jira_body = json.dumps(jira).encode()
    freshdesk = json.loads((FIXTURES / "freshdesk" / "ticket_created.json").read_text())
    freshdesk["occurred_at"] = created.isoformat()
    fd_body = json.dumps(freshdesk).encode()
    basic = base64.b64encode(f"x:{WRONG_TOKEN}".encode()).decode()
    requests: dict[str, tuple[str, bytes, dict[str, str]]] = {
        "bearer": ("/v1/events", body, {"authorization": f"Bearer {TOKEN}"}),
        "hmac": ("/v1/events", body, sign_escalera(body, HMAC_SECRET, datetime.now(UTC))),
        "wrong bearer": ("/v1/events", body, {"authorization": f"Bearer {WRONG_TOKEN}"}),
        "wrong hmac": ("/v1/events", body, sign_escalera(body, WRONG_TOKEN, datetime.now(UTC))),
        "zendesk": (
            "/v1/webhooks/zendesk",
            zd_body,
            sign_zendesk(zd_body, ZENDESK_SECRET, datetime.now(UTC)),
        ),
        "forged zendesk": (
            "/v1/webhooks/zendesk",
            zd_body,
            sign_zendesk(zd_body, WRONG_TOKEN, datetime.now(UTC)),
        ),
        "jira": ("/v1/webhooks/jira", jira_body, sign_jira(jira_body, JIRA_SECRET)),
        "forged jira": ("/v1/webhooks/jira", jira_body, sign_jira(jira_body, WRONG_TOKEN)),
        "freshdesk": (
            "/v1/webhooks/freshdesk",
            fd_body,
            {"x-escalera-webhook-secret": FRESHDESK_SECRET},
        ),
        "wrong freshdesk": ("/v1/webhooks/freshdesk", fd_body, {"authorization": f"Basic {basic}"}),
        "wrong ack": ("/v1/notifications/1/ack", b"", {"authorization": f"Bearer {WRONG_TOKEN}"}),
    }
    with httpx.Client(base_url=base) as client:
        return {
            name: client.post(path, content=content, headers={**json_type, **headers}).status_code
            for name, (path, content, headers) in requests.items()
        }


def test_no_secret_reaches_any_log_line(
    run: Run, sinks: tuple[JsonSink, JsonSink], postgres_url: str
) -> None:
    """Every line of ingest, worker and beat is JSON and holds no token, secret or channel URL."""
    with running(run.commands, run.env, run.logs) as procs:
        wait_ready(run.base, procs, run.logs)
        exercise(run.base, sinks[0], postgres_url)
    assert_clean(run.logs)  # the processes have stopped: everything they wrote is in the files


def exercise(base: str, good: JsonSink, postgres_url: str) -> None:
    """Requests of every kind; pages to both channels until each is sent or dead."""
    statuses = traffic(base)
    assert statuses == {
        **dict.fromkeys(["bearer", "hmac", "zendesk", "jira", "freshdesk"], 202),
        **dict.fromkeys(
            ["wrong bearer", "wrong hmac", "forged zendesk", "forged jira", "wrong freshdesk"], 401
        ),
        "wrong ack": 401,
    }
    sessions = session_factory(make_engine(postgres_url))

    def settled() -> bool:
        with sessions() as session:
            rows = session.execute(select(Notification.channel, Notification.status)).all()
        return {("oncall", "sent"), ("broken", "dead")} <= set(rows) and all(
            status in ("sent", "dead") for _, status in rows
        )

    wait_for(lambda: good.received, "a page reached the working channel")
    wait_for(settled, "every page sent, and the broken channel's dead-lettered")
    with httpx.Client(base_url=base) as client:  # a refused signed link after the pages
        assert client.post("/v1/notifications/1/ack", params={"sig": "forged"}).status_code == 401


def assert_clean(logs: Path) -> None:
    lines = [
        (path.name, number, line)
        for path in sorted(logs.glob("*.log"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if line.strip()
    ]
    assert {name for name, _, _ in lines} == {"ingest.log", "worker.log", "beat.log"}
    for name, number, line in lines:
        for secret in SECRETS:
            assert secret not in line, f"{name}:{number} leaks {secret!r}: {line}"
    for name, number, line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            pytest.fail(f"{name}:{number} is not JSON: {line}")
        assert isinstance(record, dict) and "event" in record, f"{name}:{number}: {line}"
        if record["event"] in ("event_applied", "event_failed"):
            assert record.get("ticket_id") and record.get("source"), f"{name}:{number}: {line}"
        if record["event"] == "request_refused":
            assert record.get("source") and "field" in record, f"{name}:{number}: {line}"
    events = {json.loads(line)["event"] for _, _, line in lines}
    assert {"event_applied", "request_refused", "notification_delivery"} <= events
