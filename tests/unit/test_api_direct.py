"""A route `IngestApp.direct` answers behaves as the same route through FastAPI's layers.

Each request goes to two apps that differ only in whether the route is direct: the status, the
body and the content type must be the same, for an answer, a refusal its handler turns into a
problem document, a store outage's 503, an error no handler takes (500, raised to the server),
another method on the path and a path under a ``root_path``.
"""

from __future__ import annotations

import pytest
import redis
from fastapi import Request, Response
from fastapi.testclient import TestClient

from worker.adapters.base import RejectedRequest, Unauthorized
from worker.api.direct import IngestApp
from worker.api.problems import framework_refusals, problem, store_outages


async def _endpoint(request: Request) -> Response:
    body = await request.body()
    if body == b"unauthorized":
        raise Unauthorized("the bearer token is not valid", field="authorization")
    if body == b"redis down":
        raise redis.exceptions.TimeoutError("Redis did not answer within 5 s")
    if body == b"bug":
        raise ZeroDivisionError("a bug")
    return Response(b'{"accepted":%d}' % len(body), status_code=202, media_type="application/json")


def _app(*, direct: bool) -> IngestApp:
    app = IngestApp()
    framework_refusals(app)
    store_outages(app)

    @app.exception_handler(RejectedRequest)
    async def _refused(_request: Request, exc: RejectedRequest) -> Response:
        return problem(exc.status, exc.reason, field=exc.field)

    app.post("/v1/events", status_code=202)(_endpoint)
    if direct:
        app.direct("POST", "/v1/events", _endpoint)
    return app


def _both(
    method: str, path: str, body: bytes = b"", root_path: str = ""
) -> list[tuple[object, ...]]:
    answers = []
    for direct in (False, True):
        client = TestClient(_app(direct=direct), raise_server_exceptions=False, root_path=root_path)
        answer = client.request(method, path, content=body)
        answers.append((answer.status_code, answer.headers.get("content-type"), answer.content))
    return answers


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/v1/events", b"four", 202),
        ("POST", "/v1/events", b"unauthorized", 401),
        ("POST", "/v1/events", b"redis down", 503),
        ("POST", "/v1/events", b"bug", 500),
        ("GET", "/v1/events", b"", 405),
        ("POST", "/v1/events/", b"four", 202),  # FastAPI's redirect to /v1/events
    ],
)
def test_a_direct_route_answers_as_through_fastapi(
    method: str, path: str, body: bytes, status: int
) -> None:
    through_fastapi, direct = _both(method, path, body)
    assert direct == through_fastapi
    assert direct[0] == status


def test_a_direct_route_under_a_root_path_answers_as_through_fastapi() -> None:
    through_fastapi, direct = _both("POST", "/v1/events", b"four", root_path="/ingest")
    assert direct == through_fastapi


def test_an_error_no_handler_takes_reaches_the_server() -> None:
    client = TestClient(_app(direct=True))
    with pytest.raises(ZeroDivisionError):
        client.post("/v1/events", content=b"bug")
