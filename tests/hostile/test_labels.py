"""Bounded metric labels (issue 13, 7): a request cannot mint ``source`` label values.

Seen: 5 requests with 5,000 distinct ``source`` values grew ``/metrics`` from 6 KB to 2.6 MB.
Ingest now refuses a source its key may not write (403), and every metric counted by source
labels a source that is not configured (``api``, a portal with a webhook, a source named in a
key or in ``ESCALERA_SOURCE_POLICIES``) as ``other``, in ingest and in the worker alike.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from shared import metrics
from shared.config import settings
from tests.hostile.gate import Gate
from tests.hostile.secrets import READER_TOKEN, TOKEN
from tests.integration.scrape import Scrape

REQUESTS, SOURCES_EACH = 5, 300  # 300 events fit the hostile app's 64 KiB body limit
AT = (datetime.now(UTC) - timedelta(hours=1)).isoformat()


@pytest.fixture
def labels_reset() -> Iterator[None]:
    """The process-wide label set back to the settings' default after the test."""
    yield
    metrics.label_sources(None)
    settings.cache_clear()


def scrape(gate: Gate) -> Scrape:
    response = gate.send("GET", "/metrics", headers={"authorization": f"Bearer {READER_TOKEN}"})
    return Scrape(response.text)


def applied(source: str) -> float:
    sample = REGISTRY.get_sample_value(
        "escalera_events_applied_total", {"source": source, "outcome": "applied"}
    )
    return sample or 0.0


def created(source: str, n: int) -> dict[str, str]:
    return {
        "event_id": f"l-{n}",
        "source": source,
        "ticket_id": f"L-{n}",
        "type": "created",
        "occurred_at": AT,
        "priority": "P1",
    }


def test_many_distinct_sources_do_not_grow_the_metrics(gate: Gate) -> None:
    """5 requests of 300 made-up sources each: refused, and /metrics does not grow with them."""
    before = scrape(gate)
    headers = {"content-type": "application/json", "authorization": f"Bearer {TOKEN}"}
    made_up = []
    for _ in range(REQUESTS):
        sources = [f"src-{uuid.uuid4().hex[:12]}" for _ in range(SOURCES_EACH)]
        made_up += sources
        body = json.dumps([created(source, n) for n, source in enumerate(sources)]).encode()
        response = gate.send("POST", "/v1/events", content=body, headers=headers)
        assert response.status_code == 403, response.text
    after = scrape(gate)
    assert not set(made_up) & after.label_values("source")
    assert len(after.text) < len(before.text) + 2_000  # a refusal counter or two, not 1,500 series


def test_a_source_not_configured_is_counted_as_other(labels_reset: None) -> None:
    """Ingested and applied events of a source nobody configured share the label `other`."""
    metrics.label_sources({"api", "zendesk"})
    before = {label: applied(label) for label in ("other", "zendesk")}
    for n in range(1_000):
        metrics.event_applied(f"made-up-{n}", "applied", [])
    metrics.event_applied("zendesk", "applied", [])
    assert (applied("other"), applied("zendesk")) == (
        before["other"] + 1_000,
        before["zendesk"] + 1,
    )
    assert applied("made-up-1") == 0
    assert metrics.source_label("made-up-1") == "other"


def test_the_sources_of_the_settings_keep_their_own_label(
    labels_reset: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker labels by its settings: api, the portals, ESCALERA_SOURCE_POLICIES, key sources."""
    monkeypatch.setenv("ESCALERA_SOURCE_POLICIES", '{"otrs": "athento"}')
    keys = [{"name": "sync", "token": "s" * 20, "scopes": ["write"], "sources": ["servicenow"]}]
    monkeypatch.setenv("ESCALERA_API_KEYS", json.dumps(keys))
    settings.cache_clear()
    metrics.label_sources(None)
    labelled = ["api", "zendesk", "freshdesk", "jira", "otrs", "servicenow"]
    assert [metrics.source_label(source) for source in labelled] == labelled
    assert metrics.source_label("otrs-2") == "other"
