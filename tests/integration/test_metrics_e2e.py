"""Metrics from the real processes: ``ingest --workers 2``, a prefork worker and beat.

Each process group shares its samples through a private folder, so a scrape of any one process
reports the whole group; an event counted by one uvicorn worker shows in the other's /metrics.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.integration.processes import free_port, running
from tests.integration.scrape import Scrape
from tests.integration.services import REDIS_URL, truncate
from tests.integration.sinks import JsonSink
from tests.support import preset_text_without_notifications

TOKEN = "metrics-e2e"  # a legacy token: it reads /metrics
FEED_TOKEN = "metrics-e2e-feed-key"  # the key writing source e2e (and labelling it)
KEYS = [{"name": "e2e-feed", "token": FEED_TOKEN, "scopes": ["write"], "sources": ["e2e"]}]
ROUTES = """
channels:
  oncall: {}
routes:
  - {name: page, when: {kinds: [warning, breach]}, channels: [oncall]}
catch_up: all  # every overdue checkpoint pages, each counted
"""


class System:
    def __init__(self, ingest: str, worker: str, beat: str, tmp: Path, worker_pid: int) -> None:
        self.ingest, self.worker, self.beat, self.tmp = ingest, worker, beat, tmp
        self.worker_pid = worker_pid

    def scrape(self, base: str) -> Scrape:
        read = {"authorization": f"Bearer {TOKEN}"}  # ingest's needs it; the others' ignore it
        return Scrape(httpx.get(f"{base}/metrics", headers=read, timeout=5).text)


@pytest.fixture
def system(
    postgres_url: str, redis_prefix: str, tmp_path: Path, sink: JsonSink
) -> Iterator[System]:
    truncate(postgres_url)
    policies, tmp = tmp_path / "policies", tmp_path / "tmp"
    policies.mkdir()
    tmp.mkdir()
    (policies / "desk.yaml").write_text(
        preset_text_without_notifications("soporte-completo") + ROUTES
    )
    ports = {name: free_port() for name in ("ingest", "worker", "beat")}
    env = {
        **os.environ,
        "TMPDIR": str(tmp),  # where each process group makes its metrics folder
        "DATABASE_URL": postgres_url,
        "REDIS_URL": REDIS_URL,
        "ESCALERA_REDIS_PREFIX": redis_prefix,
        "ESCALERA_EVENTS_QUEUE": f"{redis_prefix}-events",
        "ESCALERA_FIRE_QUEUE": f"{redis_prefix}-fire",
        "ESCALERA_POLICY_DIR": str(policies),
        "ESCALERA_DEFAULT_POLICY": "desk",
        "ESCALERA_API_TOKENS": json.dumps([TOKEN]),
        "ESCALERA_API_KEYS": json.dumps(KEYS),
        "ESCALERA_CHANNEL_ONCALL": sink.url(),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    commands = {
        "ingest": ["ingest", "--port", str(ports["ingest"]), "--workers", "2"],
        "worker": ["worker", "--concurrency", "2", "--metrics-port", str(ports["worker"])],
        "beat": ["beat", "--metrics-port", str(ports["beat"])],
    }
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    with running(commands, env, tmp_path) as procs:
        _wait_for(  # two spawned uvicorn workers start slowly on a busy 2-core machine
            lambda: (
                httpx.get(f"{urls['ingest']}/readyz", timeout=2).status_code == 200
                or any(p.poll() is not None for p in procs)
            ),
            "the ingest service answered /readyz",
            seconds=120,
        )
        assert all(p.poll() is None for p in procs), _logs(tmp_path)
        yield System(urls["ingest"], urls["worker"], urls["beat"], tmp, procs[1].pid)
    assert list(tmp.iterdir()) == []  # every metrics folder removed at shutdown


def _logs(folder: Path) -> str:
    return "\n".join(f"--- {f.name}\n{f.read_text()}" for f in folder.glob("*.log"))


def _wait_for(condition, what: str, seconds: float = 45):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if value := condition():
                return value
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    pytest.fail(f"{what} within {seconds} s")


def test_every_process_group_reports_its_whole_self(system: System) -> None:
    """Twelve requests over two uvicorn workers, one overdue P1 through the prefork worker and beat."""
    now = datetime.now(UTC)
    created = now - timedelta(minutes=40)
    for number in range(12):  # a new connection each: the kernel spreads them over both workers
        event = {
            "event_id": f"me-{number}",
            "ticket_id": f"ME-{number}",
            "type": "created",
            # only the first is overdue; the others' first warning is 11 minutes away or more
            "occurred_at": (
                created if number == 0 else now - timedelta(minutes=number)
            ).isoformat(),
            "priority": "Crítico",
            "source": "e2e",
        }
        response = httpx.post(
            f"{system.ingest}/v1/events",
            json=event,
            headers={"authorization": f"Bearer {FEED_TOKEN}"},
        )
        assert response.status_code == 202
    scrapes = [system.scrape(system.ingest) for _ in range(6)]
    assert [s("escalera_events_ingested_total", source="e2e") for s in scrapes] == [12] * 6

    def worker_done() -> Scrape | None:
        scrape = system.scrape(system.worker)
        sent = scrape("escalera_notifications_total", scheme="json", outcome="sent")
        return scrape if sent == 3 else None

    worker = _wait_for(worker_done, "three pages sent, as the worker's /metrics says")
    assert worker("escalera_events_applied_total", source="e2e", outcome="applied") == 12
    assert worker("escalera_checkpoints_fired_total", kind="warning") == 2
    assert worker("escalera_checkpoints_fired_total", kind="breach") == 1
    assert worker("escalera_checkpoint_firing_lateness_seconds_count", kind="breach") == 1
    beat = system.scrape(system.beat)
    assert beat("escalera_timers_claimed_total") >= 3
    assert time.time() - beat("escalera_beat_last_tick_timestamp_seconds") < 5
    assert "escalera_queue_depth" in beat.names()


def _nice(stat: Path) -> int:
    """A task's nice value: field 19 of /proc/.../stat (after the parenthesised name)."""
    return int(stat.read_text().rsplit(")", 1)[1].split()[16])


def test_the_appliers_run_below_the_firing_pool(system: System) -> None:
    """ESCALERA_APPLY_NICE (5): the worker's two applier threads yield the CPU to the pool that
    fires and delivers, and to the rest of the worker; nothing else is lowered."""
    main = Path(f"/proc/{system.worker_pid}")
    base = _nice(main / "stat")

    def appliers_lowered() -> list[int] | None:
        niceness = sorted(_nice(task / "stat") for task in (main / "task").iterdir())
        return niceness if niceness.count(base + 5) == 2 else None

    niceness = _wait_for(appliers_lowered, "two threads of the worker at nice +5")
    assert niceness.count(base) == len(niceness) - 2  # its main thread and the others
    children = (main / "task" / str(system.worker_pid) / "children").read_text().split()
    assert len(children) == 2  # --concurrency 2: the pool
    assert all(_nice(Path(f"/proc/{child}/stat")) == base for child in children)
