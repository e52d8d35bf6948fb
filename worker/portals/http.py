"""One JSON client for the portals' REST APIs: authenticated, bounded, and patient with limits.

Zendesk, Jira and Freshdesk all answer a client that asks too often with 429 and a
``Retry-After`` in seconds (Freshdesk and Zendesk also on 503 during maintenance). The client
waits what the portal asks (at most ``max_wait_s`` a time, through an injected ``sleep``, so
tests never wait) and tries again, up to ``max_tries``; any other error is raised at once as a
`PortalError` naming the method, the path and the status, never the credentials.

The standard library's urllib is enough for a few paged GETs and POSTs: no HTTP dependency.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from shared.errors import EscaleraError

log = structlog.get_logger("escalera.portals")

_PATIENT = (429, 503)  # the portal asks us to come back later


class PortalError(EscaleraError):
    """A portal API call failed: what was asked, and what the portal answered."""

    def __init__(self, method: str, path: str, status: int | None, reason: str) -> None:
        self.status = status
        where = f"{method} {path}"
        super().__init__(f"{where}: {status} {reason}" if status else f"{where}: {reason}")


@dataclass(frozen=True)
class Credentials:
    """How a portal's API is signed in to: Basic with a user and a token (Zendesk's
    ``user/token``, Jira's e-mail and API token, Freshdesk's API key and ``X``)."""

    user: str
    token: str

    def header(self) -> str:
        raw = f"{self.user}:{self.token}".encode()
        return f"Basic {base64.b64encode(raw).decode()}"

    def __repr__(self) -> str:  # never print the token
        return f"Credentials(user={self.user!r}, token='**********')"


@dataclass
class PortalApi:
    """JSON over HTTPS to one portal (``base_url``: ``https://acme.zendesk.com``)."""

    base_url: str
    credentials: Credentials | None = None
    timeout_s: float = 30.0
    max_tries: int = 5
    max_wait_s: float = 120.0
    sleep: Callable[[float], None] = time.sleep
    waited_s: float = field(default=0.0, init=False)  # all the Retry-After waits, for reports

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """The JSON a GET of ``path`` (or of a full URL the portal gave, for the next page)
        answers, with ``params`` as its query."""
        url = self._url(path)
        if params:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(params, doseq=True)
        return self._call("GET", url, None)

    def post(self, path: str, body: Any) -> Any:
        return self._call("POST", self._url(path), json.dumps(body).encode())

    def put(self, path: str, body: Any) -> Any:
        return self._call("PUT", self._url(path), json.dumps(body).encode())

    def _url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url.rstrip('/')}/{path.lstrip('/')}"

    def _call(self, method: str, url: str, body: bytes | None) -> Any:
        shown = urllib.parse.urlsplit(url).path
        for attempt in range(1, self.max_tries + 1):
            request = urllib.request.Request(url, data=body, method=method)
            request.add_header("Accept", "application/json")
            if body is not None:
                request.add_header("Content-Type", "application/json")
            if self.credentials is not None:
                request.add_header("Authorization", self.credentials.header())
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as answer:
                    raw = answer.read()
                    return json.loads(raw) if raw.strip() else None
            except urllib.error.HTTPError as exc:
                if exc.code not in _PATIENT or attempt == self.max_tries:
                    raise PortalError(method, shown, exc.code, _reason(exc)) from exc
                wait = _retry_after(exc.headers.get("Retry-After"), self.max_wait_s)
                log.warning(
                    "portal_busy", path=shown, status=exc.code, retry_in_s=wait, attempt=attempt
                )
                self.waited_s += wait
                self.sleep(wait)
            except (urllib.error.URLError, TimeoutError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                raise PortalError(method, shown, None, f"no answer: {reason}") from exc
            except ValueError as exc:
                raise PortalError(method, shown, 200, f"not JSON: {exc}") from exc
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def _retry_after(value: str | None, cap: float) -> float:
    """Seconds to wait: the header's (a number; an HTTP date counts as a minute), else 5."""
    if value is None:
        return min(5.0, cap)
    try:
        return max(0.0, min(float(value), cap))
    except ValueError:
        return min(60.0, cap)


def _reason(exc: urllib.error.HTTPError) -> str:
    """The status's reason and the start of the portal's own message, on one line."""
    try:
        text = exc.read(300).decode("utf-8", "replace")
    except OSError:
        text = ""
    said = " ".join(text.split())
    return f"{exc.reason}: {said}" if said else str(exc.reason)
