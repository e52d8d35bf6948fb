"""Reading the deployment files as their tools would, and checking commands against the CLI."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import ROOT
from worker.cli import _parser

DEPLOY = ROOT / "deploy"


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def assert_escalera_command(argv: Sequence[str], where: str) -> None:
    """``argv`` (without the program name) is a command line ``escalera`` accepts."""
    try:
        _parser().parse_args(list(argv))
    except SystemExit:
        pytest.fail(f"{where}: `escalera {' '.join(argv)}` is not a valid escalera command")
