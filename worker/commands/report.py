"""``escalera report``: compliance, the at-risk queue, a ticket's timeline, allowances,
acknowledgement times."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from rich.console import Console

from shared.errors import EscaleraError
from worker.policies.book import LoadedPolicy
from worker.report import service
from worker.report.plot import plot_trend
from worker.report.render import print_table, to_csv, to_json
from worker.report.tickets import Period
from worker.runtime import runtime

DEFAULT_DAYS = 30


def compliance_command(args: argparse.Namespace) -> int:
    rt = runtime()
    loaded = _policy(args)
    period = _period(args, loaded, default_start=lambda end: end - timedelta(days=DEFAULT_DAYS))
    with rt.sessions() as session:
        output, points = service.compliance_report(
            session, loaded, period, every=args.every, worst=args.worst
        )
    if args.plot is not None:
        plot_trend(loaded.policy, points, Path(args.plot), args.every)
    return _emit(args, output)


def at_risk_command(args: argparse.Namespace) -> int:
    rt = runtime()
    loaded = _policy(args)
    with rt.sessions() as session:
        output = service.at_risk_report(session, loaded, _at(args), limit=args.limit)
    return _emit(args, output)


def timeline_command(args: argparse.Namespace) -> int:
    rt = runtime()
    source, _, ticket_id = args.ticket.rpartition("/")
    with rt.sessions() as session:
        output = service.timeline_report(
            session, rt.policies, source or "api", ticket_id, _at(args), directory=rt.directory
        )
    return _emit(args, output)


def allowances_command(args: argparse.Namespace) -> int:
    rt = runtime()
    loaded = _policy(args)
    zone = ZoneInfo(loaded.policy.default_timezone)

    def year_start(end: datetime) -> datetime:
        return datetime.combine(date(end.astimezone(zone).year, 1, 1), time(0), tzinfo=zone)

    period = _period(args, loaded, default_start=year_start)
    with rt.sessions() as session:
        output = service.allowance_report(session, loaded, period)
    return _emit(args, output)


def acks_command(args: argparse.Namespace) -> int:
    rt = runtime()
    loaded = _policy(args)
    period = _period(args, loaded, default_start=lambda end: end - timedelta(days=DEFAULT_DAYS))
    with rt.sessions() as session:
        output = service.acks_report(session, loaded, period)
    return _emit(args, output)


def _emit(args: argparse.Namespace, output: service.Output) -> int:
    if args.format == "json":
        print(to_json(output.document))
    elif args.format == "csv":
        print(to_csv(output.sections[0]), end="")
    else:
        print_table(output.sections, Console())
    return 0


def _policy(args: argparse.Namespace) -> LoadedPolicy:
    rt = runtime()
    name = args.policy or rt.settings.default_policy
    try:
        return rt.policies.named(name)
    except KeyError:
        raise EscaleraError(f"no policy named {name!r} in {rt.settings.policy_dir}") from None


def _at(args: argparse.Namespace) -> datetime:
    value: datetime | None = args.at
    return value or datetime.now(UTC)


def _period(
    args: argparse.Namespace,
    loaded: LoadedPolicy,
    *,
    default_start: Callable[[datetime], datetime],
) -> Period:
    zone = ZoneInfo(loaded.policy.default_timezone)
    at = _at(args)
    end = _instant(args.to, zone) if args.to is not None else at
    start = _instant(args.from_, zone) if args.from_ is not None else default_start(end)
    if end <= start:
        raise EscaleraError(f"--from ({start.isoformat()}) must be before --to ({end.isoformat()})")
    return Period(start, end, at)


def _instant(value: date | datetime, zone: ZoneInfo) -> datetime:
    """A date is its midnight in the policy's time zone."""
    if isinstance(value, datetime):
        return value
    return datetime.combine(value, time(0), tzinfo=zone)
