"""A policy change never takes the desk down: reloads reach every reader, restarts survive.

On SQLite and PostgreSQL (the last good copy lives in the database), and with a real ``escalera
beat`` taking SIGHUP and restarting on a broken folder.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, MutableMapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import delete
from structlog.testing import capture_logs

from shared.config import settings
from shared.db.models import PolicySnapshot, Ticket
from shared.errors import PolicyError
from shared.events import Event
from tests.integration.services import REDIS_URL, apply_now
from tests.support import ROOT, preset_text_without_notifications
from worker.api.app import create_app
from worker.api.service import services
from worker.policies import store as policy_store
from worker.policies.watch import FolderWatch
from worker.runtime import runtime

TOKEN = "policy-reload-test-token-0123456789"
GOOD = preset_text_without_notifications("soporte-completo")
CHANGED = GOOD.replace("[Crítico, critical, urgent]", "[Crítico, critical, urgent, sev1]")
BROKEN = GOOD.replace("{aliases: [Crítico, critical, urgent]", "{aliases: 7")
POLICY = "soporte-completo.yaml"


class Kept:
    """A publisher that keeps what ingest accepted."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def publish(self, events: Sequence[Event]) -> None:
        self.events += events


@pytest.fixture
def desk(configured: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The configured process, with an API token, and no last good copy saved yet."""
    monkeypatch.setenv("ESCALERA_API_TOKENS", json.dumps([TOKEN]))
    settings.cache_clear()
    runtime.cache_clear()
    with runtime().sessions.begin() as session:
        session.execute(delete(PolicySnapshot))
    yield


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[MutableMapping[str, Any]]]:
    monkeypatch.setattr(policy_store, "log", structlog.get_logger("escalera.policies"))
    with capture_logs() as captured:
        yield captured


def restart() -> None:
    runtime().engine.dispose()
    runtime.cache_clear()


def created(priority: str) -> dict[str, Any]:
    at = datetime.now(UTC) - timedelta(minutes=1)
    return {
        "event_id": f"c-{priority}",
        "ticket_id": f"T-{priority}",
        "type": "created",
        "occurred_at": at.isoformat(),
        "priority": priority,
    }


def ingest(kept: Kept) -> TestClient:
    return TestClient(create_app(dataclasses.replace(services(runtime()), publisher=kept)))


def post(client: TestClient, body: dict[str, Any]) -> int:
    headers = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
    return int(client.post("/v1/events", content=json.dumps(body), headers=headers).status_code)


def test_a_valid_change_reaches_ingest_and_the_applier(desk: None, policy_dir: Path) -> None:
    """After one check of the watch, ingest accepts the new alias and the worker applies it."""
    kept, watch = Kept(), FolderWatch(runtime().policies, policy_dir)
    client = ingest(kept)
    assert post(client, created("sev1")) == 422  # not a priority of the policy yet
    (policy_dir / POLICY).write_text(CHANGED, encoding="utf-8")
    watch.check()
    assert post(client, created("sev1")) == 202
    apply_now(*kept.events)
    with runtime().sessions() as session:
        ticket = session.query(Ticket).filter_by(ticket_id="T-sev1").one()
    assert ticket.priority == "P1"


def test_a_restart_on_a_broken_folder_runs_on_the_last_good_copy(
    desk: None, policy_dir: Path, logs: list[MutableMapping[str, Any]]
) -> None:
    """Loudly: an error line naming file, line and field, a metric, and /readyz says stale."""
    good = runtime().policies.edition
    assert policy_store.save(runtime().sessions, good)  # what a serving process does at start
    refused = REGISTRY.get_sample_value("escalera_policy_loads_total", {"outcome": "refused"})
    (policy_dir / POLICY).write_text(BROKEN, encoding="utf-8")
    restart()
    stale = runtime().policies.edition
    assert (stale.hash, stale.stale, sorted(stale.policies)) == (
        good.hash,
        True,
        ["soporte-completo"],
    )
    [line] = [line for line in logs if line["event"] == "policies_stale"]
    assert (line["log_level"], line["file"]) == ("error", str(policy_dir / POLICY))
    assert (line["line"], line["field"]) == (23, "priorities.P1.aliases")
    after = REGISTRY.get_sample_value("escalera_policy_loads_total", {"outcome": "refused"})
    assert (after or 0) == (refused or 0) + 1
    response = ingest(Kept()).get("/readyz")
    assert response.status_code == 200  # still serving: on the last good policies
    assert response.json()["policies"] | {"loaded_at": None} == {
        "hash": good.hash,
        "origin": "last_good",
        "stale": True,
        "loaded_at": None,
    }


def test_a_first_start_on_a_broken_folder_is_still_refused(desk: None, policy_dir: Path) -> None:
    """With no last good copy, nothing to run on: `PolicyError` naming the file and line."""
    (policy_dir / POLICY).write_text(BROKEN, encoding="utf-8")
    restart()
    with pytest.raises(PolicyError, match=r"soporte-completo.yaml:23: priorities.P1.aliases"):
        runtime()
    (policy_dir / POLICY).write_text(GOOD, encoding="utf-8")  # for the fixture's clean-up


def test_readyz_shows_the_hash_of_the_policies_in_force(desk: None, policy_dir: Path) -> None:
    """The hash changes with a reload, so ingest and workers can be compared."""
    client, book = ingest(Kept()), runtime().policies
    first = client.get("/readyz").json()["policies"]
    assert (first["hash"], first["origin"], first["stale"]) == (book.edition.hash, "folder", False)
    (policy_dir / POLICY).write_text(CHANGED, encoding="utf-8")
    book.reload()
    second = client.get("/readyz").json()["policies"]
    assert second["hash"] == book.edition.hash != first["hash"]


# --- a real process --------------------------------------------------------------------------


def _wait_for(
    log: Path, proc: subprocess.Popen[bytes], event: str, after: int = 0
) -> dict[str, Any]:
    """The first JSON line past line ``after`` whose event is ``event`` (the process writing it)."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        lines = log.read_text(errors="replace").splitlines()[after:]
        for text in lines:
            if text.startswith("{") and json.loads(text).get("event") == event:
                return dict(json.loads(text))
        if proc.poll() is not None:
            break
        time.sleep(0.1)  # waiting for the process's output, not for a timer
    pytest.fail(f"no {event!r} from beat (exit {proc.poll()}):\n{log.read_text()}")


def _lines(log: Path) -> int:
    return len(log.read_text(errors="replace").splitlines())


def _beat(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "worker.cli", "beat"],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=30)


def test_beat_reloads_on_sighup_and_restarts_on_a_broken_folder(
    tmp_path: Path, policy_dir: Path, redis_prefix: str
) -> None:
    """SIGHUP reloads (a bad folder is refused, beat runs on); a restart on it runs stale."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'escalera.db'}",
        "REDIS_URL": REDIS_URL,
        "ESCALERA_REDIS_PREFIX": redis_prefix,
        "ESCALERA_POLICY_DIR": str(policy_dir),
        "ESCALERA_POLICY_POLL_S": "0",  # only SIGHUP reloads: the test says when
    }
    log = tmp_path / "beat.log"
    beat = _beat(env, log)
    try:
        first = _wait_for(log, beat, "policies_in_force")
        (policy_dir / POLICY).write_text(CHANGED, encoding="utf-8")
        mark = _lines(log)
        beat.send_signal(signal.SIGHUP)
        reloaded = _wait_for(log, beat, "policies_reloaded", mark)
        assert (reloaded["previous_hash"], reloaded["trigger"]) == (first["hash"], "sighup")
        (policy_dir / POLICY).write_text(BROKEN, encoding="utf-8")
        mark = _lines(log)
        beat.send_signal(signal.SIGHUP)
        failed = _wait_for(log, beat, "policy_reload_failed", mark)
        assert (failed["field"], failed["hash"]) == ("priorities.P1.aliases", reloaded["hash"])
        assert beat.poll() is None
    finally:
        _stop(beat)
    mark = _lines(log)
    beat = _beat(env, log)  # restarted on the broken folder: the copy saved after the reload
    try:
        stale = _wait_for(log, beat, "policies_in_force", mark)
        assert (stale["hash"], stale["origin"]) == (reloaded["hash"], "last_good")
        assert beat.poll() is None
    finally:
        _stop(beat)
