"""The ``escalera`` command line: parses arguments and dispatches to `worker.commands`."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from importlib import import_module
from typing import Any

from pydantic import ValidationError
from pydantic_settings import SettingsError

from shared.config import explain, unreadable
from shared.errors import EscaleraError

EXIT_USAGE = 2
Handler = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        handler: Handler = args.run
        return handler(args)
    except EscaleraError as exc:
        print(f"escalera: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ValidationError as exc:
        if exc.title != "Settings":
            raise
        for line in explain(exc):  # a setting that cannot work: say which, not a traceback
            print(f"escalera: {line}", file=sys.stderr)
        return EXIT_USAGE
    except SettingsError as exc:  # a JSON setting that is not JSON
        print(f"escalera: {unreadable(exc)}", file=sys.stderr)
        return EXIT_USAGE


def _lazy(module: str, name: str) -> Handler:
    """Import a command's module only when it runs: `simulate` must not pay for celery."""

    def run(args: argparse.Namespace) -> int:
        handler: Handler = getattr(import_module(f"worker.commands.{module}"), name)
        return handler(args)

    return run


def _file_commands(commands: Any) -> None:
    """The commands that read files and need no server: simulate, policy, integrations."""
    sim = commands.add_parser(
        "simulate", help="replay events through a policy and show every ticket's SLA"
    )
    which = sim.add_mutually_exclusive_group(required=True)
    which.add_argument("--policy", help="policy YAML file")
    which.add_argument(
        "--compare",
        nargs=2,
        metavar=("OLD", "NEW"),
        help="two policy files: the compliance each gives and the tickets whose outcome changes",
    )
    sim.add_argument("--events", required=True, help="canonical events, one JSON object per line")
    sim.add_argument(
        "--at", type=_instant, default=None, help="evaluate as of this ISO time (default: now)"
    )
    sim.add_argument(
        "--format", choices=("table", "json", "csv"), default="table", help="csv: --compare only"
    )
    sim.set_defaults(run=_lazy("offline", "simulate_command"))

    policy = commands.add_parser("policy", help="policy files")
    policy_commands = policy.add_subparsers(required=True, metavar="ACTION")
    check = policy_commands.add_parser(
        "check", help="validate policy files; exit 2 naming file, line and field"
    )
    check.add_argument("files", nargs="+")
    check.set_defaults(run=_lazy("offline", "policy_check_command"))
    policy_schema = policy_commands.add_parser(
        "schema", help="print the policy file's JSON Schema, for editors"
    )
    policy_schema.set_defaults(run=_lazy("offline", "policy_schema_command"))

    portals = commands.add_parser(
        "integrations", help="the portals' integration settings file (docs/integrations.md)"
    )
    portal_commands = portals.add_subparsers(required=True, metavar="ACTION")
    portal_check = portal_commands.add_parser(
        "check", help="validate integration settings files; exit 2 naming file, line and field"
    )
    portal_check.add_argument("files", nargs="+")
    portal_check.set_defaults(run=_lazy("offline", "integrations_check_command"))
    schema = portal_commands.add_parser("schema", help="print the file's JSON Schema")
    schema.set_defaults(run=_lazy("offline", "integrations_schema_command"))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="escalera", description="SLA escalation worker for support desks."
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    _file_commands(commands)

    ingest = commands.add_parser(
        "ingest", help="serve the ingest HTTP API (webhooks in, SLA state out)"
    )
    ingest.add_argument("--host", default="127.0.0.1")
    ingest.add_argument("--port", type=int, default=8080)
    ingest.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="uvicorn worker processes (default: one per core)",
    )
    ingest.set_defaults(run=_lazy("serve", "ingest_command"))

    worker = commands.add_parser(
        "worker", help="apply queued events to the database (celery worker)"
    )
    worker.add_argument("--concurrency", type=int, default=2)
    worker.add_argument(
        "--queues",
        default=None,
        help="Celery queues for firing and delivery, comma-separated (default: the fire queue)",
    )
    worker.add_argument(
        "--no-apply",
        dest="apply",
        action="store_false",
        help="do not drain the events queue here (a worker only for firing and delivery)",
    )
    worker.add_argument(
        "--batch",
        type=int,
        default=500,
        help="events applied per transaction at most (default: 500)",
    )
    worker.add_argument(
        "--appliers",
        type=int,
        default=2,
        help="threads applying events, each its own batches (default: 2)",
    )
    worker.set_defaults(run=_lazy("serve", "worker_command"))

    beat = commands.add_parser("beat", help="hand due checkpoints to the fire queue (celery beat)")
    beat.set_defaults(run=_lazy("serve", "beat_command"))
    for process in (worker, beat):  # ingest serves /metrics on its own port
        process.add_argument(
            "--metrics-port", type=int, default=None, help="serve Prometheus /metrics on this port"
        )
        process.add_argument(
            "--metrics-host", default="127.0.0.1", help="address for --metrics-port"
        )

    up = commands.add_parser(
        "up", help="ingest, worker and beat together, with embedded defaults (Ctrl-C stops)"
    )
    up.add_argument("--port", type=int, default=8080, help="the HTTP API's port (default 8080)")
    up.add_argument(
        "--demo", action="store_true", help="post a morning of tickets, in a fresh database"
    )
    up.add_argument(
        "--redis",
        choices=("auto", "redis-server", "fakeredis"),
        default="auto",
        help="without REDIS_URL: a private redis-server if installed (auto), or fakeredis",
    )
    up.add_argument("--concurrency", type=int, default=2, help="worker processes (default 2)")
    up.add_argument(
        "--policy",
        metavar="NAME_OR_FILE",
        help="the policy in force: one of the policy folder by name (multi-team) or a policy "
        "file's path (default: ESCALERA_DEFAULT_POLICY, else soporte-completo)",
    )
    up.set_defaults(run=_lazy("up", "up_command"))

    db = commands.add_parser("db", help="the database")
    db_commands = db.add_subparsers(required=True, metavar="ACTION")
    db_commands.add_parser("upgrade", help="apply migrations").set_defaults(
        run=_lazy("maintenance", "db_upgrade_command")
    )

    dead = commands.add_parser("dead-letters", help="events that could not be applied")
    dead.add_argument("--retry", type=int, metavar="ID", help="apply dead letter ID again")
    dead.set_defaults(run=_lazy("maintenance", "dead_letters_command"))

    timers = commands.add_parser("timers", help="the Redis index of armed checkpoints")
    timer_commands = timers.add_subparsers(required=True, metavar="ACTION")
    timer_commands.add_parser(
        "reconcile", help="re-arm from the database what Redis lost"
    ).set_defaults(run=_lazy("maintenance", "timers_reconcile_command"))

    _add_recompute(commands)
    _add_sync(commands)
    _add_report(commands)
    return parser


def _add_recompute(commands: Any) -> None:
    recompute = commands.add_parser(
        "recompute", help="re-apply the current policy to stored tickets"
    )
    which = recompute.add_mutually_exclusive_group(required=True)
    which.add_argument("--ticket", help="one ticket: SOURCE/ID or ID")
    which.add_argument("--all-open", action="store_true", help="every ticket not solved or closed")
    which.add_argument(
        "--all", action="store_true", help="every stored ticket (with --dry-run only)"
    )
    recompute.add_argument(
        "--dry-run",
        action="store_true",
        help="write nothing: compare the policy each ticket is under with --policy FILE",
    )
    recompute.add_argument(
        "--policy", metavar="FILE", help="with --dry-run: the policy file to compare"
    )
    recompute.add_argument(
        "--from", dest="from_", type=_day_or_instant, help="with --dry-run: tickets created from"
    )
    recompute.add_argument(
        "--to", type=_day_or_instant, help="with --dry-run: tickets created until, exclusive"
    )
    recompute.add_argument(
        "--at", type=_instant, default=None, help="with --dry-run: evaluate as of (default: now)"
    )
    recompute.add_argument(
        "--format", choices=("table", "json", "csv"), default=None, help="with --dry-run"
    )
    recompute.set_defaults(run=_lazy("maintenance", "recompute_command"))


def _add_sync(commands: Any) -> None:
    sync = commands.add_parser(
        "sync", help="pull a portal's changes since a time: what its webhooks missed (docs/sync.md)"
    )
    sync.add_argument("source", metavar="SOURCE", help="zendesk, jira or freshdesk")
    sync.add_argument(
        "--since",
        required=True,
        type=_span_day_or_instant,
        help="from this ISO time with its offset, a date (midnight in the policy's zone), or a "
        "span back from now (90m, 2h, 1d: for a timer)",
    )
    sync.add_argument(
        "--until", type=_day_or_instant, default=None, help="until, exclusive (default: now)"
    )
    sync.add_argument("--dry-run", action="store_true", help="read and report, but queue nothing")
    sync.set_defaults(run=_lazy("sync", "sync_command"))


def _add_report(commands: Any) -> None:
    report = commands.add_parser(
        "report",
        help="compliance, the at-risk queue, a ticket's timeline, allowances, acknowledgements",
    )
    kinds = report.add_subparsers(required=True, metavar="REPORT")
    compliance = kinds.add_parser(
        "compliance", help="share of promises kept per metric, priority, plan and customer"
    )
    _period_options(compliance, "from (default: 30 days before --to)")
    compliance.add_argument("--every", choices=("day", "week", "month"), default="week")
    compliance.add_argument(
        "--worst", type=_count, default=10, help="offenders listed (default 10)"
    )
    compliance.add_argument("--plot", type=_png, metavar="FILE.png", help="draw it over time")
    compliance.set_defaults(run=_lazy("report", "compliance_command"))

    risk = kinds.add_parser("at-risk", help="open tickets by time left to their next checkpoint")
    _report_options(risk)
    risk.add_argument("--limit", type=_count, default=None, help="list at most N tickets")
    risk.set_defaults(run=_lazy("report", "at_risk_command"))

    timeline = kinds.add_parser(
        "timeline", help="a ticket's events, pauses, checkpoints and notifications"
    )
    timeline.add_argument("ticket", help="SOURCE/ID (or ID, for source api)")
    timeline.add_argument("--at", type=_instant, default=None, help="as of (default: now)")
    timeline.add_argument("--format", choices=("table", "json", "csv"), default="table")
    timeline.set_defaults(run=_lazy("report", "timeline_command"))

    allowances = kinds.add_parser(
        "allowances", help="tickets per customer against the yearly allowance; unknown contacts"
    )
    _period_options(allowances, "from (default: January 1 of --to's year)")
    allowances.set_defaults(run=_lazy("report", "allowances_command"))

    acks = kinds.add_parser(
        "acks", help="per route: pages sent, acknowledged, time to acknowledge (p50, p90)"
    )
    _period_options(acks, "pages first delivered from (default: 30 days before --to)")
    acks.set_defaults(run=_lazy("report", "acks_command"))


def _report_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", help="policy name (default: ESCALERA_DEFAULT_POLICY)")
    parser.add_argument(
        "--at", type=_instant, default=None, help="evaluate as of this ISO time (default: now)"
    )
    parser.add_argument("--format", choices=("table", "json", "csv"), default="table")


def _period_options(parser: argparse.ArgumentParser, from_help: str) -> None:
    _report_options(parser)
    parser.add_argument("--from", dest="from_", type=_day_or_instant, help=from_help)
    parser.add_argument("--to", type=_day_or_instant, help="until, exclusive (default: --at)")


def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time") from exc
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset: write e.g. {text}+01:00")
    return value


def _day_or_instant(text: str) -> date | datetime:
    """``2026-03-01`` (midnight in the policy's zone) or an ISO time with its offset."""
    if len(text) == 10:
        try:
            return date.fromisoformat(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from exc
    return _instant(text)


def _span_day_or_instant(text: str) -> timedelta | date | datetime:
    """``90m``, ``2h`` or ``1d`` back from now, else as `_day_or_instant`."""
    found = re.fullmatch(r"(\d{1,5})([mhd])", text.strip())
    if found is None:
        return _day_or_instant(text)
    number, unit = int(found[1]), found[2]
    span = {"m": timedelta(minutes=number), "h": timedelta(hours=number)}.get(unit)
    return span if span is not None else timedelta(days=number)


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    return int(text)


def _png(text: str) -> str:
    if not text.lower().endswith(".png"):
        raise argparse.ArgumentTypeError(f"{text!r}: the plot is a PNG file (name it FILE.png)")
    return text


if __name__ == "__main__":
    sys.exit(main())
