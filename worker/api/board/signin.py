"""Signing in to the board: a token typed once, then a signed session cookie. Pure.

The cookie names the key and when the session ends, signed with HMAC-SHA256 keyed by that
key's own token: no secret of its own to configure or share between processes, and a token
removed from the configuration ends its sessions at once. The key's scopes are read from the
configuration on every request, exactly as for the API (`worker.api.keys`). Forms that change
something carry `csrf`, a second signature of the session, beside the cookie's
``SameSite=Strict``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from datetime import datetime, timedelta

from worker.api.keys import Key

COOKIE = "escalera_board"
SESSION_LENGTH = timedelta(hours=12)  # a working day and then some; then sign in again
TOKEN_MAX_CHARS = 512  # far above any configured token (16 characters or more)


def key_of_token(configured: Sequence[tuple[Key, str]], presented: str) -> Key | None:
    """The key whose token was typed; every token is compared, in constant time."""
    typed = presented.strip().encode()
    matches = [
        bool(token) and hmac.compare_digest(typed, token.encode()) for _key, token in configured
    ]
    return configured[matches.index(True)][0] if typed and True in matches else None


def session_value(key: Key, token: str, now: datetime) -> str:
    """The cookie's value for ``key`` signed in at ``now``: ``name.expires.signature``."""
    name = base64.urlsafe_b64encode(key.name.encode()).decode().rstrip("=")
    expires = int((now + SESSION_LENGTH).timestamp())
    return f"{name}.{expires}.{_sign(token, f'session:{name}.{expires}')}"


def session_key(configured: Sequence[tuple[Key, str]], value: str, now: datetime) -> Key | None:
    """The key a cookie's value signs for, while it has not expired; None otherwise."""
    parts = value.split(".")
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    name, expires, signature = parts
    if int(expires) <= now.timestamp():
        return None
    try:
        key_name = base64.urlsafe_b64decode(name + "=" * (-len(name) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    for key, token in configured:
        expected = _sign(token, f"session:{name}.{expires}")
        if key.name == key_name and hmac.compare_digest(expected, signature):
            return key
    return None


def csrf_token(configured: Sequence[tuple[Key, str]], value: str) -> str:
    """The token a form of this session carries ("" without a valid session)."""
    name = value.split(".", 1)[0]
    for key, token in configured:
        if _encoded(key.name) == name:
            return _sign(token, f"csrf:{value}")
    return ""


def csrf_valid(configured: Sequence[tuple[Key, str]], value: str, presented: str) -> bool:
    expected = csrf_token(configured, value)
    return bool(expected) and hmac.compare_digest(expected, presented)


def _encoded(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")


def _sign(token: str, text: str) -> str:
    digest = hmac.new(token.encode(), text.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")
