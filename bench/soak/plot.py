"""The overload run over time as a PNG: queues, firing lateness, events/s; the overload shaded.

matplotlib (a dev dependency) with its Agg backend: no display needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bench.soak.overload import BAR_S, WITHIN_S, Bucket, Phase, Point, per_second, phase


def plot(
    path: Path,
    points: Sequence[Point],
    lateness: Sequence[Bucket],
    phases: Sequence[Phase],
    *,
    title: str,
    width: float,
) -> None:
    import matplotlib  # noqa: PLC0415 - only when a plot is asked for

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, (queues, late, rates) = plt.subplots(3, 1, sharex=True, figsize=(10, 8.5), dpi=80)
    at = [p.at for p in points]
    queues.plot(at, [max(p.events_queue, 0.5) for p in points], label="events queue")
    queues.plot(at, [max(p.fire_queue, 0.5) for p in points], label="fire queue")
    queues.set_yscale("log")
    queues.set_ylabel("depth (log)")
    middle = [b.start + width / 2 for b in lateness]
    late.plot(middle, [max(b.p50, 1e-3) for b in lateness], label="p50")
    late.plot(middle, [max(b.p99, 1e-3) for b in lateness], label="p99")
    late.axhline(BAR_S, color="black", linestyle=":", linewidth=1, label=f"{BAR_S:g} s")
    late.set_yscale("log")
    late.set_ylabel(f"firing lateness, s (log)\nby due time, {width:g} s buckets")
    per_s = per_second(points)
    rates.plot([r[0] for r in per_s], [r[1] for r in per_s], label="accepted")
    rates.plot([r[0] for r in per_s], [r[2] for r in per_s], label="applied")
    rates.set_ylabel("events/s")
    rates.set_xlabel("seconds since the load began")
    overload = phase(phases, "overload")
    for axes in (queues, late, rates):
        axes.axvspan(overload.start, overload.end, color="red", alpha=0.12)
        axes.axvline(overload.end + WITHIN_S, color="grey", linestyle="--", linewidth=1)
        axes.axvline(phases[-1].end, color="grey", linestyle=":", linewidth=1)
        axes.grid(True, alpha=0.3)
        axes.legend(loc="upper left", fontsize="small")
    queues.set_title(
        f"{title}\nshaded: overload; dashed: {WITHIN_S:g} s after it; dotted: last ticket started",
        fontsize="medium",
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
