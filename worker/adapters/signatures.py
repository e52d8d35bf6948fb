"""Who may write: pure, constant-time checks of a request's credentials.

Every ``verify_*`` function returns None or raises `Unauthorized` with a reason naming the header
and what is wrong with it, never the secret, the signature or the token. Digests and secrets are
compared with `hmac.compare_digest`. The ``sign_*`` functions build the headers a sender sends,
for clients, tests and the benchmark; their header names are lower-case, as in
`WebhookRequest.headers` (HTTP names are case-insensitive).

Signed bytes, HMAC-SHA256 keyed with the secret's UTF-8 bytes:

==============  ===========================================  =======================================
scheme          headers                                      signed bytes, digest encoding
==============  ===========================================  =======================================
Escalera API    ``X-Escalera-Timestamp: <unix seconds>``,    ``timestamp + body``: the timestamp
(§4 of          ``X-Escalera-Signature: sha256=<hex>``       header's ASCII digits, then the raw
CONTRACTS.md)                                                body, no separator; lower-case hex
Zendesk         ``X-Zendesk-Webhook-Signature-Timestamp``    ``timestamp + body``: the header's
                (ISO 8601), ``X-Zendesk-Webhook-Signature``  text as sent, then the raw body; base64
Jira            ``X-Hub-Signature: sha256=<hex>``            the raw body; hex
Freshdesk       none: a shared secret (see `verify_shared_secret`)
==============  ===========================================  =======================================

The Escalera scheme keeps the contract's plain concatenation rather than ``f"{timestamp}."``: the
timestamp is digits only and an events body starts with ``{`` or ``[``, so no byte can move between
the two and change the meaning, and clients already written to the contract keep working.

A signature proves who sent a request, not that it is the first time: within the allowed skew a
captured request can be sent again. Replays are made harmless downstream, where events are
de-duplicated on ``(source, event_id)`` and every adapter derives its event ids from the delivery.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from worker.adapters.base import Unauthorized

DEFAULT_SKEW = timedelta(minutes=5)

ESCALERA_TIMESTAMP = "x-escalera-timestamp"
ESCALERA_SIGNATURE = "x-escalera-signature"
ZENDESK_SIGNATURE = "x-zendesk-webhook-signature"
ZENDESK_TIMESTAMP = "x-zendesk-webhook-signature-timestamp"
JIRA_SIGNATURE = "x-hub-signature"
SHARED_SECRET = "x-escalera-webhook-secret"
AUTHORIZATION = "authorization"

_SHA256_PREFIX = "sha256="
_MAX_TIMESTAMP_DIGITS = 12


# --- the canonical API: POST /v1/events ---------------------------------------------------------


def verify_bearer(headers: Mapping[str, str], tokens: Sequence[str]) -> None:
    """Accept ``Authorization: Bearer <token>`` for any of ``tokens`` (several allow rotation)."""
    bearer_index(headers, tokens)


def bearer_index(headers: Mapping[str, str], tokens: Sequence[str]) -> int:
    """Which of ``tokens`` ``Authorization: Bearer`` presents; every token is compared."""
    presented = _bearer(headers)
    if presented is None:
        raise Unauthorized("missing `Bearer` credentials", field=AUTHORIZATION)
    matches = [bool(token) and _equal(presented, token) for token in tokens]
    if not presented or True not in matches:
        raise Unauthorized("the bearer token is not valid", field=AUTHORIZATION)
    return matches.index(True)


def verify_escalera_hmac(
    body: bytes,
    headers: Mapping[str, str],
    secret: str,
    now: datetime,
    skew: timedelta = DEFAULT_SKEW,
) -> None:
    """Accept a body signed as ``sha256=hex(HMAC(secret, timestamp + body))`` within ``skew``."""
    _require_secret(secret)
    timestamp = _required(headers, ESCALERA_TIMESTAMP)
    _check_fresh(_unix_time(timestamp), now, skew, ESCALERA_TIMESTAMP)
    presented = _sha256_hex_value(_required(headers, ESCALERA_SIGNATURE), ESCALERA_SIGNATURE)
    expected = _hmac(secret, timestamp.encode("ascii") + body).hexdigest()
    _check_digest(presented, expected, ESCALERA_SIGNATURE)


def sign_escalera(body: bytes, secret: str, timestamp: int | datetime) -> dict[str, str]:
    """The headers that authenticate ``body`` for `verify_escalera_hmac`."""
    seconds = str(int(timestamp.timestamp()) if isinstance(timestamp, datetime) else timestamp)
    digest = _hmac(secret, seconds.encode("ascii") + body).hexdigest()
    return {ESCALERA_TIMESTAMP: seconds, ESCALERA_SIGNATURE: _SHA256_PREFIX + digest}


# --- Zendesk --------------------------------------------------------------------------------------


def verify_zendesk(
    body: bytes,
    headers: Mapping[str, str],
    secret: str,
    now: datetime,
    skew: timedelta = DEFAULT_SKEW,
) -> None:
    """Accept a Zendesk webhook: base64(HMAC(secret, timestamp + body)), timestamp within skew."""
    _require_secret(secret)
    timestamp = _required(headers, ZENDESK_TIMESTAMP)
    _check_fresh(_iso_time(timestamp), now, skew, ZENDESK_TIMESTAMP)
    presented = _required(headers, ZENDESK_SIGNATURE).strip()
    expected = base64.b64encode(_hmac(secret, timestamp.encode("utf-8") + body).digest())
    _check_digest(presented, expected.decode("ascii"), ZENDESK_SIGNATURE)


def sign_zendesk(body: bytes, secret: str, timestamp: datetime) -> dict[str, str]:
    """The headers Zendesk sends with ``body`` at ``timestamp`` (sent as ``...T05:09:27Z``)."""
    stamp = timestamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    digest = _hmac(secret, stamp.encode("utf-8") + body).digest()
    return {ZENDESK_TIMESTAMP: stamp, ZENDESK_SIGNATURE: base64.b64encode(digest).decode("ascii")}


# --- Jira -----------------------------------------------------------------------------------------


def verify_jira(body: bytes, headers: Mapping[str, str], secret: str) -> None:
    """Accept a Jira webhook signed ``X-Hub-Signature: sha256=hex(HMAC(secret, body))``.

    The signature covers no timestamp: the Jira adapter also checks the body's age.
    """
    _require_secret(secret)
    presented = _sha256_hex_value(_required(headers, JIRA_SIGNATURE), JIRA_SIGNATURE)
    _check_digest(presented, _hmac(secret, body).hexdigest(), JIRA_SIGNATURE)


def sign_jira(body: bytes, secret: str) -> dict[str, str]:
    """The header Jira sends with ``body`` for a webhook registered with ``secret``."""
    return {JIRA_SIGNATURE: _SHA256_PREFIX + _hmac(secret, body).hexdigest()}


# --- Freshdesk: a shared secret -------------------------------------------------------------------


def verify_shared_secret(headers: Mapping[str, str], secret: str) -> None:
    """Accept a request carrying ``secret`` for a sender that cannot sign (Freshdesk).

    Looked for in ``X-Escalera-Webhook-Secret``, in ``Authorization: Bearer <secret>``, and in
    ``Authorization: Basic``, as password or as user name: Freshdesk's "Requires authentication"
    sends basic credentials (user name and password, or an API key as the user name).
    """
    _require_secret(secret)
    candidates = _secret_candidates(headers)
    if not candidates:
        raise Unauthorized(
            f"missing credentials: send the secret in `{SHARED_SECRET}` or `Authorization`",
            field=SHARED_SECRET,
        )
    if not _matches_any(secret, candidates):
        raise Unauthorized("the shared secret is not valid", field=SHARED_SECRET)


def _secret_candidates(headers: Mapping[str, str]) -> list[str]:
    header = (_header(headers, SHARED_SECRET) or "").strip()
    values = [header, _bearer(headers) or "", *_basic(headers)]
    return [value for value in values if value]


# --- helpers --------------------------------------------------------------------------------------


def _hmac(secret: str, message: bytes) -> hmac.HMAC:
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256)


def _equal(presented: str, expected: str) -> bool:
    return hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))


def _matches_any(value: str, options: Sequence[str]) -> bool:
    """Whether ``value`` equals a non-empty option; every option is compared, none skipped."""
    results = [_equal(value, option) for option in options if option]
    return bool(value) and any(results)


def _require_secret(secret: str) -> None:
    if not secret:  # an empty HMAC key is known to everyone: fail closed
        raise Unauthorized("no secret is configured for this source")


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value


def _required(headers: Mapping[str, str], name: str) -> str:
    value = _header(headers, name)
    if value is None or not value.strip():
        raise Unauthorized("missing header", field=name)
    return value.strip()


def _bearer(headers: Mapping[str, str]) -> str | None:
    scheme, _, token = (_header(headers, AUTHORIZATION) or "").strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _basic(headers: Mapping[str, str]) -> list[str]:
    """User name and password of ``Authorization: Basic``, or [] when absent or malformed."""
    scheme, _, encoded = (_header(headers, AUTHORIZATION) or "").strip().partition(" ")
    if scheme.lower() != "basic":
        return []
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return []
    user, _, password = decoded.partition(":")
    return [user, password]


def _sha256_hex_value(value: str, field: str) -> str:
    """The hex digest of a ``sha256=<hex>`` header value."""
    algorithm, sep, digest = value.partition("=")
    if not sep or algorithm.strip().lower() != "sha256" or not digest.strip():
        raise Unauthorized("expected `sha256=<hex digest>`", field=field)
    return digest.strip().lower()


def _check_digest(presented: str, expected: str, field: str) -> None:
    if not _equal(presented, expected):
        raise Unauthorized("the signature does not match the body", field=field)


def _unix_time(value: str) -> datetime:
    if not (value.isascii() and value.isdigit()) or len(value) > _MAX_TIMESTAMP_DIGITS:
        raise Unauthorized("expected whole Unix seconds", field=ESCALERA_TIMESTAMP)
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (ValueError, OverflowError, OSError):  # past year 9999, or past the platform's time_t
        raise Unauthorized("not a time this server can read", field=ESCALERA_TIMESTAMP) from None


def _iso_time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.utcoffset() is None:
        raise Unauthorized("expected an ISO 8601 time with an offset", field=ZENDESK_TIMESTAMP)
    return parsed


def _check_fresh(stamp: datetime, now: datetime, skew: timedelta, field: str) -> None:
    off = abs(now - stamp)
    if off > skew:
        raise Unauthorized(
            f"stale: {int(off.total_seconds())} s from the server's clock "
            f"(allowed {int(skew.total_seconds())} s)",
            field=field,
        )
