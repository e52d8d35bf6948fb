"""Health probes, open to anyone (a load balancer has no key): ``/healthz``, ``/readyz``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from worker.api.services import Services


def probes_router(services: Services) -> APIRouter:
    router = APIRouter(tags=["probes"])

    @router.get("/healthz", summary="Liveness")
    async def healthz() -> dict[str, str]:
        # On the event loop itself, never the thread pool that heavy reads may fill: the
        # liveness probe answers while the process serves anything (bench/read_load_bench.py).
        return {"status": "ok"}

    @router.get(
        "/readyz", summary="Readiness: the database and Redis answer; the policies in force"
    )
    def readyz() -> Response:
        checks = {
            "database": _database_answers(services.sessions),
            "redis": _redis_answers(services.redis_ping),
        }
        status = 200 if all(checks.values()) else 503
        # Stale policies (the folder does not validate; the last good copy runs) are shown, not
        # a 503: every replica restarting on the same broken folder would otherwise leave the
        # load balancer with none, and no event would get in (docs/operations.md).
        edition = services.policies.edition
        policies = {
            "hash": edition.hash,
            "origin": edition.origin.value,
            "stale": edition.stale,
            "loaded_at": edition.loaded_at.isoformat(),
        }
        return JSONResponse(
            {"ready": status == 200, "checks": checks, "policies": policies}, status_code=status
        )

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
