"""The ingest app: FastAPI, with its hot write route answered without the framework's layers.

``POST /v1/events`` is most of what ingest serves. Through FastAPI each request passes seven
middleware layers, the router's match over every route, and the request handler's dependency
solving, about 5 % of the service's CPU per event under the soak's load (py-spy), for an
endpoint that takes the `Request` and returns a ready `Response`. `IngestApp.direct` answers such
a route itself, with the same outcome: the app's exception handlers are looked up as Starlette's
``ExceptionMiddleware`` does (a `RejectedRequest`'s problem document, a store outage's 503), and
an exception no handler takes is a plain 500 re-raised to the server, as Starlette's
``ServerErrorMiddleware`` does. The route stays declared on the app as well: the OpenAPI
document, other methods on the path (405) and a path under a ``root_path`` go the usual way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from starlette._utils import is_async_callable
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

Endpoint = Callable[[Request], Awaitable[Response]]


class IngestApp(FastAPI):
    """FastAPI, plus routes `direct` answers without the middleware stack."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._direct: dict[tuple[str, str], Endpoint] = {}

    def direct(self, method: str, path: str, endpoint: Endpoint) -> None:
        """Answer ``method path`` (exact, no path parameters) with ``endpoint`` directly."""
        self._direct[method, path] = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path") and not self.root_path:
            endpoint = self._direct.get((scope["method"], scope["path"]))
            if endpoint is not None:
                scope["app"] = self
                await self._answer(endpoint, scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    async def _answer(self, endpoint: Endpoint, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        try:
            response = await endpoint(request)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                await self._server_error(request, exc, send)
                raise
            response = await _call(handler, request, exc)
            exc.__traceback__ = None  # a reused exception instance would accumulate them
        await response(scope, receive, send)

    async def _server_error(self, request: Request, exc: Exception, send: Send) -> None:
        """What ``ServerErrorMiddleware`` answers (debug off): the app's 500 handler's
        response, else a plain "Internal Server Error"; the caller re-raises."""
        handler = None
        for key, value in self.exception_handlers.items():
            if key in (500, Exception):
                handler = value
        if handler is None:
            response: Response = PlainTextResponse("Internal Server Error", status_code=500)
        else:
            response = await _call(handler, request, exc)
        await response(request.scope, request.receive, send)

    def _handler(self, exc: Exception) -> Callable[..., Any] | None:
        """The handler Starlette's ``ExceptionMiddleware`` would give ``exc``: by status for an
        `HTTPException`, else by class; never the 500/`Exception` handler (the server error)."""
        handlers = self.exception_handlers
        if isinstance(exc, HTTPException) and exc.status_code in handlers:
            return handlers[exc.status_code]
        for cls in type(exc).__mro__:
            if cls is not Exception and cls in handlers:
                return handlers[cls]
        return None


async def _call(handler: Callable[..., Any], request: Request, exc: Exception) -> Response:
    if is_async_callable(handler):
        response: Response = await handler(request, exc)
    else:
        response = await run_in_threadpool(handler, request, exc)
    return response
