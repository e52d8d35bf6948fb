"""Acknowledging a page: by the signed link in its message, or by the API with a key.

Opening a link (a GET) only shows the page (`worker.notify.ack_page`): Slack's and Teams' link
previews, Outlook Safe Links and mail scanners open links by themselves. Its button POSTs, and
only that acknowledges, with the name typed in the form (or "anonymous via link"). A link
names its page by the dedupe key and expires (`worker.notify.ack_links`); links sent before
(``/v1/notifications/{id}/ack?sig=``) work the same way until their notification's
``created_at`` plus ``ESCALERA_ACK_LINK_TTL``. The API acknowledges with
``POST /v1/notifications/{id}/ack`` and a key with the ``ack`` scope, by the key's name.

Refusals are problem documents, or a small HTML page for a browser (``Accept: text/html``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import parse_qs

import structlog
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from shared.db.models import Notification
from shared.text import REPLACEMENT, storable
from worker.adapters.base import Unauthorized
from worker.api.body import read_body
from worker.api.keys import Scope, authorize
from worker.api.problems import problem
from worker.api.services import Services
from worker.notify.ack_links import (
    ACK_PATH,
    MAX_ROW_ID,
    PageKey,
    expires_at,
    parse_key,
    signature_valid,
)
from worker.notify.ack_page import NAME_MAX, Acked, done_page, refused_page, show_page
from worker.notify.facts import page_facts
from worker.notify.messages import MessageFacts, render
from worker.notify.paging import (
    ANONYMOUS,
    Acknowledged,
    ack_signature_valid,
    acknowledge_page,
    acknowledgement,
    arm_after_ack,
)
from worker.notify.safe_text import one_line

log = structlog.get_logger("escalera.ingest")
FORM_MAX_BYTES = 4096  # a name typed in the form, with room to spare
MAX_EXP = 2**40  # Unix seconds: far past any link's expiry, well inside a datetime

NotificationId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
Key = Annotated[str, Query(min_length=1, max_length=500, description="the page's dedupe key")]
Exp = Annotated[int, Query(ge=0, le=MAX_EXP, description="when the link expires (Unix seconds)")]
Sig = Annotated[str, Query(max_length=200, description="HMAC-SHA256 of key and exp, hex")]


def ack_clock() -> datetime:
    """The instant a request is answered at (a test puts its own clock in its place)."""
    return datetime.now(UTC)


Now = Annotated[datetime, Depends(ack_clock)]


@dataclass(frozen=True)
class _Target:
    """The page a request is about, and until when its link works (None: no expiry, the API)."""

    page: PageKey
    key: str
    expires: datetime | None


@dataclass(frozen=True)
class _Desk:
    """What the routes do: check a link, show its page, acknowledge it."""

    services: Services

    def secret(self) -> str:
        config = self.services.settings
        if config.ack_secret is None:
            raise Unauthorized("acknowledgement links are not configured", field="sig")
        return config.ack_secret.get_secret_value()

    def linked(self, key: str, exp: int, sig: str) -> _Target:
        page = parse_key(key) if signature_valid(self.secret(), key, exp, sig) else None
        if page is None:
            raise Unauthorized("this acknowledgement link is not valid", field="sig")
        return _Target(page, key, expires_at(exp))

    def old_link(self, notification_id: int, sig: str) -> _Target | None:
        """A link sent before links named their dedupe key: it expires with its notification's
        ``created_at`` plus the links' lifetime."""
        if not ack_signature_valid(self.secret(), notification_id, sig):
            raise Unauthorized("this acknowledgement link is not valid", field="sig")
        return self.by_id(notification_id, expiring=True)

    def by_id(self, notification_id: int, *, expiring: bool) -> _Target | None:
        with self.services.sessions() as session:
            note = session.get(Notification, notification_id)
        if note is None:
            return None
        page = PageKey(note.checkpoint_id, note.route, note.channel, str(note.repeat))
        expires = note.created_at + self.services.settings.ack_link_ttl if expiring else None
        return _Target(page, note.dedupe_key, expires)

    def show(self, request: Request, target: _Target | None, now: datetime) -> Response:
        with self.services.sessions() as session:
            found = self._facts(session, target)
            if target is None or found is None:
                return _refused(request, 404, "this page is not known (any more)")
            if target.expires is not None and now > target.expires:
                return _expired(request, found[0], target.expires)
            stands = acknowledgement(session, target.page.checkpoint_id, target.page.route)
        language, facts = found
        acked = Acked(stands.acknowledged_by, stands.acknowledged_at) if stands else None
        page = show_page(language, render(language, facts, now), acked, facts.tz, _here(request))
        return HTMLResponse(page, headers=_PRIVATE)

    def acknowledge(
        self, request: Request, target: _Target | None, now: datetime, *, by: str, via: str
    ) -> Response:
        with self.services.sessions.begin() as session:
            found = self._facts(session, target)
            if target is None or found is None:
                return _refused(request, 404, "this page is not known (any more)")
            if target.expires is not None and now > target.expires:
                return _expired(request, found[0], target.expires)
            page = target.page
            done = acknowledge_page(
                session,
                page.checkpoint_id,
                page.route,
                key=target.key,
                now=now,
                by=by,
                via=via,
                policies=self.services.policies,
            )
        assert done is not None  # its checkpoint was just read
        arm_after_ack(self.services.repeats, done, now)
        language, facts = found
        log.info(
            "page_acknowledged",
            ticket_id=facts.ticket_id,
            source=facts.source,
            checkpoint=page.checkpoint_id,
            route=page.route,
            via=via,
            by=by,
            first=done.first,
        )
        if via == "api" or _wants_json(request):
            return JSONResponse(_json(done), headers=_PRIVATE)
        message = render(language, facts, now)
        html = done_page(language, message, Acked(done.by, done.at), facts.tz, first=done.first)
        return HTMLResponse(html, headers=_PRIVATE)

    def _facts(self, session: Session, target: _Target | None) -> tuple[str, MessageFacts] | None:
        if target is None:
            return None
        return page_facts(session, self.services.policies, target.page.checkpoint_id, target.key)


def acks_router(services: Services) -> APIRouter:
    router = APIRouter(tags=["acknowledgements"])
    desk = _Desk(services)

    @router.get(
        ACK_PATH,
        summary="An acknowledgement link: shows the page and its button (does not acknowledge)",
        response_class=HTMLResponse,
    )
    def show_link(request: Request, now: Now, key: Key, exp: Exp, sig: Sig) -> Response:
        return desk.show(request, desk.linked(key, exp, sig), now)

    @router.post(ACK_PATH, summary="An acknowledgement link's button: the page stops repeating")
    async def acknowledge_link(
        request: Request, now: Now, key: Key, exp: Exp, sig: Sig
    ) -> Response:
        target = desk.linked(key, exp, sig)
        by = await _typed_name(request)
        return await run_in_threadpool(desk.acknowledge, request, target, now, by=by, via="link")

    @router.get("/v1/notifications/{notification_id}/ack", include_in_schema=False)
    def show_old_link(
        notification_id: NotificationId, request: Request, now: Now, sig: str | None = None
    ) -> Response:
        if sig is None:
            raise Unauthorized(
                "an acknowledgement page opens from the link in the page (it carries `sig`); "
                "the API acknowledges with POST",
                field="sig",
            )
        return desk.show(request, desk.old_link(notification_id, sig), now)

    @router.post(
        "/v1/notifications/{notification_id}/ack",
        summary="Acknowledge a page with a key of the `ack` scope: it stops repeating",
    )
    async def acknowledge_notification(
        notification_id: NotificationId, request: Request, now: Now, sig: str | None = None
    ) -> Response:
        if sig is None:  # the API, with a key
            headers = {k.lower(): v for k, v in request.headers.items()}
            key = authorize(services.settings, headers, Scope.ACK)
            api = await run_in_threadpool(desk.by_id, notification_id, expiring=False)
            return await run_in_threadpool(
                desk.acknowledge, request, api, now, by=key.name, via="api"
            )
        target = await run_in_threadpool(desk.old_link, notification_id, sig)  # sent before
        by = await _typed_name(request)
        return await run_in_threadpool(desk.acknowledge, request, target, now, by=by, via="link")

    return router


_PRIVATE = {"cache-control": "no-store", "referrer-policy": "no-referrer"}


async def _typed_name(request: Request) -> str:
    """The name typed in the form (or sent as JSON): on one line, spaces collapsed, cut to
    `NAME_MAX`; "anonymous via link" if none."""
    body = await read_body(request, FORM_MAX_BYTES)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    name: object = None
    text = body.decode("utf-8", "replace")
    if media == "application/x-www-form-urlencoded":
        name = parse_qs(text).get("name", [""])[0]
    elif media == "application/json":
        try:
            sent = json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            sent = None
        name = sent.get("name") if isinstance(sent, dict) else None
    spaced = " ".join(name.split()) if isinstance(name, str) else ""  # breaks and runs: a space
    # a NUL or a lone surrogate (JSON can carry both) is no name a database can store
    cleaned = one_line(storable(spaced)).replace(REPLACEMENT, "")[:NAME_MAX].strip()
    return cleaned or ANONYMOUS


def _json(done: Acknowledged) -> dict[str, object]:
    return {
        "acknowledged": len(done.notifications),
        "acknowledged_at": done.at.isoformat(),
        "acknowledged_by": done.by,
        "via": done.via,
        "already": not done.first,
    }


def _here(request: Request) -> str:
    """Where the page's form posts: this link itself (a relative URL: any path prefix holds)."""
    return f"?{request.url.query}" if request.url.query else request.url.path


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "") and not _wants_html(request)


def _refused(request: Request, status: int, reason: str, language: str = "en") -> Response:
    log.info("acknowledgement_refused", path=request.url.path, status=status, reason=reason)
    if _wants_html(request):
        return HTMLResponse(refused_page(language, reason), status_code=status, headers=_PRIVATE)
    return problem(status, reason)


_EXPIRED = {
    "en": "This acknowledgement link expired at {at}: acknowledge from a newer page, or by"
    " the API.",
    "es": "Este enlace de confirmación caducó el {at}: confirma desde un aviso más reciente o"
    " con la API.",
}


def _expired(request: Request, language: str, expires: datetime) -> Response:
    said = _EXPIRED.get(language, _EXPIRED["en"]).format(at=f"{expires:%Y-%m-%d %H:%M} UTC")
    return _refused(request, 410, said, language)
