"""``GET /metrics``: Prometheus metrics of every ingest process, and the queues' depths.

Mounted behind a key with the ``read`` scope (`worker.api.keys`): Prometheus sends it as
``authorization: {credentials_file: ...}`` (deploy/prometheus.yml).
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shared.metrics_export import scrape_registry
from worker.api.services import Services


def scrape_router(services: Services) -> APIRouter:
    router = APIRouter(tags=["probes"])
    registry = scrape_registry(services.queue_depth)

    @router.get("/metrics", summary="Prometheus metrics of every ingest process, and queue depths")
    def metrics_text() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router
