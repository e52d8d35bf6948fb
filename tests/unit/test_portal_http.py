"""The portals' JSON client against a local server: patient with rate limits, discreet on errors.

Shapes, from the vendors' documentation:
- Zendesk's 429: ``Retry-After: 93`` and a text body "Rate limit for ticket updates exceeded,
  please wait before updating this ticket again" (developer.zendesk.com/documentation/ticketing/
  using-the-zendesk-api/best-practices-for-avoiding-rate-limiting/, "Handling errors caused by
  rate limiting").
- Zendesk's cursor-based incremental export: ``tickets``, ``after_url`` (the next page's full
  URL), ``after_cursor``, ``end_of_stream`` (developer.zendesk.com/api-reference/ticketing/
  ticket-management/incremental_exports/, "Cursor-based Pagination JSON Format").
- Zendesk's 401 for bad credentials: ``{"error": "Couldn't authenticate you"}`` (a curl answer
  quoted in support.zendesk.com/hc/en-us/articles/4408831452954).
- Freshdesk answers 429 with ``Retry-After`` too (developers.freshdesk.com/api/#ratelimit).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from tests.portal_server import Answer, PortalServer, portal_server
from worker.portals.http import Credentials, PortalApi, PortalError

EXPORT = "/api/v2/incremental/tickets/cursor.json"
TOKEN = "6wiIBWbGkBMo1mRDMuVwkw1EPsNkeUj95PIz2akv"
USER = "agent@acme.example/token"
RATE_LIMITED = (
    "Rate limit for ticket updates exceeded, please wait before updating this ticket again"
)


@pytest.fixture
def server() -> Iterator[PortalServer]:
    with portal_server() as running:
        yield running


def api(server: PortalServer, slept: list[float], **options: Any) -> PortalApi:
    return PortalApi(server.url, Credentials(USER, TOKEN), sleep=slept.append, **options)


def page(after_cursor: str | None, base: str) -> dict[str, object]:
    return {
        "tickets": [{"id": 35436, "subject": "Help, my printer is on fire!", "status": "open"}],
        "after_url": f"{base}{EXPORT}?cursor={after_cursor}" if after_cursor else None,
        "after_cursor": after_cursor,
        "end_of_stream": after_cursor is None,
    }


def test_a_429_is_waited_out_as_long_as_the_portal_asks_then_the_page_is_read(
    server: PortalServer,
) -> None:
    server.answer(
        "GET",
        EXPORT,
        Answer(RATE_LIMITED, 429, {"Retry-After": "93"}),
        page(None, server.url),
    )
    slept: list[float] = []
    client = api(server, slept)
    body = client.get(EXPORT, {"start_time": 1764892800})
    assert body["tickets"][0]["id"] == 35436
    assert slept == [93.0] and client.waited_s == 93.0
    assert [a.query for a in server.asked_for(EXPORT)] == [{"start_time": ["1764892800"]}] * 2


def test_a_wait_longer_than_the_cap_is_cut_to_the_cap(server: PortalServer) -> None:
    server.answer(
        "GET",
        EXPORT,
        Answer(RATE_LIMITED, 429, {"Retry-After": "3600"}),
        Answer({"error": "maintenance"}, 503, {"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}),
        Answer({"error": "maintenance"}, 503),
        page(None, server.url),
    )
    slept: list[float] = []
    client = api(server, slept, max_wait_s=30)
    client.get(EXPORT)
    # 3600 s capped; an HTTP date counts as a minute, capped; no Retry-After at all: 5 s
    assert slept == [30.0, 30.0, 5.0]


def test_a_portal_that_keeps_refusing_stops_the_call_after_its_tries(server: PortalServer) -> None:
    server.answer("GET", EXPORT, Answer(RATE_LIMITED, 429, {"Retry-After": "1"}))
    slept: list[float] = []
    with pytest.raises(PortalError) as failed:
        api(server, slept, max_tries=3).get(EXPORT)
    assert failed.value.status == 429
    assert slept == [1.0, 1.0] and len(server.asked_for(EXPORT)) == 3


def test_an_error_names_method_path_and_status_and_never_the_token(server: PortalServer) -> None:
    server.answer("GET", EXPORT, Answer({"error": "Couldn't authenticate you"}, 401))
    with pytest.raises(PortalError) as failed:
        api(server, []).get(EXPORT, {"start_time": 1764892800})
    message = str(failed.value)
    assert message.startswith(f"GET {EXPORT}: 401 ")
    assert "Couldn't authenticate you" in message
    assert failed.value.status == 401
    encoded = base64.b64encode(f"{USER}:{TOKEN}".encode()).decode()
    assert TOKEN not in message and encoded not in message and "start_time" not in message
    assert TOKEN not in repr(Credentials(USER, TOKEN))


def test_the_credentials_go_in_a_basic_header(server: PortalServer) -> None:
    server.answer("GET", EXPORT, page(None, server.url))
    api(server, []).get(EXPORT)
    (asked,) = server.asked_for(EXPORT)
    expected = base64.b64encode(f"{USER}:{TOKEN}".encode()).decode()
    assert asked.headers["authorization"] == f"Basic {expected}"


def test_the_next_page_is_read_from_the_full_url_the_portal_gave(server: PortalServer) -> None:
    cursor = "MTU4MDc1Mzc5OC4wfHw0MzJ8"
    server.answer("GET", EXPORT, page(cursor, server.url), query={"start_time": "1764892800"})
    server.answer("GET", EXPORT, page(None, server.url), query={"cursor": cursor})
    client = api(server, [])
    first = client.get(EXPORT, {"start_time": 1764892800})
    last = client.get(first["after_url"], {"include": "users"})
    assert last["end_of_stream"] is True
    second = server.asked_for(EXPORT)[1]
    assert second.query == {"cursor": [cursor], "include": ["users"]}
    assert second.headers["authorization"].startswith("Basic ")


def test_a_portal_that_does_not_answer_is_named() -> None:
    with portal_server() as gone:
        url = gone.url
    with pytest.raises(PortalError) as failed:
        PortalApi(url, Credentials(USER, TOKEN), timeout_s=2).get(EXPORT)
    assert str(failed.value).startswith(f"GET {EXPORT}: no answer")
    assert failed.value.status is None
