"""The ``escalera`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from rich.console import Console

from shared.errors import EscaleraError
from shared.event_file import read_events
from shared.policy_file import load_policy
from worker.render import simulation_json, simulation_table
from worker.simulate import simulate

EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        code: int = args.run(args)
        return code
    except EscaleraError as exc:
        print(f"escalera: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="escalera", description="SLA escalation worker for support desks."
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    sim = commands.add_parser(
        "simulate", help="replay events through a policy and show every ticket's SLA"
    )
    sim.add_argument("--policy", required=True, help="policy YAML file")
    sim.add_argument("--events", required=True, help="canonical events, one JSON object per line")
    sim.add_argument(
        "--at", type=_instant, default=None, help="evaluate as of this ISO time (default: now)"
    )
    sim.add_argument("--format", choices=("table", "json"), default="table")
    sim.set_defaults(run=_simulate)

    policy = commands.add_parser("policy", help="policy files")
    policy_commands = policy.add_subparsers(required=True, metavar="ACTION")
    check = policy_commands.add_parser(
        "check", help="validate policy files; exit 2 naming file, line and field"
    )
    check.add_argument("files", nargs="+")
    check.set_defaults(run=_policy_check)
    return parser


def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time") from exc
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset: write e.g. {text}+01:00")
    return value


def _simulate(args: argparse.Namespace) -> int:
    policy = load_policy(args.policy)
    events = read_events(args.events)
    at = args.at or datetime.now(UTC)
    result = simulate(policy, events, at)
    if args.format == "json":
        print(json.dumps(simulation_json(result), indent=2, ensure_ascii=False))
    else:
        simulation_table(result, Console())
    return 0


def _policy_check(args: argparse.Namespace) -> int:
    failed = False
    for path in args.files:
        try:
            policy = load_policy(path)
        except EscaleraError as exc:
            print(exc, file=sys.stderr)
            failed = True
        else:
            print(
                f"{path}: ok ({policy.name}: "
                f"{len(policy.plans)} plans, {len(policy.targets)} targets)"
            )
    return EXIT_USAGE if failed else 0


if __name__ == "__main__":
    sys.exit(main())
