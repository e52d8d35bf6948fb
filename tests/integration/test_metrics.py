"""Prometheus metrics as an operator reads them: drive the pipeline, scrape, see the counts."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
import structlog
from fastapi.testclient import TestClient
from prometheus_client import generate_latest
from pydantic import SecretStr
from redis.asyncio import Redis as AsyncRedis
from sqlalchemy import select
from structlog.testing import capture_logs

from scheduler.dispatch import FIRE_QUEUE_HOLD, Dispatcher
from shared import metrics
from shared.celery_app import make_celery
from shared.config import ApiKey, Settings
from shared.db.engine import make_engine, session_factory
from shared.db.migrate import upgrade
from shared.db.models import Checkpoint, Notification
from shared.metrics_export import QueueDepth, scrape_registry
from tests.integration.scrape import Scrape
from tests.integration.services import REDIS_URL
from tests.integration.sinks import JsonSink
from tests.support import PRESETS, event
from worker import tasks
from worker.adapters.signatures import sign_zendesk
from worker.api.app import Services, create_app
from worker.api.publisher import QueuePublisher
from worker.api.service import webhooks
from worker.notify import firing_log
from worker.policies.book import PolicyBook
from worker.runtime import runtime

TOKEN = "metrics-token"
DESK, DESK_TOKEN = f"desk-{uuid.uuid4().hex[:8]}", "desk-key-token-4e1f"  # a key writing DESK
READ = {"authorization": f"Bearer {TOKEN}"}  # a legacy token: it reads /metrics
ROUTES = """
channels:
  oncall: {}
  nowhere: {}
routes:
  - {name: page, when: {kinds: [warning, breach]}, channels: [oncall]}
  - {name: lost, when: {kinds: [breach]}, channels: [nowhere], attempts: 1}
catch_up: all  # every overdue checkpoint pages, each counted
"""


def scrape() -> Scrape:
    """What ``escalera worker --metrics-port`` answers (this process's registry)."""
    return Scrape(generate_latest(scrape_registry()).decode())


@pytest.fixture
def ingest(tmp_path: Path, redis_prefix: str) -> Iterator[tuple[TestClient, redis.Redis]]:
    """The ingest app publishing to real Redis under this test's prefix; /metrics reads it."""
    url = f"sqlite:///{tmp_path / 'e.db'}"
    upgrade(url)
    config = Settings(
        database_url=url,
        redis_prefix=redis_prefix,
        policy_dir=PRESETS,
        api_tokens=[SecretStr(TOKEN)],
        api_keys=[
            ApiKey(name="desk", token=SecretStr(DESK_TOKEN), scopes=["write"], sources=[DESK])
        ],
        zendesk_secret=SecretStr("zendesk-secret"),
    )
    client = redis.Redis.from_url(REDIS_URL)
    publisher = QueuePublisher(
        make_celery(config), AsyncRedis.from_url(REDIS_URL), config.events_queue
    )
    services = Services(
        settings=config,
        policies=PolicyBook.from_settings(config),
        publisher=publisher,
        sessions=session_factory(make_engine(url)),
        webhooks=webhooks(config),
        redis_ping=client.ping,
        queue_depth=QueueDepth.from_settings(config),
    )
    with TestClient(create_app(services)) as http:
        yield http, client


def _post(http: TestClient, body: object, token: str = TOKEN, **headers: str):  # type: ignore[no-untyped-def]
    return http.post(
        "/v1/events",
        content=json.dumps(body, default=str),
        headers={"authorization": f"Bearer {token}", "content-type": "application/json", **headers},
    )


def _created(source: str, ticket: str, at: datetime) -> dict[str, object]:
    return {**event("created", at, ticket, priority="P1").model_dump(mode="json"), "source": source}


def test_accepted_events_are_counted_by_source_and_wait_on_the_queue(
    ingest: tuple[TestClient, redis.Redis],
) -> None:
    """Three events from one source: ingested 3 for that source, and the events queue is 3 deep."""
    http, _redis = ingest
    source, now = DESK, datetime.now(UTC)
    batch = [_created(source, f"T-{i}", now) for i in range(2)]
    assert _post(http, batch, token=DESK_TOKEN).status_code == 202
    assert _post(http, _created(source, "T-9", now), token=DESK_TOKEN).status_code == 202
    scraped = Scrape(http.get("/metrics", headers=READ).text)
    assert scraped("escalera_events_ingested_total", source=source) == 3
    assert scraped("escalera_queue_depth", queue="events") == 3
    assert scraped("escalera_queue_depth", queue="fire") == 0


def test_refused_requests_are_counted_by_source_and_reason_never_by_an_attackers_path(
    ingest: tuple[TestClient, redis.Redis],
) -> None:
    """Wrong token, bad JSON, a bad Zendesk signature and an unknown source: each counted once."""
    http, _redis = ingest
    before = Scrape(http.get("/metrics", headers=READ).text)
    made_up = f"evil-{uuid.uuid4().hex}"
    assert _post(http, {}, token="wrong").status_code == 401
    assert _post(http, "a string, not an event").status_code == 422
    malformed = http.post(
        "/v1/events",
        content=b"{not json",
        headers={"authorization": f"Bearer {TOKEN}", "content-type": "application/json"},
    )
    assert malformed.status_code == 400
    body = b'{"ticket": {}}'
    signed = sign_zendesk(body, "another-secret", datetime.now(UTC))
    zendesk = http.post(
        "/v1/webhooks/zendesk",
        content=body,
        headers={"content-type": "application/json", **signed},
    )
    assert zendesk.status_code == 401
    assert http.post(f"/v1/webhooks/{made_up}", content=b"{}").status_code == 400
    after = Scrape(http.get("/metrics", headers=READ).text)

    def moved(source: str, reason: str) -> float:
        name = "escalera_ingest_refused_total"
        return after(name, source=source, reason=reason) - before(
            name, source=source, reason=reason
        )

    assert moved("api", "unauthorized") == 1
    assert moved("api", "invalid") == 1
    assert moved("api", "malformed") == 1
    assert moved("zendesk", "unauthorized") == 1
    assert moved("unknown", "malformed") == 1
    assert made_up not in after.text
    assert after("escalera_queue_depth", queue="events") == 0  # nothing refused was queued


@pytest.fixture
def routed(
    policy_dir: Path, configured: None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[JsonSink]:
    """The preset paging ``oncall`` (a sink on 127.0.0.1) and a route to an unset channel."""
    preset = policy_dir / "soporte-completo.yaml"
    preset.write_text(preset.read_text() + ROUTES)
    runtime.cache_clear()
    sink = JsonSink()
    monkeypatch.setenv("ESCALERA_CHANNEL_ONCALL", sink.url())
    yield sink
    sink.close()


def _fire_everything_due(monkeypatch: pytest.MonkeyPatch) -> tuple[list[int], list[int]]:
    """Claim what is due now and run the fire task on it (it delivers what it writes): the
    notifications written, and those it queued again for a retry."""
    retried: list[int] = []
    monkeypatch.setattr(
        tasks.deliver_notifications_task,
        "apply_async",
        lambda args, **_: retried.extend(args[0]),
    )
    ids = runtime().timers.claim(datetime.now(UTC))
    tasks.fire_checkpoints_task.run(ids)
    with runtime().sessions() as s:
        written = s.scalars(select(Notification.id).where(Notification.checkpoint_id.in_(ids)))
        return sorted(written), retried


def _statuses(ids: list[int]) -> list[str]:
    with runtime().sessions() as s:
        return sorted(s.scalars(select(Notification.status).where(Notification.id.in_(ids))))


def test_an_overdue_ticket_moves_applied_armed_fired_lateness_and_sent(
    routed: JsonSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A P1 created 40 minutes ago: its 75 %, 90 % and breach checkpoints fire 17.5, 13 and 10 minutes late."""
    before = scrape()
    source = f"desk-{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr(metrics, "_labelled", frozenset({source}))  # a source the worker knows
    created = _created(source, "M-1", datetime.now(UTC) - timedelta(minutes=40))
    assert tasks.apply_event_task.run(created) == "applied"
    assert tasks.apply_event_task.run(created) == "duplicate"
    notifications, _ = _fire_everything_due(monkeypatch)
    outcomes = _statuses(notifications)
    after = scrape()

    def moved(name: str, **labels: str) -> float:
        return after(name, **labels) - before(name, **labels)

    assert after("escalera_events_applied_total", source=source, outcome="applied") == 1
    assert after("escalera_events_applied_total", source=source, outcome="duplicate") == 1
    assert moved("escalera_checkpoints_armed_total", kind="warning") == 2
    assert moved("escalera_checkpoints_armed_total", kind="breach") == 1
    assert moved("escalera_checkpoints_fired_total", kind="warning") == 2
    assert moved("escalera_checkpoints_fired_total", kind="breach") == 1
    lateness = "escalera_checkpoint_firing_lateness_seconds"
    assert moved(f"{lateness}_bucket", kind="breach", le="300.0") == 0  # 10 minutes late
    assert moved(f"{lateness}_bucket", kind="breach", le="900.0") == 1
    assert moved(f"{lateness}_bucket", kind="warning", le="900.0") == 1  # the 90 %: 13 minutes
    assert moved(f"{lateness}_bucket", kind="warning", le="3600.0") == 2  # the 75 %: 17.5
    assert 600 <= moved(f"{lateness}_sum", kind="breach") < 660
    assert sorted(outcomes) == ["dead", "sent", "sent", "sent"]
    assert moved("escalera_notifications_total", scheme="json", outcome="sent") == 3
    assert moved("escalera_notifications_total", scheme="none", outcome="dead") == 1
    assert "127.0.0.1" not in after.text  # a channel's URL is never a label


def test_the_fire_task_counts_claims_it_did_not_fire_repeated_or_gone(
    routed: JsonSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch handed out a second time counts its checkpoints as fired already (repeated
    claims); a breach met between its claim and its task counts as gone (claimed once)."""
    monkeypatch.setattr(tasks, "deliver_soon", lambda *_: None)
    source, now = f"desk-{uuid.uuid4().hex[:8]}", datetime.now(UTC)
    assert tasks.apply_event_task.run(_created(source, "M-2", now - timedelta(minutes=40)))
    ids = runtime().timers.claim(now)
    assert tasks.fire_checkpoints_task.run(ids) == 3
    before = scrape()
    assert tasks.fire_checkpoints_task.run(ids) == 0  # the same batch again
    late = _created(source, "M-3", now - timedelta(minutes=25))  # its 75 % warning is due
    assert tasks.apply_event_task.run(late)
    claimed = runtime().timers.claim(now)
    answered = now - timedelta(minutes=3)  # before the warning fell due; it arrives late
    reply = {**event("agent_replied", answered, "M-3").model_dump(mode="json"), "source": source}
    assert tasks.apply_event_task.run(reply) == "applied"  # met: the warning is deleted
    assert tasks.fire_checkpoints_task.run(claimed) == 0
    after = scrape()
    skipped = "escalera_checkpoints_skipped_total"
    assert after(skipped, reason="fired") - before(skipped, reason="fired") == 3
    assert after(skipped, reason="gone") - before(skipped, reason="gone") == len(claimed) == 1


def test_a_failing_channel_counts_each_failed_attempt_by_scheme(
    routed: JsonSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sink answers 500: the breach page's attempt is counted failed, by its scheme only."""
    routed.failing = True
    tasks.apply_event_task.run(_created("api", "M-2", datetime.now(UTC) - timedelta(minutes=31)))
    before = scrape()
    notifications, retried = _fire_everything_due(monkeypatch)
    with runtime().sessions() as s:
        pages = s.scalars(
            select(Notification.id).where(
                Notification.channel == "oncall", Notification.id.in_(notifications)
            )
        ).all()
    assert sorted(retried) == sorted(pages)  # each failed target is tried again later
    after = scrape()
    assert (
        after("escalera_notifications_total", scheme="json", outcome="failed")
        - before("escalera_notifications_total", scheme="json", outcome="failed")
        == len(pages)
        == 3
    )


def test_fire_and_deliver_log_the_checkpoint_ticket_and_source_never_the_url(
    routed: JsonSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each fired checkpoint is one log line naming it; each delivery names its checkpoint and channel."""
    tasks.apply_event_task.run(
        _created("zendesk", "L-1", datetime.now(UTC) - timedelta(minutes=31))
    )
    for logging_module in (tasks, firing_log):  # loggers not cached before capture_logs
        monkeypatch.setattr(logging_module, "log", structlog.get_logger("escalera.worker"))
    with capture_logs() as logs:
        notifications, _ = _fire_everything_due(monkeypatch)
    with runtime().sessions() as s:
        ids = {key: cid for key, cid in s.execute(select(Checkpoint.key, Checkpoint.id))}
    fired = [line for line in logs if line["event"] == "checkpoint_fired"]
    assert sorted((line["key"], line["checkpoint"]) for line in fired) == sorted(
        (key, ids[key])
        for key in (
            "first_response:warning:75",
            "first_response:warning:90",
            "first_response:breach",
        )
    )
    assert {(line["source"], line["ticket_id"], line["kind"]) for line in fired} >= {
        ("zendesk", "L-1", "breach")
    }
    assert all(line["lateness_s"] >= 55 for line in fired)
    delivered = [line for line in logs if line["event"] == "notification_delivery"]
    assert len(delivered) == len(notifications) == 4
    assert all(line["source"] == "zendesk" and line["ticket_id"] == "L-1" for line in delivered)
    assert {line["checkpoint"] for line in delivered} <= set(ids.values())
    assert {(line["channel"], line["scheme"]) for line in delivered} == {
        ("oncall", "json"),
        ("nowhere", "none"),
    }
    assert str(routed.port) not in repr(logs)


def test_a_storm_is_one_line_for_its_firing_and_one_per_digest(
    routed: JsonSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four tickets overdue at once: their twelve checkpoints fire in one batch, logged as one
    line naming every checkpoint and ticket; their twelve pages go out as one digest, logged as
    one line naming every notification; the four lone dead-ends keep a line each."""
    created = datetime.now(UTC) - timedelta(minutes=31)
    for n in range(4):
        tasks.apply_event_task.run(_created("zendesk", f"S-{n}", created))
    for logging_module in (tasks, firing_log):  # loggers not cached before capture_logs
        monkeypatch.setattr(logging_module, "log", structlog.get_logger("escalera.worker"))
    with capture_logs() as logs:
        notifications, _ = _fire_everything_due(monkeypatch)
    events = [line["event"] for line in logs]
    assert "checkpoint_fired" not in events
    (storm,) = [line for line in logs if line["event"] == "checkpoint_storm_fired"]
    assert len(storm["checkpoints"]) == 12 and storm["kinds"] == {"warning": 8, "breach": 4}
    assert sorted(set(storm["tickets"])) == [f"zendesk/S-{n}" for n in range(4)]
    (digest,) = [line for line in logs if line["event"] == "digest_delivery"]
    assert (digest["channel"], digest["scheme"], digest["outcome"]) == ("oncall", "json", "sent")
    assert digest["notifications"] == 12 and len(routed.received) == 1
    singles = [line for line in logs if line["event"] == "notification_delivery"]
    assert [(line["channel"], line["outcome"]) for line in singles] == [("nowhere", "dead")] * 4
    assert sorted(digest["notification_ids"] + [s["notification_id"] for s in singles]) == (
        notifications
    )
    assert str(routed.port) not in repr(logs)


def test_beat_counts_claims_and_marks_each_tick(configured: None) -> None:
    """Beat's pass: the checkpoints it hands out are counted, and its heartbeat is the tick's instant."""
    rt = runtime()
    now = datetime.now(UTC).replace(microsecond=0)
    rt.timers.arm(
        [(9001, now - timedelta(seconds=5)), (9002, now), (9003, now + timedelta(hours=1))]
    )
    rt.repeats.arm([(9004, now)])  # a page's repeat: claimed, not a checkpoint's claim
    sent: list[Sequence[int]] = []
    before = scrape()
    Dispatcher(rt.timers, sent.append, also=[(rt.repeats, sent.append)]).tick(now)
    after = scrape()
    assert after("escalera_timers_claimed_total") - before("escalera_timers_claimed_total") == 3
    claims = "escalera_checkpoint_claims_total"
    assert after(claims) - before(claims) == 2
    assert after("escalera_beat_last_tick_timestamp_seconds") == now.timestamp()


def test_beat_counts_the_passes_a_full_fire_queue_held(configured: None) -> None:
    """Backpressure shows: a pass that claimed nothing because the fire queue was full counts."""
    rt = runtime()
    now = datetime.now(UTC)
    rt.timers.arm([(9001, now)])
    held = "escalera_beat_held_ticks_total"
    before = scrape()
    Dispatcher(rt.timers, lambda _: None, queue_depth=lambda: FIRE_QUEUE_HOLD).tick(now)
    assert scrape()(held) - before(held) == 1
