"""`escalera recompute --dry-run --policy FILE` on the stored demo day, SQLite and PostgreSQL: the
comparison a support lead reads before a policy goes live, and nothing written anywhere."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import select

from shared.config import settings
from shared.db.engine import make_engine
from shared.db.models import Base
from shared.event_file import read_events
from tests.integration.services import REDIS_URL
from tests.support import PRESETS, ROOT
from worker.cli import main
from worker.events.apply import apply_events
from worker.events.reconcile import reconcile_timers
from worker.runtime import runtime

DEMO = ROOT / "worker" / "demo" / "demo-day.jsonl"
AT = "2026-03-02T18:00:00-06:00"
P2_FIRST_RESPONSE = "  - priority: P2\n    first_response: 2h\n"


@pytest.fixture
def demo_day(configured: None) -> None:
    """The demo day stored as the worker stores it by 18:00, its checkpoints armed in Redis."""
    rt = runtime()
    with rt.sessions.begin() as session:
        apply_events(session, rt.policies, read_events(DEMO), datetime.fromisoformat(AT))
    with rt.sessions() as session:
        assert reconcile_timers(session, rt.timers) > 0


@pytest.fixture
def p2_in_1h(tmp_path: Path) -> Path:
    text = (PRESETS / "soporte-completo.yaml").read_text()
    assert P2_FIRST_RESPONSE in text
    path = tmp_path / "p2-1h.yaml"
    path.write_text(text.replace(P2_FIRST_RESPONSE, "  - priority: P2\n    first_response: 1h\n"))
    return path


def everything_stored(prefix: str) -> tuple[dict[str, list[Any]], dict[bytes, bytes | None]]:
    """Every row of every table, and every Redis key of the test's prefix with its value (read
    on an engine of its own: building the runtime would save the policy folder)."""
    engine = make_engine(settings().database_url)
    with engine.connect() as conn:
        rows = {
            table.name: [
                tuple(row) for row in conn.execute(select(table).order_by(*table.primary_key))
            ]
            for table in Base.metadata.sorted_tables
        }
    engine.dispose()
    client = redis.Redis.from_url(REDIS_URL)
    keys = {key: client.dump(key) for key in client.scan_iter(match=f"{prefix}*")}
    return rows, keys


def dry_run(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main(["recompute", "--dry-run", "--at", AT, "--format", "json", *args]) == 0
    doc: dict[str, Any] = json.loads(capsys.readouterr().out)
    return doc


def test_dry_run_shows_what_the_policy_changes_and_writes_nothing(
    demo_day: None, p2_in_1h: Path, redis_prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every stored ticket judged under its policy and under the file: MX-1005 goes from met to
    breached, first responses kept fall from 4 of 8 to 3 of 8; afterwards every row and every
    Redis key (armed timers, queues) is as it was, and no policy snapshot is saved."""
    before = everything_stored(redis_prefix)
    assert before[0]["checkpoints"] and before[1]  # something there to be left alone
    runtime.cache_clear()  # a dry run that built a runtime would save the policy folder again
    doc = dry_run(capsys, "--all", "--policy", str(p2_in_1h))
    [comparison] = doc["comparisons"]
    assert (comparison["old"], comparison["new"], comparison["tickets"]) == (
        "soporte-completo",
        str(p2_in_1h),
        9,
    )
    overall = next(
        r for r in comparison["rows"] if (r["group"], r["metric"]) == ("all", "first_response")
    )
    assert (overall["old"]["share"], overall["new"]["share"], overall["change"]) == (
        50.0,
        37.5,
        -12.5,
    )
    assert [
        (c["ticket_id"], c["metric"], c["old"]["outcome"], c["new"]["outcome"])
        for c in comparison["changes"]
    ] == [("MX-1005", "first_response", "met", "breached")]
    assert everything_stored(redis_prefix) == before


def test_the_old_side_is_what_report_compliance_says(
    demo_day: None, p2_in_1h: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Over the same period, the old column is `escalera report compliance`, row for row."""
    period = ["--from", "2026-03-02", "--to", "2026-03-03"]
    doc = dry_run(capsys, "--all", "--policy", str(p2_in_1h), *period)
    assert main(["report", "compliance", "--at", AT, "--format", "json", *period]) == 0
    report = json.loads(capsys.readouterr().out)
    [comparison] = doc["comparisons"]
    assert comparison["created"] == {
        "from": "2026-03-02T00:00:00-06:00",
        "to": "2026-03-03T00:00:00-06:00",
    }
    old = [
        {k: r[k] for k in ("dimension", "group", "metric")} | r["old"]
        for r in comparison["rows"]
        if r["old"] is not None
    ]
    assert old == report["rows"]


def test_the_dry_run_takes_recompute_s_choice_of_tickets(
    demo_day: None, p2_in_1h: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--ticket` compares that ticket alone; `--all-open` leaves out the solved MX-1003."""
    one = dry_run(capsys, "--ticket", "api/MX-1005", "--policy", str(p2_in_1h))
    [comparison] = one["comparisons"]
    assert comparison["tickets"] == 1 and len(comparison["changes"]) == 1
    opened = dry_run(capsys, "--all-open", "--policy", str(p2_in_1h))
    assert opened["comparisons"][0]["tickets"] == 8


def test_a_dry_run_needs_the_policy_file_and_names_a_bad_one(
    demo_day: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No --policy, or a file that does not validate: one line naming it, exit 2."""
    assert main(["recompute", "--dry-run", "--all"]) == 2
    assert "recompute --dry-run needs --policy FILE" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ncalendars: {office: {timezone: Nowhere/City}}\n")
    assert main(["recompute", "--dry-run", "--all", "--policy", str(bad)]) == 2
    assert capsys.readouterr().err.startswith(f"escalera: {bad}:")


def test_tickets_under_two_policies_get_a_comparison_each(
    configured: None,
    policy_dir: Path,
    p2_in_1h: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Zendesk's tickets under one policy and the API's under another: each policy is compared
    with the file over its own tickets, never mixed."""
    (policy_dir / "desk-b.yaml").write_text((policy_dir / "soporte-completo.yaml").read_text())
    monkeypatch.setenv("ESCALERA_SOURCE_POLICIES", '{"zendesk": "desk-b"}')
    settings.cache_clear()
    runtime.cache_clear()
    events = read_events(DEMO)
    moved = [e.model_copy(update={"source": "zendesk"}) for e in events if e.ticket_id == "MX-1005"]
    rt = runtime()
    with rt.sessions.begin() as session:
        apply_events(session, rt.policies, [*events, *moved], datetime.fromisoformat(AT))
    doc = dry_run(capsys, "--all", "--policy", str(p2_in_1h))
    by_old = {c["old"]: c for c in doc["comparisons"]}
    assert sorted(by_old) == ["desk-b", "soporte-completo"]
    assert (by_old["soporte-completo"]["tickets"], by_old["desk-b"]["tickets"]) == (9, 1)
    assert [c["source"] for c in by_old["desk-b"]["changes"]] == ["zendesk"]
