"""Commands that need no server: ``simulate``, ``policy`` and ``integrations``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from rich.console import Console

from shared import policy_schema
from shared.errors import EscaleraError
from shared.event_file import read_events
from shared.integrations import Integrations, json_schema, load_integrations
from shared.policy import Policy
from shared.policy_file import load_policy
from worker.commands.compare import simulate_compare_command
from worker.commands.render import simulation_json, simulation_table
from worker.commands.simulate import simulate

EXIT_USAGE = 2
T = TypeVar("T")


def simulate_command(args: argparse.Namespace) -> int:
    if args.compare:
        return simulate_compare_command(args)
    if args.format == "csv":
        raise EscaleraError(
            "--format csv goes with --compare: simulate --policy prints table or json"
        )
    policy = load_policy(args.policy)
    events = read_events(args.events)
    result = simulate(policy, events, args.at or datetime.now(UTC))
    if args.format == "json":
        print(json.dumps(simulation_json(result), indent=2, ensure_ascii=False))
    else:
        simulation_table(result, Console())
    return 0


def policy_check_command(args: argparse.Namespace) -> int:
    def described(policy: Policy) -> str:
        return f"{policy.name}: {len(policy.plans)} plans, {len(policy.targets)} targets"

    return _check(args.files, load_policy, described)


def policy_schema_command(args: argparse.Namespace) -> int:
    print(policy_schema.json_schema())
    return 0


def integrations_check_command(args: argparse.Namespace) -> int:
    def described(found: Integrations) -> str:
        portals = [name for name in ("zendesk", "jira", "freshdesk") if found.portal(name)]
        return ", ".join(portals) or "no portal sections"

    return _check(args.files, load_integrations, described)


def _check(files: list[str], load: Callable[[str], T], described: Callable[[T], str]) -> int:
    """Each file loaded: ``ok`` with what it holds, or every problem with its line; exit 2 if
    any file was refused."""
    failed = False
    for path in files:
        try:
            found = load(path)
        except EscaleraError as exc:
            print(exc, file=sys.stderr)
            failed = True
        else:
            print(f"{path}: ok ({described(found)})")
    return EXIT_USAGE if failed else 0


def integrations_schema_command(args: argparse.Namespace) -> int:
    print(json_schema())
    return 0
