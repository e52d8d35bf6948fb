"""Reading a policy file: YAML in, a validated `Policy` out, or every problem with its line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path as FilePath
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from shared.errors import FileError, PolicyError, Problem
from shared.policy import Path, Policy

M = TypeVar("M", bound=BaseModel)

# pydantic adds these to an error's location for union members and dict keys: not file fields.
_LOCATION_NOISE = (
    "[key]",
    "always",
    "weekly",
    "every_metric",
    "per_metric",
    "function-after",
    "function-before",
)


def load_policy(path: str | FilePath) -> Policy:
    """Load and validate a policy file; raise `PolicyError` naming file, line and field."""
    name = str(path)
    try:
        text = FilePath(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(
            name, [Problem(None, "", f"cannot read the file: {exc.strerror}")]
        ) from exc
    return parse_policy(text, name)


def parse_policy(text: str, name: str = "<policy>") -> Policy:
    policy = parse_model(
        text, name, Policy, PolicyError, kind="a policy file", keys="name:, calendars:, ..."
    )
    problems = [
        _problem(yaml.compose(text, Loader=yaml.SafeLoader), loc, msg)
        for loc, msg in policy.cross_check()
    ]
    if problems:
        raise PolicyError(name, problems)
    return policy


def parse_model(
    text: str, name: str, model: type[M], error: type[FileError], *, kind: str, keys: str
) -> M:
    """YAML ``text`` validated as ``model``; ``error`` names the file, line and field of each
    problem (``kind`` and ``keys`` say what the file is and holds, for one that is not a
    mapping)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise error(
            name, [Problem(line, "", f"not valid YAML: {getattr(exc, 'problem', exc)}")]
        ) from exc
    except ValueError as exc:  # a scalar YAML reads as a date that does not exist: 2026-02-30
        raise error(name, list(_bad_dates(root, ())) or [Problem(None, "", str(exc))]) from exc
    if not isinstance(data, dict):
        raise error(name, [Problem(1, "", f"{kind} is a YAML mapping ({keys})")])
    duplicates = list(_duplicate_keys(root, ()))
    if duplicates:  # YAML would silently keep the last one and drop the rest
        raise error(name, duplicates)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(name, [_problem(root, err["loc"], err["msg"]) for err in exc.errors()]) from exc


def _duplicate_keys(node: yaml.Node | None, path: Path) -> Iterator[Problem]:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            line = key.start_mark.line + 1
            if str(key.value) in seen:
                where = _dotted((*path, str(key.value)))
                yield Problem(
                    line, where, f"appears twice (first at line {seen[str(key.value)]}); keep one"
                )
            seen.setdefault(str(key.value), line)
            yield from _duplicate_keys(value, (*path, str(key.value)))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _duplicate_keys(item, (*path, index))


def _bad_dates(node: yaml.Node | None, path: Path) -> Iterator[Problem]:
    if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:timestamp":
        try:
            yaml.SafeLoader("").construct_yaml_timestamp(node)
        except ValueError as exc:
            yield Problem(node.start_mark.line + 1, _dotted(path), f"{node.value!r}: {exc}")
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield from _bad_dates(value, (*path, str(key.value)))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _bad_dates(item, (*path, index))


def _problem(root: yaml.Node | None, loc: Path, message: str) -> Problem:
    clean = tuple(part for part in loc if part not in _LOCATION_NOISE and not _is_tag(part))
    line = _locate(root, clean)
    return Problem(line, _dotted(clean), message.removeprefix("Value error, "))


def _is_tag(part: Any) -> bool:
    return isinstance(part, str) and ("[" in part or part.startswith("literal"))


def _locate(node: yaml.Node | None, loc: Path) -> int | None:
    """The line of the deepest node ``loc`` reaches in the YAML tree."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        child = _child(node, part)
        if child is None:
            break
        key_node, node = child
        line = key_node.start_mark.line + 1
    return line


def _child(node: yaml.Node | None, part: str | int) -> tuple[yaml.Node, yaml.Node] | None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if str(key.value) == str(part):
                return key, value
    if (
        isinstance(node, yaml.SequenceNode)
        and isinstance(part, int)
        and 0 <= part < len(node.value)
    ):
        item = node.value[part]
        return item, item
    return None


def _dotted(loc: Path) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
