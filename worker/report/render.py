"""Report output: sections of rows as a rich table, CSV, or JSON. Knows no report's meaning."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

Cell = str | int | float | None
FORMATS = ("table", "json", "csv")


@dataclass(frozen=True)
class Section:
    title: str
    headers: tuple[str, ...]
    rows: list[tuple[Cell, ...]]


def print_table(sections: Sequence[Section], console: Console) -> None:
    for section in sections:
        # Text, not str: a key like "update#1:warning:75" or a customer named "[b]" is shown
        # as written, never read as rich markup or an emoji code
        table = Table(title=Text(section.title), title_justify="left")
        for header in section.headers:
            table.add_column(header, overflow="fold")
        for row in section.rows:
            table.add_row(*(Text("—" if cell is None else str(cell)) for cell in row))
        console.print(table)


def to_csv(section: Section) -> str:
    """The first (main) section of a report, one row per line, headers first."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(section.headers)
    writer.writerows(["" if cell is None else cell for cell in row] for row in section.rows)
    return out.getvalue()


def to_json(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, indent=2)


def percent(value: float | None) -> str | None:
    return None if value is None else f"{value:.1f} %"


def span(delta: timedelta | None) -> str | None:
    """``2d 3h 05m``; a negative span is prefixed with ``-``."""
    if delta is None:
        return None
    sign, seconds = ("-" if delta < timedelta(0) else ""), abs(int(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    text = f"{days}d {hours}h {rest // 60:02d}m" if days else f"{hours}h {rest // 60:02d}m"
    return sign + text


def iso(value: datetime | None, zone: Any) -> str | None:
    return None if value is None else value.astimezone(zone).isoformat()


def clock(value: datetime, zone: Any) -> str:
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M")
