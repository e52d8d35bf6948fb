"""Operator commands on a real database: recompute, dead-letters, a bad policy at start."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from alembic import command
from sqlalchemy import select

from shared.db.migrate import alembic_config
from shared.db.models import Checkpoint, DeadLetter, Ticket
from tests.integration.services import REDIS_URL, apply_now
from tests.support import PRESETS, ROOT, event
from worker.cli import main
from worker.events.apply import apply_event
from worker.runtime import runtime

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def _apply(*events: object) -> None:
    rt = runtime()
    for ev in events:
        with rt.sessions.begin() as session:
            apply_event(session, rt.policies, ev, START + timedelta(hours=1))  # type: ignore[arg-type]


def test_recompute_applies_an_edited_policy_and_shows_what_moved(
    configured: None, policy_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Shortening P1 first response from 30m to 20m moves the stored deadline, and says so."""
    _apply(event("created", START, "R-1", priority="P1"))
    preset = policy_dir / "soporte-completo.yaml"
    preset.write_text(preset.read_text().replace("first_response: 30m", "first_response: 20m"))
    runtime.cache_clear()
    assert main(["recompute", "--all-open"]) == 0
    out = capsys.readouterr().out
    assert "api/R-1" in out and "first_response:breach" in out and "15:30 → " in out
    with runtime().sessions() as s:
        due = s.scalars(
            select(Checkpoint.due_at).where(Checkpoint.key == "first_response:breach")
        ).one()
    assert due == START + timedelta(minutes=20)


def test_dead_letter_is_listed_and_applies_once_the_policy_knows_it(
    configured: None, policy_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown priority is kept aside; after adding the alias, a retry applies it."""
    _apply(event("created", START, "D-1", priority="Gravísimo"))
    assert main(["dead-letters"]) == 0
    assert "unknown priority 'Gravísimo'" in capsys.readouterr().out
    with runtime().sessions() as s:
        dead_id = s.scalars(select(DeadLetter.id)).one()
    assert main(["dead-letters", "--retry", str(dead_id)]) == 1  # still unknown: still dead
    preset = policy_dir / "soporte-completo.yaml"
    preset.write_text(
        preset.read_text().replace("aliases: [Crítico,", "aliases: [Gravísimo, Crítico,")
    )
    runtime.cache_clear()
    assert main(["dead-letters", "--retry", str(dead_id)]) == 0
    assert f"dead letter {dead_id}: applied" in capsys.readouterr().out
    with runtime().sessions() as s:
        assert s.scalars(select(Ticket.priority).where(Ticket.ticket_id == "D-1")).one() == "P1"
        assert s.get(DeadLetter, dead_id).retried_at is not None  # type: ignore[union-attr]


def test_a_dead_letter_with_no_valid_event_is_refused_on_retry(
    configured: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unreadable queue message kept as a dead letter: a retry says why it cannot apply."""
    with runtime().sessions.begin() as session:
        row = DeadLetter(
            source="?",
            event_id="0123abcd",
            ticket_id="?",
            payload={"unreadable_message": "{not json"},
            error="unreadable queue message",
            raw=b"{not json",
        )
        session.add(row)
        session.flush()
        dead_id = row.id
    assert main(["dead-letters", "--retry", str(dead_id)]) == 1
    assert "holds no event that can be applied" in capsys.readouterr().out


def test_a_bad_policy_file_stops_the_worker_with_file_and_line(tmp_path: Path) -> None:
    """`escalera worker` refuses to start on an invalid policy, naming file, line and field."""
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "desk.yaml").write_text(
        (PRESETS / "soporte-completo.yaml")
        .read_text()
        .replace("update_every: 2h", "update_every: often")
    )
    done = subprocess.run(
        [sys.executable, "-m", "worker.cli", "worker"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={
            "PATH": "/usr/bin:/bin",
            "ESCALERA_POLICY_DIR": str(folder),
            "ESCALERA_DEFAULT_POLICY": "desk",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'e.db'}",
        },
        check=False,
    )
    assert done.returncode == 2
    assert (
        f"{folder / 'desk.yaml'}:" in done.stderr
        and "targets[0].update_every: 'often' is not a duration" in done.stderr
    )


def test_models_and_migrations_agree(database_url: str) -> None:
    """Every model change came with its Alembic migration: autogenerate finds nothing to add."""
    command.check(alembic_config(database_url))


def test_timers_reconcile_rearms_what_redis_lost(
    configured: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """After Redis loses its timers, `escalera timers reconcile` arms every armed checkpoint again."""
    apply_now(event("created", START, "Z-1", priority="P1"))
    timers = runtime().timers
    assert timers.count() == (3, 0)
    redis.Redis.from_url(REDIS_URL).delete(timers.keys.due)  # a restart without persistence
    assert main(["timers", "reconcile"]) == 0
    assert "3 armed checkpoints were missing from Redis" in capsys.readouterr().out
    assert timers.count() == (3, 0)
    assert timers.next_due() == (START + timedelta(minutes=22, seconds=30)).timestamp()
