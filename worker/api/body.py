"""Reading a request body safely: size limit first, then content type, then JSON."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from worker.adapters.base import RejectedRequest


class TooLarge(RejectedRequest):
    status = 413


class WrongMediaType(RejectedRequest):
    status = 415


async def read_body(request: Request, limit: int) -> bytes:
    """The raw bytes (signatures are computed over them), refused past ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"the body is {declared} bytes; the limit is {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(request: Request, body: bytes) -> Any:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise WrongMediaType(f"send application/json, not {media or 'no content type'}")
    try:
        return json.loads(body)
    except UnicodeDecodeError as exc:
        raise RejectedRequest(f"the body is not UTF-8: {exc.reason}") from exc
    except json.JSONDecodeError as exc:
        raise RejectedRequest(
            f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from exc
    except RecursionError as exc:
        raise RejectedRequest("the JSON is nested too deeply") from exc
