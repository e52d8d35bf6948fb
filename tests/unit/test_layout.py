"""The layout docs/architecture.md promises: imports run one way, with no circle, and every
Redis key is spelled in shared/redis_keys.py alone.

A circle or a key built elsewhere still runs today; it is what makes the next change land in the
wrong room, so it is caught here rather than in review.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from tests.support import ROOT

PACKAGES = ("shared", "scheduler", "worker")
# What each top-level package may import of the others (worker -> scheduler -> shared).
ALLOWED = {"shared": {"shared"}, "scheduler": {"scheduler", "shared"}, "worker": set(PACKAGES)}


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                yield full if full in known else node.module
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def graph() -> dict[str, set[str]]:
    known = modules()
    return {
        name: {dep for dep in imports(path, known) if dep in known and dep != name}
        for name, path in known.items()
    }


def room(module: str) -> str:
    """A module's room: worker's sub-package (``worker.notify``), else its top-level package."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "worker" else parts[0]


def cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One circle of imports, if there is any (depth-first, colouring nodes)."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return None

    for start in sorted(edges):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_imports_run_from_worker_to_scheduler_to_shared_only() -> None:
    wrong = [
        f"{module} imports {dep}"
        for module, deps in graph().items()
        for dep in deps
        if dep.split(".")[0] not in ALLOWED[module.split(".")[0]]
    ]
    assert wrong == []


def test_no_module_imports_itself_through_others() -> None:
    assert cycle(graph()) is None


def test_no_two_rooms_import_each_other() -> None:
    rooms: dict[str, set[str]] = {}
    for module, deps in graph().items():
        for dep in deps:
            if room(dep) != room(module):
                rooms.setdefault(room(module), set()).add(room(dep))
    assert cycle(rooms) is None


# A key's shape: the prefix, then one of our key families, in an f-string or a literal.
KEY_SPELLING = re.compile(
    r":(celery|timers|repeats|appliers)\b|:(due|inflight|alive|processing|unacked)\b"
)


def test_redis_keys_are_spelled_in_one_module() -> None:
    spelled = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for root in (*PACKAGES, "tests", "bench")
        for path in (ROOT / root).rglob("*.py")
        if path.name != "redis_keys.py" and path != Path(__file__)
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if KEY_SPELLING.search(line) and not line.lstrip().startswith("#")
    ]
    assert spelled == []
