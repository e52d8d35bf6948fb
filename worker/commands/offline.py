"""Commands that need no server: ``simulate``, ``policy check`` and ``integrations``."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime

from rich.console import Console

from shared.errors import EscaleraError
from shared.event_file import read_events
from shared.integrations import json_schema, load_integrations
from shared.policy_file import load_policy
from worker.commands.render import simulation_json, simulation_table
from worker.commands.simulate import simulate

EXIT_USAGE = 2


def simulate_command(args: argparse.Namespace) -> int:
    policy = load_policy(args.policy)
    events = read_events(args.events)
    result = simulate(policy, events, args.at or datetime.now(UTC))
    if args.format == "json":
        print(json.dumps(simulation_json(result), indent=2, ensure_ascii=False))
    else:
        simulation_table(result, Console())
    return 0


def policy_check_command(args: argparse.Namespace) -> int:
    failed = False
    for path in args.files:
        try:
            policy = load_policy(path)
        except EscaleraError as exc:
            print(exc, file=sys.stderr)
            failed = True
        else:
            counts = f"{len(policy.plans)} plans, {len(policy.targets)} targets"
            print(f"{path}: ok ({policy.name}: {counts})")
    return EXIT_USAGE if failed else 0


def integrations_check_command(args: argparse.Namespace) -> int:
    failed = False
    for path in args.files:
        try:
            found = load_integrations(path)
        except EscaleraError as exc:
            print(exc, file=sys.stderr)
            failed = True
        else:
            portals = [name for name in ("zendesk", "jira", "freshdesk") if found.portal(name)]
            print(f"{path}: ok ({', '.join(portals) or 'no portal sections'})")
    return EXIT_USAGE if failed else 0


def integrations_schema_command(args: argparse.Namespace) -> int:
    print(json_schema())
    return 0
