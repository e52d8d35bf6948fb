"""The Grafana dashboard is built on the metrics Escalera exports, and shows every one of them."""

from __future__ import annotations

import json
import re

import pytest
from prometheus_client.metrics import MetricWrapperBase

from shared import metrics
from shared.metrics_export import QUEUE_DEPTH
from tests.deploy.files import DEPLOY

DASHBOARD = DEPLOY / "grafana" / "escalera-dashboard.json"
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def exported() -> dict[str, str]:
    """Each sample name a scrape can hold -> the metric it belongs to."""
    names = {QUEUE_DEPTH: QUEUE_DEPTH}
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            for family in value.describe():
                names |= {family.name + s: family.name for s in _SUFFIXES[family.type]}
    return names


@pytest.fixture(scope="module")
def expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    found = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert found
    return found


def test_every_expression_uses_only_metrics_that_exist(expressions: list[str]) -> None:
    known = exported()
    for expr in expressions:
        used = re.findall(r"\bescalera_[a-z_]+\b", expr)
        assert used, expr
        assert [name for name in used if name not in known] == [], expr


def test_every_metric_escalera_exports_is_on_the_dashboard(expressions: list[str]) -> None:
    shown = {
        exported()[name]
        for expr in expressions
        for name in re.findall(r"\bescalera_[a-z_]+\b", expr)
    }
    assert shown == set(exported().values())
