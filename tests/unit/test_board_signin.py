"""Board sessions: a cookie signed with the key's own token, good until it expires."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from worker.api.board.signin import (
    SESSION_LENGTH,
    csrf_token,
    csrf_valid,
    key_of_token,
    session_key,
    session_value,
)
from worker.api.keys import Key, Scope

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
LEAD = Key("lead", frozenset({Scope.READ}), frozenset())
OPS = Key("ops", frozenset({Scope.READ, Scope.ACK}), frozenset())
CONFIGURED = [(LEAD, "lead-token-0123456789"), (OPS, "ops-token-0123456789")]


def test_the_typed_token_names_its_key_and_nothing_else_does() -> None:
    assert key_of_token(CONFIGURED, " ops-token-0123456789\n") == OPS
    assert key_of_token(CONFIGURED, "ops-token-012345678") is None
    assert key_of_token(CONFIGURED, "") is None


def test_a_session_lasts_its_length_and_names_its_key() -> None:
    value = session_value(OPS, "ops-token-0123456789", NOW)
    assert "ops-token" not in value
    assert session_key(CONFIGURED, value, NOW + SESSION_LENGTH - timedelta(seconds=1)) == OPS
    assert session_key(CONFIGURED, value, NOW + SESSION_LENGTH) is None


def test_a_session_whose_token_changed_or_was_edited_is_nobody_s() -> None:
    value = session_value(OPS, "ops-token-0123456789", NOW)
    rotated = [(LEAD, "lead-token-0123456789"), (OPS, "a-new-ops-token-0123")]
    assert session_key(rotated, value, NOW) is None
    name, expires, signature = value.split(".")
    lead_name = session_value(LEAD, "x", NOW).split(".")[0]
    for edited in (
        f"{lead_name}.{expires}.{signature}",
        f"{name}.{int(expires) + 1}.{signature}",
        "a.b",
        "",
    ):
        assert session_key(CONFIGURED, edited, NOW) is None


def test_a_form_token_belongs_to_one_session() -> None:
    one = session_value(LEAD, "lead-token-0123456789", NOW)
    other = session_value(LEAD, "lead-token-0123456789", NOW + timedelta(minutes=1))
    assert csrf_valid(CONFIGURED, one, csrf_token(CONFIGURED, one))
    assert not csrf_valid(CONFIGURED, other, csrf_token(CONFIGURED, one))
    assert not csrf_valid(CONFIGURED, "", "")
