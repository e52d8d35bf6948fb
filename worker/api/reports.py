"""``GET /v1/reports/...``: the reports of ``escalera report``, as JSON (or CSV).

Reports name customers and their contacts: the app mounts this router behind a key with the
``read`` scope (`worker.api.keys`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session, sessionmaker

from shared.config import Settings
from shared.directory import EMPTY, Directory
from worker.adapters.base import RejectedRequest, Unmappable
from worker.api.problems import problem
from worker.api.read_slots import ReadSlots
from worker.policies.book import LoadedPolicy, PolicyBook
from worker.report import service
from worker.report.render import to_csv
from worker.report.tickets import Period
from worker.report.trend import EVERY

DEFAULT_DAYS = 30
Format = Annotated[str, Query(pattern="^(json|csv)$")]


class BadQuery(RejectedRequest):
    """A query parameter that cannot be read: 400, naming it."""


def reports_router(
    settings: Settings,
    policies: PolicyBook,
    sessions: sessionmaker[Session],
    turns: ReadSlots | None = None,
    directory: Directory = EMPTY,
) -> APIRouter:
    """Reports evaluate tickets like a ticket read: they take the same turns (``turns``, by
    default from the settings), and their instants lie in the same window around now."""
    router = APIRouter(prefix="/v1/reports", tags=["reports"])
    turns = turns or ReadSlots(settings.ticket_reads_at_once, settings.ticket_reads_waiting)
    bounds = _Bounds.from_settings(settings)

    def policy(name: str | None) -> LoadedPolicy:
        try:
            return policies.named(name or settings.default_policy)
        except KeyError:
            raise BadQuery(f"no policy named {name!r}", field="policy") from None

    @router.get(
        "/compliance", summary="Share of promises kept, by metric, priority, plan, customer"
    )
    async def compliance(
        *,
        policy_name: Annotated[str | None, Query(alias="policy")] = None,
        start: Annotated[str | None, Query(alias="from")] = None,
        end: Annotated[str | None, Query(alias="to")] = None,
        at: str | None = None,
        every: str = "week",
        worst: Annotated[int, Query(ge=0)] = 10,
        format: Format = "json",
    ) -> Response:
        if every not in EVERY:
            raise BadQuery(f"every is one of {', '.join(EVERY)}", field="every")
        loaded = policy(policy_name)
        period = _period(loaded, start, end, at, _days_before, bounds=bounds)

        def report() -> service.Output:
            with sessions() as session:
                output, _ = service.compliance_report(
                    session, loaded, period, every=every, worst=worst
                )
            return output

        return _respond(await turns.run(report), format)

    @router.get("/at-risk", summary="Open tickets by time left to their next checkpoint")
    async def at_risk(
        *,
        policy_name: Annotated[str | None, Query(alias="policy")] = None,
        at: str | None = None,
        limit: Annotated[int | None, Query(ge=1)] = None,
        format: Format = "json",
    ) -> Response:
        loaded = policy(policy_name)
        instant = bounds.check(_instant(at, "at", ZoneInfo(loaded.policy.default_timezone)), "at")

        def report() -> service.Output:
            with sessions() as session:
                return service.at_risk_report(session, loaded, instant, limit=limit)

        return _respond(await turns.run(report), format)

    @router.get(
        "/timeline/{source}/{ticket_id}",
        summary="A ticket's events, pauses, checkpoints and notifications",
    )
    async def timeline(source: str, ticket_id: str, at: str | None = None) -> Response:
        instant = bounds.check(_instant(at, "at", ZoneInfo("UTC")), "at")

        def report() -> Response:
            with sessions() as session:
                try:
                    output = service.timeline_report(
                        session, policies, source, ticket_id, instant, directory=directory
                    )
                except service.ReportNotFound as exc:
                    return problem(404, str(exc))
            return JSONResponse(output.document)

        return await turns.run(report)

    @router.get("/allowances", summary="Tickets per customer against the yearly allowance")
    async def allowances(
        *,
        policy_name: Annotated[str | None, Query(alias="policy")] = None,
        start: Annotated[str | None, Query(alias="from")] = None,
        end: Annotated[str | None, Query(alias="to")] = None,
        at: str | None = None,
        format: Format = "json",
    ) -> Response:
        loaded = policy(policy_name)
        zone = ZoneInfo(loaded.policy.default_timezone)

        def year_start(e: datetime) -> datetime:
            return datetime.combine(date(e.astimezone(zone).year, 1, 1), time(0), tzinfo=zone)

        period = _period(loaded, start, end, at, year_start, bounds=bounds)

        def report() -> service.Output:
            with sessions() as session:
                return service.allowance_report(session, loaded, period)

        return _respond(await turns.run(report), format)

    @router.get("/acks", summary="Per route: pages sent, acknowledged, time to acknowledge")
    async def acks(
        *,
        policy_name: Annotated[str | None, Query(alias="policy")] = None,
        start: Annotated[str | None, Query(alias="from")] = None,
        end: Annotated[str | None, Query(alias="to")] = None,
        at: str | None = None,
        format: Format = "json",
    ) -> Response:
        loaded = policy(policy_name)
        period = _period(loaded, start, end, at, _days_before, bounds=bounds)

        def report() -> service.Output:
            with sessions() as session:
                return service.acks_report(session, loaded, period)

        return _respond(await turns.run(report), format)

    return router


def _days_before(end: datetime) -> datetime:
    return end - timedelta(days=DEFAULT_DAYS)


def _respond(output: service.Output, format: str) -> Response:
    if format == "csv":
        return Response(to_csv(output.sections[0]), media_type="text/csv; charset=utf-8")
    return JSONResponse(output.document)


def _period(
    loaded: LoadedPolicy,
    start: str | None,
    end: str | None,
    at: str | None,
    default_start: Callable[[datetime], datetime],
    *,
    bounds: _Bounds,
) -> Period:
    zone = ZoneInfo(loaded.policy.default_timezone)
    instant = bounds.check(_instant(at, "at", zone), "at")
    until = bounds.check(_instant(end, "to", zone), "to") if end else instant
    since = bounds.check(_instant(start, "from", zone), "from") if start else default_start(until)
    if until <= since:
        raise BadQuery("`from` must be before `to`", field="from")
    return Period(since, until, instant)


def _instant(text: str | None, field: str, zone: ZoneInfo) -> datetime:
    """Absent: now; ``2026-03-01``: its midnight in the policy's zone; else ISO with offset."""
    if text is None:
        return datetime.now(UTC)
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(0), tzinfo=zone)
        value = datetime.fromisoformat(text)
    except ValueError:
        raise BadQuery(f"`{field}` is not a date or an ISO 8601 time", field=field) from None
    if value.tzinfo is None:
        raise BadQuery(f"`{field}` needs a UTC offset, e.g. {text}+01:00", field=field)
    return value


@dataclass(frozen=True)
class _Bounds:
    """The instants a report may name: back as far as events are taken
    (``ESCALERA_MAX_EVENT_AGE_DAYS``) and a ticket read may look, ahead as far as a ticket read
    may (``ESCALERA_TICKET_READ_HORIZON_DAYS``). Beyond, evaluating every ticket at the instant
    costs seconds of CPU, or overflows the calendar."""

    back: timedelta
    ahead: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> _Bounds:
        ahead = timedelta(days=settings.ticket_read_horizon_days)
        return cls(timedelta(days=settings.max_event_age_days) + ahead, ahead)

    def check(self, instant: datetime, field: str) -> datetime:
        now = datetime.now(UTC)
        first, last = now - self.back, now + self.ahead
        if not first <= instant <= last:
            raise Unmappable(
                f"`{field}` must lie between {first:%Y-%m-%dT%H:%M:%SZ} and "
                f"{last:%Y-%m-%dT%H:%M:%SZ}",
                field=field,
            )
        return instant
