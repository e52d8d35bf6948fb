"""Acknowledgement links (what they name, sign and until when) and the page they open."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest

from worker.notify.ack_links import LinkSigner, PageKey, parse_key, signature, signature_valid
from worker.notify.ack_page import Acked, done_page, show_page
from worker.notify.messages import Message

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("key", "page"),
    [
        ("812:page:oncall:0", PageKey(812, "page", "oncall", "0")),
        (
            "812:p1: night:shift:oncall_phone:2",
            PageKey(812, "p1: night:shift", "oncall_phone", "2"),
        ),
        ("9:page:leads:fallback", PageKey(9, "page", "leads", "fallback")),
        ("812:page:0", None),  # no channel
        ("x:page:oncall:0", None),
        ("٨:page:oncall:0", None),  # an Arabic-Indic digit is no row id
        (f"{2**63}:page:oncall:0", None),  # past a BIGINT
        ("0:page:oncall:0", None),
    ],
)
def test_a_key_names_its_checkpoint_and_route(key: str, page: PageKey | None) -> None:
    """A route's name may hold ``:``; the channel's may not: the route is what lies between."""
    assert parse_key(key) == page


def test_a_link_carries_its_key_and_expiry_signed_together() -> None:
    """The URL-encoded key, ``exp`` = sent + lifetime, and a signature that any change to the
    key, the expiry or the secret breaks."""
    link = LinkSigner("https://escalera.example/", "s3cret", timedelta(hours=2)).url(
        "812:page:oncall:0", NOW
    )
    parts = urlsplit(link)
    assert (parts.netloc, parts.path) == ("escalera.example", "/v1/acks")
    assert "key=812%3Apage%3Aoncall%3A0&" in parts.query
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    exp = int(query["exp"])
    assert exp == int((NOW + timedelta(hours=2)).timestamp())
    assert signature_valid("s3cret", query["key"], exp, query["sig"])
    assert not signature_valid("s3cret", "813:page:oncall:0", exp, query["sig"])
    assert not signature_valid("s3cret", query["key"], exp + 1, query["sig"])
    assert not signature_valid("other", query["key"], exp, query["sig"])
    assert not signature_valid("s3cret", query["key"], exp, "ñandú")  # any text: no error
    assert signature("s3cret", query["key"], exp) == query["sig"]


def test_the_lifetime_comes_from_the_environment() -> None:
    """``ESCALERA_ACK_LINK_TTL``: seconds or a duration; 24 h when unset."""
    assert LinkSigner.from_environ("u", "s", {}).ttl == timedelta(hours=24)
    assert LinkSigner.from_environ("u", "s", {"ESCALERA_ACK_LINK_TTL": "90m"}).ttl == timedelta(
        minutes=90
    )
    assert LinkSigner.from_environ("u", "s", {"ESCALERA_ACK_LINK_TTL": "3600"}).ttl == timedelta(
        hours=1
    )
    with pytest.raises(ValueError, match="longer than zero"):
        LinkSigner.from_environ("u", "s", {"ESCALERA_ACK_LINK_TTL": "0s"})
    with pytest.raises(ValueError, match="not a link lifetime"):
        LinkSigner.from_environ("u", "s", {"ESCALERA_ACK_LINK_TTL": "soon"})


MARKUP = Message(
    title='[P1] api/<script>alert(1)</script>: "breached"',
    body="Ticket: api/<script>alert(1)</script>\nCustomer: <img src=x onerror=boom>",
)


def test_the_page_escapes_every_field_and_posts_to_its_link() -> None:
    """Ticket fields, the name of who acknowledged and the form's action are text, not markup;
    the form POSTs (a GET of the page acknowledges nothing)."""
    acked = Acked('<b onclick="x">Eve</b>', NOW)
    html = show_page("en", MARKUP, acked, ZoneInfo("Europe/Madrid"), '?key=1&exp=2&sig="3"')
    assert "<script>" not in html and "<img" not in html and "<b " not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Already acknowledged by &lt;b onclick=&quot;x&quot;&gt;Eve&lt;/b&gt;" in html
    assert "2026-03-02 16:00 CET" in html  # in the page's own time zone
    assert '<form method="post" action="?key=1&amp;exp=2&amp;sig=&quot;3&quot;">' in html
    assert "http" not in html.lower().replace("https://", "")  # no external asset


@pytest.mark.parametrize(
    ("language", "first", "said"),
    [
        ("en", True, "Acknowledged by Ana at 2026-03-02 16:00 CET."),
        ("en", False, "Already acknowledged by Ana at 2026-03-02 16:00 CET."),
        ("es", True, "Confirmado por Ana el 2026-03-02 16:00 CET."),
        ("es", False, "Ya confirmado por Ana el 2026-03-02 16:00 CET."),
    ],
)
def test_the_confirmation_says_who_and_when(language: str, first: bool, said: str) -> None:
    html = done_page(language, MARKUP, Acked("Ana", NOW), ZoneInfo("Europe/Madrid"), first=first)
    assert said in html and f'<html lang="{language}">' in html
