"""Micro-benchmark: our business-time calendar vs the ``businesstimedelta`` package.

Run from the repository root (needs the ``bench`` extra: businesstimedelta, pytz)::

    python bench/calendar_bench.py            # full run, ~1-2 minutes on 2 cores
    python bench/calendar_bench.py --help     # input counts and repetitions

It times ``WeeklyCalendar.add`` / ``WeeklyCalendar.elapsed`` and the equivalent
``datetime + BusinessTimeDelta`` / ``Rules.difference`` on the *same* calendars and the *same*
inputs, and checks that every result agrees (compared as UTC instants / timedeltas).

Our calendar caches each local day's working intervals inside the instance, so it is timed twice:

- ``warm``: one instance serves all calls and its day cache is already populated (the production
  case: one calendar object per policy serves every ticket). The 10x bar applies to this column.
- ``cold``: the day cache is cleared before every single call, so each call pays for building
  every day it touches (zone conversions, holiday look-ups). Printed so nobody is misled.

``businesstimedelta`` keeps no state between calls, so it has a single column. It takes
milliseconds per call for long spans (its HolidayRule walks day by day to the next holiday on
every step), so ``add 30bd`` and ``elapsed`` use only the first ``--long-n`` inputs, for both.

No input is excluded from the cross-check: with every rule given the calendar's pytz zone (a
HolidayRule without ``tz`` closes UTC days, not local ones), whole-second inputs (``difference``
drops microseconds) and holidays given as a set of dates, businesstimedelta agreed with us on all
of them, including edge instants (openings, closings, lunch, holiday midnights, DST changes).

Exit status: 0 if every warm speed-up is at least ``--bar`` (10x); 1 if one is below it;
2 if any result differs (the differing inputs are printed; the timings are then moot).
"""

from __future__ import annotations

import argparse
import gc
import platform
import random
import shlex
import statistics
import sys
import time as _time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

import businesstimedelta as btd
import holidays
import pytz

# ``python bench/calendar_bench.py`` puts bench/ (not the repository root) on sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scheduler.calendar import WeeklyCalendar, zone

SEED = 42
YEAR_START = datetime(2026, 1, 1, tzinfo=UTC)
YEAR_END = datetime(2027, 1, 1, tzinfo=UTC)
HOLIDAY_YEARS = [2026, 2027]
WEEKDAYS = (0, 1, 2, 3, 4)  # Monday..Friday


# -- calendars ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Spec:
    """One calendar, described once and built for both libraries."""

    name: str
    zone: str
    ranges: tuple[tuple[time, time], ...]  # working ranges of each weekday, local wall clock
    country: str | None  # ``holidays`` country code, or None for no holidays
    note: str = ""

    def holiday_dates(self) -> frozenset[date]:
        if self.country is None:
            return frozenset()
        return frozenset(holidays.country_holidays(self.country, years=HOLIDAY_YEARS))

    def day_length(self) -> timedelta:
        return sum((_span(a, b) for a, b in self.ranges), timedelta())


def _seconds(t: time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


def _span(a: time, b: time) -> timedelta:
    return timedelta(seconds=_seconds(b) - _seconds(a))


SPECS = (
    Spec("Madrid 8-17 ES", "Europe/Madrid", ((time(8), time(17)),), "ES"),
    Spec(
        "New York 9-12,13-18 US",
        "America/New_York",
        ((time(9), time(12)), (time(13), time(18))),
        "US",
    ),
    # businesstimedelta cannot express 00:00-24:00: datetime.time has no 24:00; 00:00-00:00 gives
    # empty days (Rules.next then loops forever); an "overnight" WorkDayRule (end < start) skips
    # the rest of the current shift when asked from inside it (next() only looks at today's
    # shift while the clock is before max(start, end)), so chaining 00:00-12:00 + 12:00-00:00
    # loses time (Wed 13:00 + 1h gives Thu 01:00). So the "24x5" calendar is Mon-Fri
    # 00:00-23:59 on both sides, with no holidays, as specified for it.
    Spec(
        "Tokyo 0-23:59 (24x5-ish)",
        "Asia/Tokyo",
        ((time(0), time(23, 59)),),
        None,
        note="00:00-23:59: businesstimedelta has no 24:00",
    ),
)


def build_ours(spec: Spec, holiday_dates: frozenset[date]) -> WeeklyCalendar:
    hours = {wd: [(_seconds(a), _seconds(b)) for a, b in spec.ranges] for wd in WEEKDAYS}
    return WeeklyCalendar(
        tz=zone(spec.zone),
        hours=hours,
        business_day=spec.day_length(),
        is_holiday=holiday_dates.__contains__,
    )


def build_theirs(spec: Spec, holiday_dates: frozenset[date]) -> btd.Rules:
    """The same calendar as businesstimedelta rules: one WorkDayRule from the first opening to
    the last closing, a LunchTimeRule for each gap between ranges, a HolidayRule.

    The HolidayRule gets the same frozenset of dates as ours (the fastest membership test it can
    have; a ``holidays`` object would be slower). Every rule gets the pytz zone: rules default to
    UTC, and a HolidayRule without ``tz`` would close UTC days instead of local ones.
    """
    tz = pytz.timezone(spec.zone)
    rules: list[Any] = [
        btd.WorkDayRule(
            start_time=spec.ranges[0][0],
            end_time=spec.ranges[-1][1],
            working_days=list(WEEKDAYS),
            tz=tz,
        )
    ]
    for (_, gap_start), (gap_end, _) in zip(spec.ranges, spec.ranges[1:], strict=False):
        rules.append(
            btd.LunchTimeRule(
                start_time=gap_start, end_time=gap_end, working_days=list(WEEKDAYS), tz=tz
            )
        )
    if holiday_dates:
        rules.append(btd.HolidayRule(holiday_dates, tz=tz))
    return btd.Rules(rules)


# -- inputs -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Inputs:
    """Offsets (whole seconds, so businesstimedelta's second-resolution difference is exact)."""

    start_s: tuple[int, ...]  # seconds after 2026-01-01T00:00Z, uniform over 2026
    gap_s: tuple[int, ...]  # elapsed pairs: end = start + 0..60 calendar days

    @classmethod
    def generate(cls, n: int) -> Inputs:
        rng = random.Random(SEED)
        year = int((YEAR_END - YEAR_START).total_seconds())
        starts = tuple(rng.randrange(year) for _ in range(n))
        gaps = tuple(rng.randrange(60 * 86400 + 1) for _ in range(n))
        return cls(starts, gaps)

    def starts(self, tz_name: str) -> list[datetime]:
        tz = zone(tz_name)
        return [(YEAR_START + timedelta(seconds=s)).astimezone(tz) for s in self.start_s]

    def pairs(self, tz_name: str) -> list[tuple[datetime, datetime]]:
        return [
            (start, (start + timedelta(seconds=gap)).astimezone(zone(tz_name)))
            for start, gap in zip(self.starts(tz_name), self.gap_s, strict=True)
        ]


# -- one operation on one calendar, for both libraries --------------------------------------------
@dataclass
class Case:
    """A benchmarked operation: ``ours(arg)`` and ``theirs(arg)`` over the same ``args``."""

    op: str
    spec: Spec
    cal: WeeklyCalendar
    ours: Callable[[Any], Any]
    theirs: Callable[[Any], Any]
    args: list[Any]


def make_cases(spec: Spec, cal: WeeklyCalendar, rule: btd.Rules, inputs: Inputs) -> list[Case]:
    starts = inputs.starts(spec.zone)
    cases = []
    for label, duration in (
        ("add 1h", timedelta(hours=1)),
        ("add 8h", timedelta(hours=8)),
        ("add 30bd", 30 * spec.day_length()),
    ):
        delta = btd.BusinessTimeDelta(rule, timedelta=duration)
        cases.append(
            Case(
                label,
                spec,
                cal,
                ours=lambda s, d=duration: cal.add(s, d),
                theirs=lambda s, b=delta: s + b,
                args=starts,
            )
        )
    cases.append(
        Case(
            "elapsed 0-60d",
            spec,
            cal,
            ours=lambda p: cal.elapsed(*p),
            theirs=lambda p: rule.difference(*p).timedelta,
            args=inputs.pairs(spec.zone),
        )
    )
    return cases


# -- correctness and timing --------------------------------------------------------------------
def _utc(value: Any) -> Any:
    """Both results as comparable values: instants in UTC (naive = UTC, as businesstimedelta)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    return value


CHUNK = 50  # inputs per interleaved slice, see _pass


def _run(
    fn: Callable[[Any], Any], args: Sequence[Any], before: Callable[[], Any] | None
) -> tuple[float, list[Any]]:
    """One timed pass of ``fn`` over ``args`` (``before`` runs before every call): the seconds
    taken and the results. Both libraries go through this same loop, so they share its cost."""
    if before is None:
        t0 = _time.perf_counter()
        results = [fn(arg) for arg in args]
    else:
        t0 = _time.perf_counter()
        results = [(before(), fn(arg))[1] for arg in args]
    return _time.perf_counter() - t0, results


@dataclass(frozen=True)
class Timing:
    passes_us: list[float]  # µs per op of each timed pass over all the inputs
    results: list[Any]  # of the first pass, for the cross-check

    @property
    def best_us(self) -> float:
        return min(self.passes_us)

    @property
    def median_us(self) -> float:
        return statistics.median(self.passes_us)

    def __str__(self) -> str:
        return f"{self.best_us:9.1f} /{self.median_us:9.1f}"


@dataclass(frozen=True)
class Row:
    case: Case
    n: int
    warm: Timing
    cold: Timing
    theirs: Timing
    mismatches: list[tuple[Any, Any, Any]]  # (input, ours, theirs)

    def _speedup(self, ours: Timing) -> float:
        """Median over the passes timed side by side of businesstimedelta / ours."""
        return statistics.median(
            t / o for t, o in zip(self.theirs.passes_us, ours.passes_us, strict=False)
        )

    @property
    def speedup_warm(self) -> float:
        return self._speedup(self.warm)

    @property
    def speedup_cold(self) -> float:
        return self._speedup(self.cold)


def _pass(case: Case, args: Sequence[Any], ours: bool, theirs: bool) -> dict[str, Any]:
    """One pass over ``args`` in slices of CHUNK inputs; each slice is timed cold, then warm,
    then with businesstimedelta, so a machine that changes speed during the run (frequency
    scaling, busy neighbours) affects the three alike instead of skewing the ratios."""
    clear = case.cal._cache.clear
    took: dict[str, Any] = {k: [0.0, []] for k in ("cold", "warm", "theirs")}

    def timed(kind: str, fn: Callable[[Any], Any], chunk: Sequence[Any], before: Any) -> None:
        seconds, results = _run(fn, chunk, before)
        took[kind][0] += seconds
        took[kind][1] += results

    gc.collect()
    gc.disable()
    try:
        for i in range(0, len(args), CHUNK):
            chunk = args[i : i + CHUNK]
            if ours:
                timed("cold", case.ours, chunk, clear)
                _run(case.ours, chunk, None)  # repopulate the day cache: the warm case
                timed("warm", case.ours, chunk, None)
            if theirs:
                timed("theirs", case.theirs, chunk, None)
    finally:
        gc.enable()
    return took


def run_case(case: Case, n: int, repeat_ours: int, repeat_theirs: int) -> Row:
    """Time ours cold, ours warm and businesstimedelta on the first ``n`` inputs, then compare
    the three result lists input by input (every result is checked, not a sample)."""
    args = case.args[:n]
    passes = [
        _pass(case, args, ours=i < repeat_ours, theirs=i < repeat_theirs)
        for i in range(max(repeat_ours, repeat_theirs))
    ]

    def timing(kind: str) -> Timing:
        done = [p[kind] for p in passes if p[kind][1]]
        return Timing([s / len(args) * 1e6 for s, _ in done], done[0][1])

    row = Row(case, len(args), timing("warm"), timing("cold"), timing("theirs"), [])
    results = zip(row.warm.results, row.cold.results, row.theirs.results, strict=True)
    for arg, (w, c, t) in zip(args, (map(_utc, r) for r in results), strict=True):
        if w != c:
            row.mismatches.append((arg, f"warm {w} != cold {c}", t))
        elif w != t:
            row.mismatches.append((arg, w, t))
    return row


def edge_starts(spec: Spec, holiday_dates: frozenset[date]) -> list[datetime]:
    """Instants where calendars go wrong: one second either side of every opening and closing
    (and midnight) on the days around each 2026 holiday and DST change and in one plain week,
    plus every UTC hour across each DST change."""
    tz = zone(spec.zone)
    year = [date(2026, 1, 1) + timedelta(days=i) for i in range(365)]

    def noon_offset(day: date) -> timedelta | None:
        return datetime.combine(day, time(12), tzinfo=tz).utcoffset()

    dst_days = [d for d in year[1:] if noon_offset(d) != noon_offset(d - timedelta(days=1))]
    anchors = [*(h for h in holiday_dates if h.year == 2026), *dst_days]
    days = {d + timedelta(days=k) for d in anchors for k in (-1, 0, 1)}
    days |= {date(2026, 3, 2) + timedelta(days=k) for k in range(7)}
    bounds = {_seconds(t) for rng in spec.ranges for t in rng} | {0}
    secs = sorted({b + k for b in bounds for k in (-1, 0, 1)} & set(range(86400)))
    starts = [
        datetime.combine(d, time(s // 3600, s % 3600 // 60, s % 60), tzinfo=tz)
        for d in sorted(days)
        for s in secs
    ]
    for d in dst_days:
        midnight = datetime.combine(d, time(0), tzinfo=UTC)
        starts += [(midnight + timedelta(hours=h)).astimezone(tz) for h in range(-12, 13)]
    return starts


def edge_check(
    spec: Spec, cal: WeeklyCalendar, rule: btd.Rules, holiday_dates: frozenset[date]
) -> tuple[int, list[tuple[str, Any, Any, Any]]]:
    """Untimed cross-check on edge instants: (results compared, [(op, input, ours, theirs)])."""
    starts = edge_starts(spec, holiday_dates)
    checks: list[tuple[str, Callable[[Any], Any], Callable[[Any], Any], list[Any]]] = []
    for duration in (timedelta(0), timedelta(seconds=1), timedelta(hours=1), spec.day_length()):
        delta = btd.BusinessTimeDelta(rule, timedelta=duration)
        checks.append(
            (
                f"add {duration}",
                lambda s, d=duration: cal.add(s, d),
                lambda s, b=delta: s + b,
                starts,
            )
        )
    for span in (timedelta(hours=5), timedelta(days=3)):
        checks.append(
            (
                f"elapsed {span}",
                lambda p: cal.elapsed(*p),
                lambda p: rule.difference(*p).timedelta,
                [(s, (s + span).astimezone(s.tzinfo)) for s in starts],
            )
        )
    bad = [
        (op, arg, ours, theirs)
        for op, fn_ours, fn_theirs, args in checks
        for arg in args
        if (ours := _utc(fn_ours(arg))) != (theirs := _utc(fn_theirs(arg)))
    ]
    return sum(len(args) for *_, args in checks), bad


# -- main ---------------------------------------------------------------------------------------
CHEAP_OPS = ("add 1h", "add 8h")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time scheduler.calendar against businesstimedelta on the same inputs.",
        epilog="--long-n 2000 --repeat-theirs 1 cross-checks every generated input "
        "(slow: several minutes).",
    )
    parser.add_argument(
        "-n", type=int, default=2000, help="inputs generated; all used for add 1h / add 8h"
    )
    parser.add_argument(
        "--long-n",
        type=int,
        default=300,
        help="first N inputs used for add 30bd / elapsed (businesstimedelta takes ms per call)",
    )
    parser.add_argument("--repeat", type=int, default=7, help="timed passes for ours")
    parser.add_argument(
        "--repeat-theirs", type=int, default=3, help="timed passes for businesstimedelta"
    )
    parser.add_argument("--bar", type=float, default=10.0, help="minimum warm speed-up")
    return parser.parse_args(argv)


def print_header(args: argparse.Namespace) -> None:
    print("$", shlex.join(sys.orig_argv))
    print(
        f"python {platform.python_version()} ({platform.machine()}), "
        f"businesstimedelta {version('businesstimedelta')}, pytz {version('pytz')}, "
        f"holidays {version('holidays')}"
    )
    print(
        f"inputs: random.Random({SEED}) start instants uniform over 2026, whole seconds, in the"
        " calendar's zone;\n"
        f"        add 1h / 8h on {args.n} starts, add 30 x day length and elapsed"
        f" (end = start + 0..60 days) on the first {min(args.long_n, args.n)}"
    )
    for spec in SPECS:
        hol = f"{spec.country} holidays 2026-2027" if spec.country else "no holidays"
        extra = f"; {spec.note}" if spec.note else ""
        print(f"calendar {spec.name}: {spec.zone}, Mon-Fri, {hol}{extra}")
    print()


def print_table(rows: list[Row], bar: float) -> None:
    print(
        "µs per op, best / median of the passes; × = median over the passes of"
        " businesstimedelta / ours\n(passes interleaved in slices of"
        f" {CHUNK} inputs: cold, warm, businesstimedelta, next slice, ...)"
    )
    head = (
        f"{'operation':<14} {'calendar':<25} {'n':>5}  {'ours warm':>19}  {'ours cold':>19}  "
        f"{'businesstimedelta':>19}  {'× warm':>7} {'× cold':>7}"
    )
    print(head)
    print("-" * len(head))
    for row in rows:
        flag = "" if row.speedup_warm >= bar else f"  < {bar:g}x"
        print(
            f"{row.case.op:<14} {row.case.spec.name:<25} {row.n:>5}  {row.warm!s:>19}  "
            f"{row.cold!s:>19}  {row.theirs!s:>19}  {row.speedup_warm:>7.1f} "
            f"{row.speedup_cold:>7.1f}{flag}"
        )


def report_mismatches(rows: list[Row], edge_bad: list[tuple[str, str, Any, Any, Any]]) -> int:
    for row in rows:
        if row.mismatches:
            print(f"MISMATCH {row.case.op} on {row.case.spec.name}: {len(row.mismatches)} inputs")
        for arg, ours, theirs in row.mismatches[:10]:
            print(f"  input  {arg}\n  ours   {ours}\n  theirs {theirs}")
    if edge_bad:
        print(f"MISMATCH on {len(edge_bad)} edge inputs")
    for name, op, arg, ours, theirs in edge_bad[:20]:
        print(f"  {op} on {name}: input {arg}\n  ours   {ours}\n  theirs {theirs}")
    return sum(len(row.mismatches) for row in rows) + len(edge_bad)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print_header(args)
    t0 = _time.perf_counter()
    inputs = Inputs.generate(args.n)
    rows: list[Row] = []
    edge_compared, edge_bad = 0, []
    for spec in SPECS:
        holiday_dates = spec.holiday_dates()
        cal = build_ours(spec, holiday_dates)
        rule = build_theirs(spec, holiday_dates)
        compared, bad_edges = edge_check(spec, cal, rule, holiday_dates)
        edge_compared += compared
        edge_bad += [(spec.name, *bad) for bad in bad_edges]
        cal._cache.clear()
        rows += [
            run_case(
                case,
                args.n if case.op in CHEAP_OPS else args.long_n,
                args.repeat,
                args.repeat_theirs,
            )
            for case in make_cases(spec, cal, rule, inputs)
        ]
    compared = sum(row.n for row in rows) + edge_compared
    bad = report_mismatches(rows, edge_bad)
    if bad:
        print(f"cross-check FAILED: {bad} of {compared} results differ (timings below are moot)")
    else:
        print(
            f"cross-check: ours == businesstimedelta on all {compared} inputs "
            f"({compared - edge_compared} random, warm and cold; {edge_compared} edge instants)"
        )
    print()
    print_table(rows, args.bar)
    slow = [row for row in rows if row.speedup_warm < args.bar]
    worst = min(rows, key=lambda row: row.speedup_warm)
    print(
        f"\nbar: ours (warm) >= {args.bar:g}x faster than businesstimedelta: "
        f"{'FAIL' if slow else 'OK'}; worst {worst.speedup_warm:.1f}x "
        f"({worst.case.op}, {worst.case.spec.name}); {_time.perf_counter() - t0:.0f}s"
    )
    if bad:
        return 2
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
