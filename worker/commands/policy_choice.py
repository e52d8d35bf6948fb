"""``escalera up --policy``: the policy the system runs, chosen by name or by file.

A name is a policy of the policy folder (``ESCALERA_POLICY_DIR``, by default the bundled presets,
deploy/policies); a path (with a ``/``, or ending in ``.yaml`` or ``.yml``) is a policy file
anywhere. Either is read and validated before anything starts: a name the folder does not hold,
a file that is missing or does not validate stops ``up``, naming it. A file outside the policy
folder runs from a folder of ``up``'s own (`link_folder`): a link to it beside links to the
policy folder's files, so a source whose setting names another policy keeps it, and an edit to
the file is seen and reloaded as an edit in the folder would be.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from shared.errors import EscaleraError
from shared.policy_file import parse_policy
from worker.policies.book import policy_files

SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class PolicyChoice:
    """The policy ``--policy`` names: its name (the file's stem) and its file."""

    name: str
    file: Path  # absolute
    in_folder: bool  # the policy folder holds it; else it is linked into a folder of up's own


def is_path(choice: str) -> bool:
    """``--policy`` names a file (rather than a policy of the folder)."""
    return "/" in choice or os.sep in choice or choice.lower().endswith(SUFFIXES)


def choose_policy(choice: str, folder: Path) -> PolicyChoice:
    """The policy ``choice`` names, read and validated; `EscaleraError` naming it if it cannot
    run (`PolicyError` names the file, line and field of what does not validate)."""
    if is_path(choice):
        file = Path(choice).expanduser().resolve()
        if not file.is_file():
            raise EscaleraError(f"--policy {choice}: no such file")
        in_folder = file.suffix.lower() in SUFFIXES and _same(file.parent, folder)
        name = file.stem
    else:
        files = {path.stem: path for path in policy_files(folder)}  # a .yml wins, as loading
        if choice not in files:
            known = ", ".join(sorted(files)) or "none"
            raise EscaleraError(
                f"--policy {choice}: no policy named {choice!r} in {folder} (found: {known}); "
                "or give a policy file's path, e.g. --policy ./my-desk.yaml"
            )
        file, in_folder, name = files[choice].resolve(), True, choice
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise EscaleraError(f"--policy {choice}: cannot read {file}: {reason}") from exc
    parse_policy(text, str(file))
    return PolicyChoice(name, file, in_folder)


def link_folder(choice: PolicyChoice, folder: Path, into: Path) -> Path:
    """A fresh folder ``into`` of links: every policy file of ``folder`` but those of the
    chosen one's name, and the chosen file as ``<name>.yaml``."""
    shutil.rmtree(into, ignore_errors=True)
    into.mkdir(parents=True)
    for path in policy_files(folder):
        if path.stem != choice.name:
            (into / path.name).symlink_to(path.resolve())
    (into / f"{choice.name}.yaml").symlink_to(choice.file)
    return into


def _same(one: Path, other: Path) -> bool:
    try:
        return one.samefile(other)
    except OSError:
        return False
