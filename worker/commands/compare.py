"""What-if: ``simulate --compare OLD NEW`` over an events file, and the printing it shares with
``recompute --dry-run`` (which reads the stored history: `worker.commands.maintenance`)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console

from shared.event_file import read_events
from shared.policy_file import load_policy
from worker.report.compare import Comparison, Side, compare, histories
from worker.report.compare_views import (
    comparison_csv_section,
    comparison_json,
    comparison_sections,
)
from worker.report.render import print_table, to_csv, to_json


def simulate_compare_command(args: argparse.Namespace) -> int:
    """Replay the events file through both policies and print what the second one changes."""
    old_file, new_file = args.compare
    old = Side.of(old_file, load_policy(old_file))
    new = Side.of(new_file, load_policy(new_file))
    events = read_events(args.events)
    report = compare(old, new, histories(events), args.at or datetime.now(UTC))
    zone = zone_of(new)
    show([report], zone, args.format, comparison_json(report, zone))
    return 0


def zone_of(side: Side) -> ZoneInfo:
    """Times are shown (and a day read) in the compared policy's zone."""
    return ZoneInfo(side.policy.default_timezone)


def show(reports: Sequence[Comparison], zone: ZoneInfo, fmt: str, document: dict[str, Any]) -> None:
    if fmt == "json":
        print(to_json(document))
    elif fmt == "csv":
        print(to_csv(comparison_csv_section(reports)), end="")
    else:
        console = Console()
        for report in reports:
            print_table(comparison_sections(report, zone), console)
