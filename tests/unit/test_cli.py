"""`escalera simulate` and `escalera policy check`, run as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import PRESETS, ROOT

DEMO = ROOT / "worker" / "demo" / "demo-day.jsonl"
COMPLETO = PRESETS / "soporte-completo.yaml"
AT = "2026-03-02T18:00:00-06:00"


def escalera(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "worker.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"COLUMNS": "160", "PATH": "/usr/bin:/bin"},
        check=False,
    )


def test_simulate_json_follows_the_contract() -> None:
    """The JSON document has CONTRACTS.md §3's shape and the demo's known outcomes."""
    done = escalera(
        "simulate", "--policy", str(COMPLETO), "--events", str(DEMO), "--at", AT, "--format", "json"
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["at"] == AT
    tickets = {t["ticket_id"]: t for t in doc["tickets"]}
    assert len(tickets) == 9
    fr = tickets["MX-1002"]["metrics"]["first_response"]  # only an automatic ack within 2 h
    assert fr == {
        "state": "breached",
        "target_seconds": 7200,
        "elapsed_seconds": 10200,
        "due_at": "2026-03-02T10:40:00-06:00",
        "completed_at": "2026-03-02T11:30:00-06:00",
        "breached_at": "2026-03-02T10:40:00-06:00",
    }
    unanswered = tickets["MX-1007"]
    assert unanswered["metrics"]["first_response"]["state"] == "running"
    assert {
        "metric": "first_response",
        "kind": "breach",
        "percent": None,
        "tier": None,
        "due_at": "2026-03-02T18:10:00-06:00",
        "fired": False,
        "key": "first_response:breach",
    } in unanswered["checkpoints"]


def test_simulate_table_shows_every_ticket() -> None:
    """The table lists each ticket with its metrics and next checkpoint."""
    done = escalera("simulate", "--policy", str(COMPLETO), "--events", str(DEMO), "--at", AT)
    assert done.returncode == 0, done.stderr
    for ticket in ("MX-1001", "MX-1005", "MX-1009"):
        assert ticket in done.stdout
    assert "first_response warning 75% 18:02 (in 2m)" in done.stdout


def test_simulate_reports_the_bad_event_line(tmp_path: Path) -> None:
    """A broken line in the events file is named by number and field; exit status 2."""
    events = tmp_path / "day.jsonl"
    lines = DEMO.read_text().splitlines()
    lines[2] = lines[2].replace("-06:00", "")  # a time without offset
    lines[4] = "{not json"
    events.write_text("\n".join(lines) + "\n")
    done = escalera("simulate", "--policy", str(COMPLETO), "--events", str(events), "--at", AT)
    assert done.returncode == 2
    assert f"{events}:3: occurred_at: a time without a UTC offset is ambiguous" in done.stderr
    assert f"{events}:5: not valid JSON" in done.stderr
    assert done.stdout == ""


def test_simulate_refuses_a_bad_policy_naming_file_and_line(tmp_path: Path) -> None:
    """A bad policy stops simulate with the file, line and field."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        COMPLETO.read_text().replace("first_response: 30m", "first_response: 30 minutes")
    )
    done = escalera("simulate", "--policy", str(policy), "--events", str(DEMO), "--at", AT)
    assert done.returncode == 2
    assert f"{policy}:" in done.stderr and "targets[0].first_response" in done.stderr


def test_simulate_refuses_a_time_without_offset() -> None:
    """`--at` without a UTC offset is refused before anything runs."""
    done = escalera(
        "simulate", "--policy", str(COMPLETO), "--events", str(DEMO), "--at", "2026-03-02T18:00"
    )
    assert done.returncode == 2
    assert "has no UTC offset" in done.stderr


def test_tickets_waiting_for_their_created_event_are_listed(tmp_path: Path) -> None:
    """Events of a ticket whose created event has not arrived are kept and said so."""
    events = tmp_path / "day.jsonl"
    events.write_text(
        '{"event_id": "1", "ticket_id": "X-1", "type": "agent_replied", '
        '"occurred_at": "2026-03-02T09:00:00-06:00"}\n'
    )
    done = escalera("simulate", "--policy", str(COMPLETO), "--events", str(events), "--at", AT)
    assert done.returncode == 0, done.stderr
    assert "api/X-1: events kept, waiting for its created event" in done.stdout


@pytest.mark.parametrize("preset", sorted(PRESETS.glob("*.yaml")), ids=lambda p: p.stem)
def test_policy_check_accepts_the_presets(preset: Path) -> None:
    """`escalera policy check` passes every shipped preset."""
    done = escalera("policy", "check", str(preset))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{preset}: ok")


def test_policy_check_fails_on_a_bad_file(tmp_path: Path) -> None:
    """`escalera policy check` exits 2 and names the problem, for use in CI."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\n")
    done = escalera("policy", "check", str(bad))
    assert done.returncode == 2
    assert f"{bad}:1: calendars: Field required" in done.stderr
