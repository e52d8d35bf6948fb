"""The board's routes: its pages, the at-risk data the board page polls, and its two actions
(acknowledge a page, retry a dead letter), each behind a signed-in key's scopes.

Every page needs a session (`signin`): without one a page redirects to the sign-in form; the
polled data answers 401. Pages read with the key's ``read`` scope, exactly as the API's reports
and ticket reads, and take the same turns (`ReadSlots`). Acknowledging needs ``ack`` and is a
POST, like the acknowledgement link's button; retrying a dead letter puts its event back on the
events queue, as ``POST /v1/events`` does, and needs ``write`` for its source.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode
from zoneinfo import ZoneInfo

import structlog
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.db.models import Checkpoint, DeadLetter, Notification, Ticket
from shared.events import Event
from shared.policy import Metric
from worker.api.board import operations, signin
from worker.api.board.clocks import draw_clocks
from worker.api.board.rows import FILTERS, board_rows, choices, chosen
from worker.api.board.words import LANGUAGES, words
from worker.api.body import read_body
from worker.api.keys import Key, Scope, keys
from worker.api.read_slots import ReadSlots
from worker.api.services import Services
from worker.notify.paging import acknowledge_page, arm_after_ack
from worker.policies.book import LoadedPolicy
from worker.report import queries, service
from worker.report.render import span, to_csv
from worker.report.tickets import Period
from worker.report.timeline import ticket_timeline

log = structlog.get_logger("escalera.board")

HERE = Path(__file__).parent
STATIC = HERE / "static"
LANG_COOKIE = "escalera_lang"
FORM_MAX_BYTES = 4096
COMPLIANCE_DAYS = 30  # the compliance page's period unless one is chosen
POLL_S = 5  # how often the board page asks for its rows again
_PRIVATE = {"cache-control": "no-store", "referrer-policy": "no-referrer"}

_templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def clock(at: datetime | None, zone: ZoneInfo) -> str:
    return "—" if at is None else at.astimezone(zone).strftime("%Y-%m-%d %H:%M")


_templates.filters["clock"] = clock
_templates.filters["span"] = lambda delta: span(delta) or "—"
_templates.tests["datetime"] = lambda value: isinstance(value, datetime)


class _SignIn(Exception):
    """No session: the page answers with a redirect to the sign-in form."""


@dataclass(frozen=True)
class _Visit:
    """Who asks (a signed-in key), in which language, with the session's form token."""

    key: Key
    language: str
    csrf: str
    here: str  # this page's path and query, to come back to
    query: str


@dataclass(frozen=True)
class _Board:
    services: Services
    turns: ReadSlots
    now: Callable[[], datetime]

    # -- who asks ------------------------------------------------------------------------------
    def language(self, request: Request) -> str:
        chosen_language = request.cookies.get(LANG_COOKIE, "")
        if chosen_language in LANGUAGES:
            return chosen_language
        return self.default_policy().policy.language

    def visit(self, request: Request) -> _Visit:
        configured = keys(self.services.settings)
        value = request.cookies.get(signin.COOKIE, "")
        key = signin.session_key(configured, value, self.now()) if value else None
        if key is None or Scope.READ not in key.scopes:
            raise _SignIn
        query = request.url.query
        here = request.url.path + (f"?{query}" if query else "")
        csrf = signin.csrf_token(configured, value)
        return _Visit(key, self.language(request), csrf, here, query)

    def form_ok(self, request: Request, form: Mapping[str, str]) -> bool:
        value = request.cookies.get(signin.COOKIE, "")
        configured = keys(self.services.settings)
        return signin.csrf_valid(configured, value, form.get("csrf", ""))

    # -- what is read --------------------------------------------------------------------------
    def default_policy(self) -> LoadedPolicy:
        return self.services.policies.named(self.services.settings.default_policy)

    def policy(self, name: str | None) -> LoadedPolicy:
        try:
            return self.services.policies.named(name or self.services.settings.default_policy)
        except KeyError:
            return self.default_policy()

    def page(self, name: str, visit: _Visit, status: int = 200, **values: Any) -> HTMLResponse:
        html = _templates.get_template(name).render(
            t=words(visit.language), visit=visit, poll_s=POLL_S, **values
        )
        return HTMLResponse(html, status_code=status, headers=_PRIVATE)


def board_router(services: Services, turns: ReadSlots, now: Callable[[], datetime]) -> APIRouter:
    """The board's pages and actions; ``now`` is the clock (a test puts its own)."""
    router = APIRouter(include_in_schema=False)
    board = _Board(services, turns, now)
    _sign_in_routes(router, board)
    _at_risk_routes(router, board)
    _ticket_routes(router, board)
    _compliance_routes(router, board)
    _operations_routes(router, board)
    return router


def sign_in_redirect(request: Request, _exc: Exception) -> Response:
    """The answer to a page asked for without a session (the app registers it for `_SignIn`)."""
    if request.url.path.endswith(".json"):
        return JSONResponse({"detail": "sign in first"}, status_code=401, headers=_PRIVATE)
    back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/sign-in?{urlencode({'next': back})}", status_code=303)


SIGN_IN_REQUIRED = _SignIn


# -- signing in ------------------------------------------------------------------------------


def _sign_in_routes(router: APIRouter, board: _Board) -> None:
    @router.get("/sign-in")
    def sign_in_form(request: Request, next: str = "/") -> Response:
        return _sign_in_page(board, request, _local(next), None)

    @router.post("/sign-in")
    async def sign_in(request: Request) -> Response:
        form = await _form(request)
        back = _local(form.get("next", "/"))
        configured = keys(board.services.settings)
        key = signin.key_of_token(configured, form.get("token", "")[: signin.TOKEN_MAX_CHARS])
        if key is None:
            log.info("board_sign_in_refused", reason="unknown token")
            return _sign_in_page(board, request, back, "bad_token", 401)
        if Scope.READ not in key.scopes:
            log.info("board_sign_in_refused", key=key.name, reason="no read scope")
            return _sign_in_page(board, request, back, "no_read", 403)
        token = next(token for k, token in configured if k == key)
        response = RedirectResponse(back, status_code=303)
        response.set_cookie(
            signin.COOKIE,
            signin.session_value(key, token, board.now()),
            max_age=int(signin.SESSION_LENGTH.total_seconds()),
            secure=True,
            httponly=True,
            samesite="strict",
        )
        log.info("board_signed_in", key=key.name)
        return response

    @router.post("/sign-out")
    def sign_out() -> Response:
        response = RedirectResponse("/sign-in", status_code=303)
        response.delete_cookie(signin.COOKIE, secure=True, httponly=True, samesite="strict")
        return response

    @router.get("/language")
    def language(to: str = "en", next: str = "/") -> Response:
        response = RedirectResponse(_local(next), status_code=303)
        if to in LANGUAGES:
            response.set_cookie(LANG_COOKIE, to, max_age=365 * 86400, samesite="lax")
        return response


def _sign_in_page(
    board: _Board, request: Request, back: str, problem: str | None, status: int = 200
) -> HTMLResponse:
    language = board.language(request)
    html = _templates.get_template("sign_in.html").render(
        t=words(language), visit=None, next=back, problem=problem
    )
    return HTMLResponse(html, status_code=status, headers=_PRIVATE)


# -- the at-risk board -----------------------------------------------------------------------


def _at_risk_routes(router: APIRouter, board: _Board) -> None:
    @router.get("/")
    async def at_risk_page(request: Request) -> Response:
        visit = board.visit(request)
        loaded = board.policy(request.query_params.get("policy"))
        found = await board.turns.run(_at_risk, board, loaded, dict(request.query_params))
        return board.page(
            "board.html",
            visit,
            policy=loaded.name,
            policies=sorted(board.services.policies.edition.policies),
            zone=ZoneInfo(loaded.policy.default_timezone),
            filters={f: request.query_params.get(f, "") for f in FILTERS},
            **found,
        )

    @router.get("/board/at-risk.json")
    async def at_risk_data(request: Request) -> Response:
        board.visit(request)
        loaded = board.policy(request.query_params.get("policy"))
        found = await board.turns.run(_at_risk, board, loaded, dict(request.query_params))
        return JSONResponse(
            {
                "at": found["at"].isoformat(),
                "rows": [row.to_json() for row in found["rows"]],
                "total": found["total"],
            },
            headers=_PRIVATE,
        )


def _at_risk(board: _Board, loaded: LoadedPolicy, filters: dict[str, str]) -> dict[str, Any]:
    at = board.now()
    with board.services.sessions() as session:
        tickets = queries.load_tickets(session, loaded, at, open_only=True)
    rows = board_rows(tickets, at)
    return {"at": at, "rows": chosen(rows, filters), "total": len(rows), "choices": choices(rows)}


# -- a ticket --------------------------------------------------------------------------------


def _ticket_routes(router: APIRouter, board: _Board) -> None:
    @router.get("/tickets/{source}/{ticket_id:path}")
    async def ticket_page(request: Request, source: str, ticket_id: str) -> Response:
        visit = board.visit(request)
        found = await board.turns.run(_ticket, board, source, ticket_id)
        if found is None:
            return board.page("missing.html", visit, status=404)
        acked = request.query_params.get("acked") == "1"
        return board.page("ticket.html", visit, acked=acked, **found)

    @router.post("/board/ack")
    async def acknowledge(request: Request) -> Response:
        visit = board.visit(request)
        form = await _form(request)
        if not board.form_ok(request, form):
            return board.page("refused.html", visit, status=403, reason="csrf")
        if Scope.ACK not in visit.key.scopes:
            return board.page("refused.html", visit, status=403, reason="ack_needs_scope")
        done = await board.turns.run(_acknowledge, board, visit.key, form)
        if done is None:
            return board.page("missing.html", visit, status=404)
        source, ticket_id = done
        return RedirectResponse(_ticket_url(source, ticket_id) + "?acked=1", status_code=303)


def _ticket(board: _Board, source: str, ticket_id: str) -> dict[str, Any] | None:
    at = board.now()
    with board.services.sessions() as session:
        row = queries.find_ticket(session, source, ticket_id)
        if row is None:
            return None
        loaded = board.services.policies.named(row.policy)
        events = queries.events_of(session, row)
        found = list(queries.evaluate_tickets(loaded, [row], {row.id: events}, at))
        if not found:
            return None
        checkpoints = queries.checkpoints_of(session, row)
        notes = queries.notifications_of(session, row)
    ticket = found[0]
    entries = ticket_timeline(
        loaded.policy, events, checkpoints, notes, at, directory=board.services.directory
    )
    ids = {c.key: c.id for c in checkpoints}
    repeating = {r.name for r in loaded.policy.routes if r.repeat is not None}
    acked = {(n.checkpoint_id, n.route) for n in notes if n.acknowledged_at is not None}
    pages: dict[tuple[int, str], int] = {}  # each page nobody acknowledged: its latest repeat
    for n in notes:
        if n.route in repeating and (n.checkpoint_id, n.route) not in acked:
            pages[n.checkpoint_id, n.route] = max(
                n.repeat, pages.get((n.checkpoint_id, n.route), 0)
            )
    return {
        "ticket": ticket,
        "zone": ticket.sla.tz,
        "entries": entries,
        "ids": ids,
        "pages": pages,
        "clocks": draw_clocks(ticket.sla, _pauses(entries, at), _calendar_of(loaded, ticket), at),
        "context": {k: v for k, v in ticket.context.to_json().items() if v},
        "at": at,
    }


def _pauses(entries: list[Any], at: datetime) -> list[tuple[datetime, datetime | None]]:
    stretches: list[tuple[datetime, datetime | None]] = []
    for entry in entries:
        if entry.kind == "pause":
            stretches.append((entry.at, None))
        elif entry.kind == "resume" and stretches and stretches[-1][1] is None:
            stretches[-1] = (stretches[-1][0], entry.at)
    return stretches


def _calendar_of(loaded: LoadedPolicy, ticket: Any) -> Callable[[str, datetime], bool]:
    """``is_open(metric, at)`` on the calendar each metric of the ticket is measured on."""
    policy, sla = loaded.policy, ticket.sla
    target = policy.target_for(sla.plan, sla.priority)
    plan_calendar = policy.plans[sla.plan].calendar

    def is_open(metric: str, at: datetime) -> bool:
        name = (target.calendar_name(Metric(metric)) if target else None) or plan_calendar
        return loaded.calendars.get(name, sla.metrics[metric].tz.key).is_open(at)

    return is_open


def _acknowledge(board: _Board, key: Key, form: Mapping[str, str]) -> tuple[str, str] | None:
    """Acknowledge the page of a checkpoint on a route, by the key's name: its ticket, or None
    when there is no such page."""
    try:
        checkpoint_id = int(form.get("checkpoint_id", ""))
    except ValueError:
        return None
    route = form.get("route", "")
    with board.services.sessions.begin() as session:
        checkpoint = session.get(Checkpoint, checkpoint_id)
        latest = _latest_notification(session, checkpoint_id, route)
        if checkpoint is None or latest is None:
            return None
        ticket = session.get_one(Ticket, checkpoint.ticket_pk)
        where, what = (ticket.source, ticket.ticket_id), checkpoint.key
        done = acknowledge_page(
            session,
            checkpoint_id,
            route,
            key=latest.dedupe_key,
            now=board.now(),
            by=key.name,
            via="board",
            policies=board.services.policies,
        )
    if done is not None:
        arm_after_ack(board.services.repeats, done, done.at)
    log.info(
        "page_acknowledged",
        source=where[0],
        ticket_id=where[1],
        checkpoint=what,
        route=route,
        via="board",
        by=key.name,
        first=bool(done and done.first),
    )
    return where


def _latest_notification(session: Session, checkpoint_id: int, route: str) -> Notification | None:
    query = (
        select(Notification)
        .where(Notification.checkpoint_id == checkpoint_id, Notification.route == route)
        .order_by(Notification.id.desc())
    )
    return session.scalars(query).first()


def _ticket_url(source: str, ticket_id: str) -> str:
    return f"/tickets/{source}/{ticket_id}"


# -- compliance ------------------------------------------------------------------------------


def _compliance_routes(router: APIRouter, board: _Board) -> None:
    @router.get("/compliance")
    async def compliance_page(request: Request) -> Response:
        visit = board.visit(request)
        loaded = board.policy(request.query_params.get("policy"))
        chosen_period = _chosen_period(board, loaded, request.query_params)
        if isinstance(chosen_period, str):
            return board.page("refused.html", visit, status=400, reason=chosen_period)
        period, first, last = chosen_period
        output = await board.turns.run(_compliance, board, loaded, period)
        zone = ZoneInfo(loaded.policy.default_timezone)
        query = {"policy": loaded.name, "from": first, "to": last, "at": period.at.isoformat()}
        return board.page(
            "compliance.html",
            visit,
            policy=loaded.name,
            policies=sorted(board.services.policies.edition.policies),
            first=first,
            last=last,
            period=period,
            zone=zone,
            document=output.document,
            csv_url="/compliance.csv?" + urlencode(query),
        )

    @router.get("/compliance.csv")
    async def compliance_csv(request: Request) -> Response:
        board.visit(request)
        loaded = board.policy(request.query_params.get("policy"))
        chosen_period = _chosen_period(board, loaded, request.query_params)
        if isinstance(chosen_period, str):
            return Response(chosen_period, status_code=400, media_type="text/plain")
        period, first, last = chosen_period
        output = await board.turns.run(_compliance, board, loaded, period)
        name = f"compliance-{loaded.name}-{first}-{last}.csv"
        return Response(
            to_csv(output.sections[0]),
            media_type="text/csv; charset=utf-8",
            headers={**_PRIVATE, "content-disposition": f'attachment; filename="{name}"'},
        )


def _compliance(board: _Board, loaded: LoadedPolicy, period: Period) -> service.Output:
    with board.services.sessions() as session:
        output, _points = service.compliance_report(session, loaded, period)
    return output


def _chosen_period(
    board: _Board, loaded: LoadedPolicy, query: Mapping[str, str]
) -> tuple[Period, str, str] | str:
    """Tickets created from the first day to the last, both included (the policy's zone), as
    of ``at`` (default now); or the word of what is wrong."""
    zone = ZoneInfo(loaded.policy.default_timezone)
    now = board.now()
    today = now.astimezone(zone).date()
    try:
        last = date.fromisoformat(query.get("to") or today.isoformat())
        first = date.fromisoformat(
            query.get("from") or (last - timedelta(days=COMPLIANCE_DAYS)).isoformat()
        )
        at = datetime.fromisoformat(query["at"]) if query.get("at") else now
    except ValueError:
        return "bad_period"
    settings = board.services.settings
    earliest = now - timedelta(days=settings.max_event_age_days + settings.ticket_read_horizon_days)
    latest = now + timedelta(days=settings.ticket_read_horizon_days)
    start = datetime.combine(first, time(0), tzinfo=zone)
    end = datetime.combine(last + timedelta(days=1), time(0), tzinfo=zone)
    if at.tzinfo is None or not earliest <= at <= latest or not earliest <= start < end <= latest:
        return "bad_period"
    return Period(start, end, at), first.isoformat(), last.isoformat()


# -- operations ------------------------------------------------------------------------------


def _operations_routes(router: APIRouter, board: _Board) -> None:
    @router.get("/operations")
    async def operations_page(request: Request) -> Response:
        visit = board.visit(request)
        found = await board.turns.run(_operations, board)
        retried = request.query_params.get("retried")
        return board.page("operations.html", visit, retried=retried, **found)

    @router.post("/operations/dead-letters/{dead_id}/retry")
    async def retry(request: Request, dead_id: int) -> Response:
        visit = board.visit(request)
        form = await _form(request)
        if not board.form_ok(request, form):
            return board.page("refused.html", visit, status=403, reason="csrf")
        with board.services.sessions() as session:
            row = session.get(DeadLetter, dead_id)
            payload = row.payload if row is not None else None
        if payload is None:
            return board.page("missing.html", visit, status=404)
        try:
            event = Event.model_validate(payload)
        except ValidationError:
            return board.page("refused.html", visit, status=422, reason="unreadable")
        if Scope.WRITE not in visit.key.scopes or event.source not in visit.key.sources:
            return board.page("refused.html", visit, status=403, reason="retry_needs_scope")
        await board.services.publisher.publish([event])
        with board.services.sessions.begin() as session:
            stored = session.get_one(DeadLetter, dead_id)
            stored.retried_at = board.now()
        log.info("dead_letter_retried", dead_letter=dead_id, key=visit.key.name, via="board")
        return RedirectResponse(f"/operations?retried={dead_id}", status_code=303)


def _operations(board: _Board) -> dict[str, Any]:
    services = board.services
    with services.sessions() as session:
        dead = operations.dead_letters(session)
        pages = operations.unacked_pages(session, services.policies)
        timers = operations.timer_state(
            session, services.timers, services.repeats, services.queue_depth
        )
    edition = services.policies.edition
    settings = services.settings
    return {
        "dead": dead,
        "pages": pages,
        "timers": timers,
        "edition": edition,
        "policy_rows": operations.policy_rows(
            services.policies, settings.default_policy, dict(settings.source_policies)
        ),
        "zone": ZoneInfo(board.default_policy().policy.default_timezone),
        "at": board.now(),
    }


# -- forms -----------------------------------------------------------------------------------


async def _form(request: Request) -> dict[str, str]:
    """A urlencoded form's fields (the first value of each)."""
    body = await read_body(request, FORM_MAX_BYTES)
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


def _local(target: str) -> str:
    """Only a path of this site is somewhere to go back to (never ``//elsewhere``)."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def now_utc() -> datetime:
    return datetime.now(UTC)
