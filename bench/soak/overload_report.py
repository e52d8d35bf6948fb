"""The overload run's report: what the database, the worker's log and the sink say, judged
(`bench.soak.overload`), as tables and, when asked, a PNG (`bench.soak.plot`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench._support import percentile, pg_connect, table
from bench.soak.overload import (
    BAR_S,
    WITHIN_S,
    Phase,
    Point,
    Verdict,
    buckets,
    fired_in_log,
    judge,
    phase,
    recovery_s,
)

# each checkpoint that fell due: when (seconds since the epoch) and how late it fired; one still
# armed counts as late as it is now
LATENESS = (
    "SELECT EXTRACT(EPOCH FROM due_at), EXTRACT(EPOCH FROM coalesce(fired_at, now()) - due_at)"
    " FROM checkpoints WHERE state = 'fired' OR (state = 'armed' AND due_at <= now())"
)


@dataclass
class Run:
    """What the soak hands over: the database, when the load began (time.time()), the rate
    schedule, the samples, what the sink and the load saw, the worker's log."""

    database: str
    began_at: float
    phases: list[Phase]
    points: list[Point]
    accepted_ids: set[str]
    sink_keys: Counter[str]
    worker_log: Path
    claims_per_checkpoint: float


def read(run: Run) -> tuple[list[tuple[float, float]], Verdict]:
    """Lateness (due, late) in seconds since the load began, and the judge's verdict."""
    with pg_connect(run.database) as conn:
        points = [(float(d) - run.began_at, float(late)) for d, late in conn.execute(LATENESS)]
        stored = Counter[str](
            {
                str(e): int(n)
                for e, n in conn.execute("SELECT event_id, count(*) FROM events GROUP BY 1")
            }
        )
        dead = {str(e) for (e,) in conn.execute("SELECT event_id FROM dead_letters")}
        row = conn.execute("SELECT count(*) FROM checkpoints WHERE state = 'fired'").fetchone()
    fired = int(row[0]) if row else 0
    verdict = judge(
        run.accepted_ids,
        stored,
        dead=dead,
        fired=fired,
        fired_log=fired_in_log(run.worker_log),
        sink_keys=run.sink_keys,
    )
    return points, verdict


def _within(points: Sequence[Point], start: float, end: float) -> list[Point]:
    return [p for p in points if start <= p.at <= end]


def phase_rows(run: Run, lateness: list[tuple[float, float]]) -> list[tuple[str, ...]]:
    """Each phase, then the tail (no new tickets, lives ending) and the drain."""
    last = run.points[-1].at if run.points else 0.0
    spans = [(p.name, p.start, p.end, f"{p.rate:,.0f}") for p in run.phases]
    spans.append(("tail and drain", run.phases[-1].end, last, "-"))
    rows = []
    for name, start, end, asked in spans:
        inside = _within(run.points, start, end)
        before = [p for p in run.points if p.at <= start]
        first = before[-1] if before else Point(0.0, 0, 0, 0, 0)
        if not inside:
            continue
        span = inside[-1].at - first.at
        late = sorted(v for due, v in lateness if start <= due < end)
        rows.append(
            (
                name,
                f"{start:.0f}-{end:.0f}",
                asked,
                f"{(inside[-1].accepted - first.accepted) / span:,.0f}" if span else "-",
                f"{(inside[-1].applied - first.applied) / span:,.0f}" if span else "-",
                f"{max(p.events_queue for p in inside):,}",
                f"{max(p.fire_queue for p in inside):,}",
                f"{len(late):,}",
                *(f"{percentile(late, q):.2f}" if late else "-" for q in (50, 99)),
                f"{late[-1]:.2f}" if late else "-",
            )
        )
    return rows


def report(run: Run, width: float, plot_to: Path | None, title: str) -> bool:
    """Print the overload's tables and verdict (and write the plot); True if every bar is met."""
    lateness, verdict = read(run)
    print("\noverload: the phases (events/s; lateness of the checkpoints due in each, seconds)")
    headers = ["phase", "s", "asked/s", "accepted/s", "applied/s", "events queue most"]
    headers += ["fire queue most", "due", "firing p50", "p99", "max"]
    print(table(headers, phase_rows(run, lateness)))

    overload, recovery = phase(run.phases, "overload"), phase(run.phases, "recovery")
    by_due = buckets(lateness, width)
    shown = [b for b in by_due if overload.start - 60 <= b.start < recovery.end]
    print(f"\nfiring lateness by due time ({width:g} s buckets, from 60 s before the overload)")
    print(
        table(
            ["due at (s)", "phase", "n", "p50", "p99", "max"],
            [
                (
                    f"{b.start:.0f}",
                    next((p.name for p in run.phases if p.start <= b.start < p.end), "tail"),
                    b.n,
                    f"{b.p50:.2f}",
                    f"{b.p99:.2f}",
                    f"{b.most:.2f}",
                )
                for b in shown
            ],
        )
    )
    recovered = recovery_s(by_due, width, overload.end, recovery.end)
    rows = [
        ("events accepted (202, distinct ids)", f"{verdict.accepted:,}"),
        ("events stored (distinct ids)", f"{verdict.stored:,}"),
        ("  of those accepted, kept aside as dead letters", f"{verdict.dead_lettered:,}"),
        ("  stored with no 202 seen (the answer lost)", f"{verdict.stored_unanswered:,}"),
        ("lost: accepted, neither stored nor dead-lettered", f"{len(verdict.lost):,}"),
        ("doubled: events stored twice", f"{len(verdict.stored_twice):,}"),
        (
            "checkpoints fired (database / by fire tasks, per the worker's log)",
            f"{verdict.fired:,} / {verdict.fired_logged:,}",
        ),
        ("doubled: checkpoints fired twice (log)", f"{len(verdict.fired_twice):,}"),
        ("notifications at the sink (distinct dedupe keys)", f"{verdict.messages:,}"),
        ("doubled: dedupe keys delivered twice", f"{len(verdict.delivered_twice):,}"),
        ("claims per checkpoint (bar 1.05)", f"{run.claims_per_checkpoint:.3f}"),
        (
            f"recovery: lateness p99 under {BAR_S:g} s after the overload (bar {WITHIN_S:.0f} s)",
            "not recovered" if recovered is None else f"recovered in {recovered:.0f} s",
        ),
    ]
    print("\noverload: judged (no process is killed: any repeat is a defect)")
    print(table(["", "value"], rows))
    for name, items in (
        ("lost", verdict.lost),
        ("stored twice", verdict.stored_twice),
        ("fired twice", verdict.fired_twice),
        ("delivered twice", verdict.delivered_twice),
    ):
        if items:
            print(f"  {name}, the first 10: {', '.join(map(str, items[:10]))}")
    met = (
        verdict.passed
        and recovered is not None
        and recovered <= WITHIN_S
        and run.claims_per_checkpoint <= 1.05
    )
    print(
        f"\noverload: {rows[-1][1]}; {len(verdict.lost)} lost, {verdict.doubled} doubled,"
        f" {run.claims_per_checkpoint:.3f} claims per checkpoint:"
        f" bars {'met' if met else 'NOT met'}"
    )
    if plot_to is not None:
        from bench.soak.plot import plot  # noqa: PLC0415 - matplotlib only when asked

        plot(plot_to, run.points, by_due, run.phases, title=title, width=width)
        print(f"plot: {plot_to} ({plot_to.stat().st_size / 1024:.0f} KiB)")
    return met
