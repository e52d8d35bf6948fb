"""Request authentication: bearer tokens, the Escalera HMAC, Zendesk, Jira and shared secrets."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from worker.adapters.base import Unauthorized
from worker.adapters.signatures import (
    sign_escalera,
    sign_jira,
    sign_zendesk,
    verify_bearer,
    verify_escalera_hmac,
    verify_jira,
    verify_shared_secret,
    verify_zendesk,
)

NOW = datetime(2025, 3, 4, 9, 30, 5, tzinfo=UTC)
SECRET = "s3cr3t-0f-the-h00k"
BODY = b'{"event_id":"e-1","ticket_id":"T-1","type":"created","priority":"P1"}'


def refusal(check: Callable[..., None], *args: object, **kwargs: object) -> Unauthorized:
    """The `Unauthorized` a check raises (a test helper, not a test)."""
    with pytest.raises(Unauthorized) as caught:
        check(*args, **kwargs)
    assert caught.value.status == 401
    return caught.value


def assert_no_leak(error: Unauthorized, *values: str) -> None:
    """No secret, token or signature appears in the reason (a test helper, not a test)."""
    for value in values:
        assert value not in str(error)


# --- bearer tokens ---------------------------------------------------------------------------------


def test_bearer_accepts_a_configured_token() -> None:
    """A request with one of the configured tokens is accepted."""
    verify_bearer({"authorization": "Bearer tok-new"}, ["tok-old", "tok-new"])


def test_bearer_accepts_either_token_during_rotation() -> None:
    """The old and the new token both work while both are configured."""
    for token in ("tok-old", "tok-new"):
        verify_bearer({"authorization": f"Bearer {token}"}, ["tok-old", "tok-new"])


def test_bearer_scheme_and_header_name_are_case_insensitive() -> None:
    """`authorization: bearer x` and `Authorization: Bearer x` are the same credentials."""
    verify_bearer({"Authorization": "bearer tok-new"}, ["tok-new"])


def test_bearer_refuses_a_wrong_token_without_echoing_it() -> None:
    """A wrong token is refused, and neither it nor a configured one is in the reason."""
    error = refusal(verify_bearer, {"authorization": "Bearer guess-123"}, ["tok-new"])
    assert error.field == "authorization"
    assert_no_leak(error, "guess-123", "tok-new")


@pytest.mark.parametrize(
    "headers",
    [{}, {"authorization": "Basic dXNlcjpwYXNz"}, {"authorization": "Bearer"}, {"x": "y"}],
)
def test_bearer_refuses_missing_credentials(headers: dict[str, str]) -> None:
    """No header, another scheme, or an empty token is refused."""
    refusal(verify_bearer, headers, ["tok-new"])


def test_bearer_empty_configured_token_never_matches() -> None:
    """An empty token in the configuration cannot be matched by an empty credential."""
    refusal(verify_bearer, {"authorization": "Bearer "}, [""])
    refusal(verify_bearer, {"authorization": "Bearer x"}, [])


# --- the Escalera HMAC -----------------------------------------------------------------------------


def test_escalera_signature_is_hmac_of_timestamp_then_body() -> None:
    """The signed bytes are the timestamp digits followed directly by the raw body."""
    headers = sign_escalera(BODY, SECRET, 1741080605)
    expected = hmac.new(SECRET.encode(), b"1741080605" + BODY, hashlib.sha256).hexdigest()
    assert headers == {
        "x-escalera-timestamp": "1741080605",
        "x-escalera-signature": f"sha256={expected}",
    }


def test_escalera_signed_request_is_accepted() -> None:
    """A request signed by `sign_escalera` now is accepted."""
    verify_escalera_hmac(BODY, sign_escalera(BODY, SECRET, NOW), SECRET, NOW)


def test_escalera_accepts_upper_case_hex_and_header_names() -> None:
    """Hex case and header-name case do not matter."""
    signed = sign_escalera(BODY, SECRET, NOW)
    headers = {
        "X-Escalera-Timestamp": signed["x-escalera-timestamp"],
        "X-Escalera-Signature": "SHA256=" + signed["x-escalera-signature"][7:].upper(),
    }
    verify_escalera_hmac(BODY, headers, SECRET, NOW)


def test_escalera_refuses_a_changed_body() -> None:
    """One changed byte of the body breaks the signature."""
    headers = sign_escalera(BODY, SECRET, NOW)
    error = refusal(verify_escalera_hmac, BODY.replace(b"P1", b"P4"), headers, SECRET, NOW)
    assert error.field == "x-escalera-signature"
    assert_no_leak(error, SECRET, headers["x-escalera-signature"][7:])


def test_escalera_refuses_a_wrong_secret() -> None:
    """A body signed with another secret is refused."""
    headers = sign_escalera(BODY, "another-secret", NOW)
    refusal(verify_escalera_hmac, BODY, headers, SECRET, NOW)


def test_escalera_refuses_a_moved_timestamp() -> None:
    """A signature is bound to its timestamp: a fresher timestamp does not reuse it."""
    headers = sign_escalera(BODY, SECRET, NOW - timedelta(minutes=4))
    headers["x-escalera-timestamp"] = str(int(NOW.timestamp()))
    refusal(verify_escalera_hmac, BODY, headers, SECRET, NOW)


@pytest.mark.parametrize(
    "offset", [timedelta(minutes=-5, seconds=-1), timedelta(minutes=5, seconds=1)]
)
def test_escalera_refuses_a_stale_timestamp(offset: timedelta) -> None:
    """A timestamp more than five minutes from the clock, either way, is refused."""
    error = refusal(
        verify_escalera_hmac, BODY, sign_escalera(BODY, SECRET, NOW + offset), SECRET, NOW
    )
    assert error.field == "x-escalera-timestamp"
    assert "stale" in error.reason


@pytest.mark.parametrize("offset", [timedelta(minutes=-5), timedelta(minutes=5)])
def test_escalera_accepts_a_timestamp_at_the_edge_of_the_skew(offset: timedelta) -> None:
    """Exactly five minutes away is still accepted."""
    verify_escalera_hmac(BODY, sign_escalera(BODY, SECRET, NOW + offset), SECRET, NOW)


def test_escalera_skew_is_configurable() -> None:
    """A tighter skew refuses what the default allows."""
    headers = sign_escalera(BODY, SECRET, NOW - timedelta(minutes=2))
    refusal(verify_escalera_hmac, BODY, headers, SECRET, NOW, skew=timedelta(minutes=1))


@pytest.mark.parametrize(
    "stamp", ["", "abc", "1741080605.5", "-1741080605", "+1741080605", "1" * 13, "١٢٣"]
)
def test_escalera_refuses_a_malformed_timestamp(stamp: str) -> None:
    """Only whole Unix seconds in ASCII digits are a timestamp."""
    headers = {**sign_escalera(BODY, SECRET, NOW), "x-escalera-timestamp": stamp}
    error = refusal(verify_escalera_hmac, BODY, headers, SECRET, NOW)
    assert error.field == "x-escalera-timestamp"


@pytest.mark.parametrize("value", ["", "abc123", "md5=abc", "sha256="])
def test_escalera_refuses_a_malformed_signature(value: str) -> None:
    """A signature header that is missing or not `sha256=<hex>` is refused."""
    headers = {**sign_escalera(BODY, SECRET, NOW), "x-escalera-signature": value}
    assert refusal(verify_escalera_hmac, BODY, headers, SECRET, NOW).field == "x-escalera-signature"


def test_escalera_refuses_when_no_secret_is_configured() -> None:
    """An empty secret refuses everything, even a request signed with the empty key."""
    refusal(verify_escalera_hmac, BODY, sign_escalera(BODY, "", NOW), "", NOW)


# --- Zendesk ---------------------------------------------------------------------------------------


def test_zendesk_signature_is_base64_hmac_of_timestamp_then_body() -> None:
    """Zendesk signs the timestamp header's text followed by the raw body, in base64."""
    headers = sign_zendesk(BODY, SECRET, NOW)
    stamp = "2025-03-04T09:30:05Z"
    digest = hmac.new(SECRET.encode(), stamp.encode() + BODY, hashlib.sha256).digest()
    assert headers == {
        "x-zendesk-webhook-signature-timestamp": stamp,
        "x-zendesk-webhook-signature": base64.b64encode(digest).decode(),
    }


def test_zendesk_signed_request_is_accepted() -> None:
    """A request signed like Zendesk within five minutes is accepted."""
    verify_zendesk(BODY, sign_zendesk(BODY, SECRET, NOW - timedelta(minutes=4)), SECRET, NOW)


def test_zendesk_bodyless_request_signs_the_timestamp_alone() -> None:
    """A GET or DELETE (no body) signs the timestamp with an empty body."""
    verify_zendesk(b"", sign_zendesk(b"", SECRET, NOW), SECRET, NOW)


def test_zendesk_refuses_a_forged_signature() -> None:
    """A signature made with another secret is refused without echoing either."""
    headers = sign_zendesk(BODY, "attacker", NOW)
    error = refusal(verify_zendesk, BODY, headers, SECRET, NOW)
    assert error.field == "x-zendesk-webhook-signature"
    assert_no_leak(error, SECRET, headers["x-zendesk-webhook-signature"])


def test_zendesk_refuses_a_stale_timestamp() -> None:
    """A Zendesk request signed more than five minutes ago is refused (replay window)."""
    headers = sign_zendesk(BODY, SECRET, NOW - timedelta(minutes=6))
    assert (
        refusal(verify_zendesk, BODY, headers, SECRET, NOW).field
        == "x-zendesk-webhook-signature-timestamp"
    )


@pytest.mark.parametrize("stamp", ["yesterday", "2025-03-04T09:30:05", "1741080605"])
def test_zendesk_refuses_a_timestamp_without_offset_or_not_iso(stamp: str) -> None:
    """The timestamp must be ISO 8601 with an offset (a local time is ambiguous)."""
    headers = {**sign_zendesk(BODY, SECRET, NOW), "x-zendesk-webhook-signature-timestamp": stamp}
    refusal(verify_zendesk, BODY, headers, SECRET, NOW)


@pytest.mark.parametrize(
    "missing", ["x-zendesk-webhook-signature", "x-zendesk-webhook-signature-timestamp"]
)
def test_zendesk_refuses_missing_headers(missing: str) -> None:
    """Without the signature or its timestamp, the request is refused naming the header."""
    headers = sign_zendesk(BODY, SECRET, NOW)
    del headers[missing]
    assert refusal(verify_zendesk, BODY, headers, SECRET, NOW).field == missing


# --- Jira ------------------------------------------------------------------------------------------


def test_jira_signature_is_hex_hmac_of_the_body() -> None:
    """Jira's `X-Hub-Signature` is `sha256=` and the hex HMAC of the raw body."""
    expected = hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    assert sign_jira(BODY, SECRET) == {"x-hub-signature": f"sha256={expected}"}


def test_jira_signed_request_is_accepted() -> None:
    """A body signed with the webhook's secret is accepted."""
    verify_jira(BODY, sign_jira(BODY, SECRET), SECRET)


def test_jira_refuses_a_forged_signature() -> None:
    """A body signed with another secret is refused without echoing either."""
    headers = sign_jira(BODY, "attacker")
    error = refusal(verify_jira, BODY, headers, SECRET)
    assert error.field == "x-hub-signature"
    assert_no_leak(error, SECRET, headers["x-hub-signature"][7:])


@pytest.mark.parametrize(
    "headers", [{}, {"x-hub-signature": "sha1=abc"}, {"x-hub-signature": "abc"}]
)
def test_jira_refuses_a_missing_or_malformed_signature(headers: dict[str, str]) -> None:
    """No header, another algorithm or a bare digest is refused."""
    refusal(verify_jira, BODY, headers, SECRET)


# --- shared secrets (Freshdesk) --------------------------------------------------------------------


def basic(user: str, password: str) -> str:
    """An `Authorization: Basic` value (a test helper, not a test)."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    "headers",
    [
        {"x-escalera-webhook-secret": SECRET},
        {"authorization": f"Bearer {SECRET}"},
        {"authorization": basic("escalera", SECRET)},
        {"authorization": basic(SECRET, "X")},
    ],
    ids=["header", "bearer", "basic-password", "basic-api-key"],
)
def test_shared_secret_is_accepted_where_freshdesk_can_put_it(headers: dict[str, str]) -> None:
    """The secret is accepted in our header, as a bearer token, or in basic credentials."""
    verify_shared_secret(headers, SECRET)


@pytest.mark.parametrize(
    "headers",
    [
        {"x-escalera-webhook-secret": "guess"},
        {"authorization": "Bearer guess"},
        {"authorization": basic("escalera", "guess")},
        {"authorization": "Basic !!!not-base64"},
    ],
)
def test_shared_secret_refuses_wrong_credentials(headers: dict[str, str]) -> None:
    """A wrong or unreadable credential is refused, and the reason echoes neither value."""
    assert_no_leak(refusal(verify_shared_secret, headers, SECRET), SECRET, "guess")


def test_shared_secret_refuses_missing_credentials() -> None:
    """A request with no credentials at all is refused, saying where to put the secret."""
    error = refusal(verify_shared_secret, {"content-type": "application/json"}, SECRET)
    assert "x-escalera-webhook-secret" in error.reason


def test_shared_secret_refuses_everything_without_a_configured_secret() -> None:
    """An empty configured secret never matches, not even empty credentials."""
    refusal(verify_shared_secret, {"x-escalera-webhook-secret": ""}, "")
    refusal(verify_shared_secret, {"authorization": basic("", "")}, "")
