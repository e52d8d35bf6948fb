"""Reading canonical events from a ``.jsonl`` file: one event per line, bad lines named."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from shared.errors import EventError, Problem
from shared.events import Event


def read_events(path: str | Path) -> list[Event]:
    """Every event in the file; `EventError` lists each bad line with its number and field."""
    name = str(path)
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise EventError(
            name, [Problem(None, "", f"cannot read the file: {exc.strerror}")]
        ) from exc
    except UnicodeDecodeError as exc:
        raise EventError(name, [Problem(None, "", f"not UTF-8 text: {exc.reason}")]) from exc
    events, problems = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            events.append(Event.model_validate(json.loads(line)))
        except json.JSONDecodeError as exc:
            problems.append(Problem(number, "", f"not valid JSON: {exc.msg} (column {exc.colno})"))
        except ValidationError as exc:
            problems.extend(_problems(number, exc))
    if problems:
        raise EventError(name, problems)
    return events


def _problems(line: int, exc: ValidationError) -> list[Problem]:
    return [
        Problem(
            line, ".".join(str(p) for p in err["loc"]), err["msg"].removeprefix("Value error, ")
        )
        for err in exc.errors()
    ]
