"""The operator's directory file (``ESCALERA_DIRECTORY``): read at start, validated like a policy
file, so a problem is reported with the file, line and field (`shared.directory` says what the
file holds)."""

from __future__ import annotations

from pathlib import Path

from shared.directory import EMPTY, Directory
from shared.errors import FileError, Problem
from shared.policy_file import parse_model


class DirectoryError(FileError):
    """The directory file is refused: every problem with its line and field."""


def load_directory(path: str | Path | None) -> Directory:
    """The operator's directory file (`EMPTY` for none); `DirectoryError` names line and field."""
    if path is None:
        return EMPTY
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise DirectoryError(
            str(path), [Problem(None, "", f"cannot read the file: {exc.strerror}")]
        ) from exc
    return parse_directory(text, str(path))


def parse_directory(text: str, name: str = "<directory>") -> Directory:
    if not text.strip():
        return EMPTY
    return parse_model(
        text, name, Directory, DirectoryError, kind="a directory file", keys="groups:, agents:"
    )
