"""A setting that cannot work stops a command at start with one line naming the variable.

An operator who mistypes ESCALERA_API_KEYS must read which variable and which field is wrong,
not a pydantic traceback, and never the token they wrote.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.config import Settings, explain
from tests.support import ROOT

TOKEN = "a-token-nobody-may-read-1234"


def run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``escalera ingest`` with ``env``; it must refuse before serving anything."""
    return subprocess.run(
        [sys.executable, "-m", "worker.cli", "ingest", "--port", "1"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": f"sqlite:///{tmp_path / 'e.db'}", **env},
        timeout=120,
        check=False,
    )


def test_a_key_without_scopes_names_the_entry_and_field_never_the_token(tmp_path: Path) -> None:
    done = run(tmp_path, ESCALERA_API_KEYS=f'[{{"name": "desk", "token": "{TOKEN}"}}]')
    assert done.returncode == 2
    assert done.stderr.strip() == "escalera: ESCALERA_API_KEYS[0].scopes: Field required"
    assert TOKEN not in done.stdout + done.stderr


def test_a_json_setting_that_is_not_json_says_so(tmp_path: Path) -> None:
    done = run(tmp_path, ESCALERA_API_KEYS=f"{TOKEN},other")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "escalera: ESCALERA_API_KEYS: not valid JSON (write a JSON list or object)"
    )
    assert TOKEN not in done.stdout + done.stderr


def test_a_setting_read_from_a_plain_name_is_named_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """DATABASE_URL and REDIS_URL are read without the ESCALERA_ prefix: named as read."""
    monkeypatch.setenv("ESCALERA_MAX_BATCH", "many")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert explain(refused.value) == [
        "ESCALERA_MAX_BATCH: Input should be a valid integer, unable to parse string as an integer"
    ]
