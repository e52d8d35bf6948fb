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


# A terminal table's cost beyond its cells: a border and a space either side of every column.
BORDER_PER_COLUMN = 3
NARROWEST = 12  # characters a shortened column keeps (or all of it, if it is narrower)
WRAPPED = 20  # characters a column whose text wraps keeps


@dataclass(frozen=True)
class Section:
    title: str
    headers: tuple[str, ...]
    rows: list[tuple[Cell, ...]]
    # On a narrow terminal: the columns in the order they are kept (those not named go first,
    # from the right); and the columns whose text wraps at spaces instead of being cut.
    keep: tuple[str, ...] = ()
    wraps: tuple[str, ...] = ()


@dataclass(frozen=True)
class Layout:
    """Which columns of a section a terminal shows, and how wide each is."""

    shown: tuple[int, ...]  # column indexes, in the section's order
    widths: dict[int, int]
    hidden: tuple[str, ...]  # headers of the columns left out


def layout(section: Section, width: int) -> Layout:
    """Fit a section to ``width`` characters. Columns are taken in the order they are kept,
    each whole if it fits, else shortened to its least (its text cut with "…", or wrapped at
    spaces for the ``wraps`` columns), else left out; the room left then widens the shortened
    ones, most kept first. Every column fits whole when the terminal is wide enough. Pure."""
    cells = [[_text(row[i]) for row in section.rows] for i in range(len(section.headers))]
    natural = {i: max([len(h), *(len(c) for c in cells[i])]) for i, h in enumerate(section.headers)}
    ranked = sorted(natural, key=lambda i: _rank(section, i, cells[i]))
    widths: dict[int, int] = {}
    room = width - 1  # the table's last border
    for i in ranked:
        for tried in (natural[i], _least(section, i, natural[i])):
            if tried + BORDER_PER_COLUMN <= room or not widths:
                widths[i] = tried
                room -= tried + BORDER_PER_COLUMN
                break
    for i in ranked:
        if i in widths and room > 0:
            grown = min(natural[i] - widths[i], room)
            widths[i] += grown
            room -= grown
    hidden = tuple(h for i, h in enumerate(section.headers) if i not in widths)
    return Layout(tuple(sorted(widths)), widths, hidden)


def print_table(sections: Sequence[Section], console: Console) -> None:
    for section in sections:
        fitted = layout(section, console.width)
        # Text, not str: a key like "update#1:warning:75" or a customer named "[b]" is shown
        # as written, never read as rich markup or an emoji code
        caption = (
            Text(
                f"not shown at {console.width} columns: {', '.join(fitted.hidden)} "
                "(a wider terminal, --format csv or --format json shows them)"
            )
            if fitted.hidden
            else None
        )
        table = Table(title=Text(section.title), title_justify="left", caption=caption)
        for i in fitted.shown:
            wraps = section.headers[i] in section.wraps
            table.add_column(
                section.headers[i],
                width=fitted.widths[i],
                no_wrap=not wraps,
                overflow="fold" if wraps else "ellipsis",
            )
        for row in section.rows:
            table.add_row(*(Text(_text(row[i])) for i in fitted.shown))
        console.print(table)


def _text(cell: Cell) -> str:
    return "—" if cell is None else str(cell)


def _least(section: Section, column: int, natural: int) -> int:
    floor = WRAPPED if section.headers[column] in section.wraps else NARROWEST
    return min(natural, floor)


def _rank(section: Section, column: int, cells: list[str]) -> tuple[int, int]:
    """Kept first: the named columns in their order, then the others left to right; a column
    with nothing in it comes last."""
    header = section.headers[column]
    empty = all(c == "—" for c in cells)
    order = section.keep.index(header) if header in section.keep else len(section.keep) + column
    return (empty, order)


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
