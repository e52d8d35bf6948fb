"""Acknowledgement links: what a page's link names, until when it works, and its signature. Pure.

A link names its page by the notification's dedupe key (`worker.notify.outbox.dedupe_key`:
checkpoint, route, channel, repeat), which exists before the page is sent, whatever becomes of
its row: a click while a delivery is still sending it, or after its transaction rolled back, finds
the checkpoint and the route it acknowledges. It carries when it expires (``exp``, Unix
seconds), and an HMAC-SHA256 of both under ``ESCALERA_ACK_SECRET``::

    https://escalera.example.com/v1/acks?key=812%3Apage%3Aoncall%3A0&exp=1767312000&sig=9f…

Opening it shows the page; only its button (a POST) acknowledges (`worker.api.acks`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import NamedTuple
from urllib.parse import quote

from shared.config import parse_link_ttl

ACK_PATH = "/v1/acks"
TTL_ENV = "ESCALERA_ACK_LINK_TTL"
DEFAULT_TTL = timedelta(hours=24)
MAX_ROW_ID = 2**63 - 1  # a BIGINT: a larger id is no row, and the database driver would raise


class PageKey(NamedTuple):
    """What a dedupe key names: the acknowledgement counts for (checkpoint, route)."""

    checkpoint_id: int
    route: str
    channel: str
    repeat: str  # a number, or ``fallback``


def parse_key(key: str) -> PageKey | None:
    """``812:page:oncall:0`` -> its parts; None if it is no dedupe key. A route's name may hold
    ``:`` (a channel's may not): the route is all between the checkpoint and the channel."""
    checkpoint, _, rest = key.partition(":")
    route_channel, _, repeat = rest.rpartition(":")
    route, _, channel = route_channel.rpartition(":")
    if not (checkpoint.isascii() and checkpoint.isdigit()) or not (route and channel and repeat):
        return None
    if not 1 <= int(checkpoint) <= MAX_ROW_ID:
        return None
    return PageKey(int(checkpoint), route, channel, repeat)


def signature(secret: str, key: str, exp: int) -> str:
    """The link's ``sig``: HMAC-SHA256 (hex) of its key and expiry."""
    signed = f"ack-link\n{key}\n{exp}".encode("utf-8", "surrogatepass")
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_valid(secret: str, key: str, exp: int, presented: str) -> bool:
    """Constant-time; any text may be presented (compared as bytes: non-ASCII is no error)."""
    expected = signature(secret, key, exp).encode()
    return hmac.compare_digest(expected, presented.encode("utf-8", "surrogatepass"))


def expires_at(exp: int) -> datetime:
    return datetime.fromtimestamp(min(exp, 253402300799), UTC)  # at most 9999-12-31


@dataclass(frozen=True)
class LinkSigner:
    """Makes the links of pages sent at ``now``: each works until ``now + ttl``."""

    base_url: str  # ESCALERA_PUBLIC_URL
    secret: str  # ESCALERA_ACK_SECRET
    ttl: timedelta = DEFAULT_TTL

    @classmethod
    def from_environ(cls, base_url: str, secret: str, environ: Mapping[str, str]) -> LinkSigner:
        """With ``ESCALERA_ACK_LINK_TTL`` from ``environ``, if set."""
        raw = environ.get(TTL_ENV, "").strip()
        return cls(base_url, secret, parse_link_ttl(raw) if raw else DEFAULT_TTL)

    def url(self, key: str, now: datetime) -> str:
        """A storm's digest carries a link per page: built by hand, with the HMAC's key set up
        once (urlencode and a fresh HMAC cost 5x as much, seconds per 200,000 pages)."""
        exp = int((now + self.ttl).timestamp())
        mac = self._mac.copy()
        mac.update(f"ack-link\n{key}\n{exp}".encode("utf-8", "surrogatepass"))
        return f"{self._prefix}{quote(key, safe='')}&exp={exp}&sig={mac.hexdigest()}"

    @cached_property
    def _mac(self) -> hmac.HMAC:
        return hmac.new(self.secret.encode(), digestmod=hashlib.sha256)

    @cached_property
    def _prefix(self) -> str:
        return f"{self.base_url.rstrip('/')}{ACK_PATH}?key="
