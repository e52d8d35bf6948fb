"""Health probes and metrics: ``/healthz``, ``/readyz``, ``/metrics``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from worker.ingest.services import Services
from worker.metrics_export import scrape_registry


def probes_router(services: Services) -> APIRouter:
    router = APIRouter(tags=["probes"])
    registry = scrape_registry(services.queue_depth)

    @router.get("/healthz", summary="Liveness")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/metrics", summary="Prometheus metrics of every ingest process, and queue depths")
    def metrics_text() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @router.get("/readyz", summary="Readiness: the database and Redis answer")
    def readyz() -> Response:
        checks = {
            "database": _database_answers(services.sessions),
            "redis": _redis_answers(services.redis_ping),
        }
        status = 200 if all(checks.values()) else 503
        return JSONResponse({"ready": status == 200, "checks": checks}, status_code=status)

    return router


def _database_answers(sessions: sessionmaker[Session]) -> bool:
    try:
        with sessions() as session:
            session.execute(text("SELECT 1"))
    except Exception:  # any failure at all means "not ready"
        return False
    return True


def _redis_answers(ping: Any) -> bool:
    try:
        return bool(ping())
    except Exception:  # any failure at all means "not ready"
        return False
