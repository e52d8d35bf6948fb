"""``--plot FILE.png``: compliance over time, one line per metric, commitments dashed."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from shared.errors import EscaleraError
from shared.policy import Metric, Policy
from worker.report.outcomes import METRICS
from worker.report.trend import TrendPoint


def plot_trend(policy: Policy, points: Sequence[TrendPoint], path: Path, every: str) -> None:
    try:
        import matplotlib  # noqa: PLC0415  # optional: only --plot needs it

        matplotlib.use("Agg")  # files only, never a window
        from matplotlib import pyplot  # noqa: PLC0415
    except ImportError as exc:
        raise EscaleraError(
            "--plot needs matplotlib: pip install 'escalera[plot]' (or matplotlib)"
        ) from exc
    figure, axes = pyplot.subplots(figsize=(9, 4.5))
    for i, metric in enumerate(METRICS):
        series = [(p.bucket, p.share) for p in points if p.metric == metric and p.share is not None]
        if not series:
            continue
        color = f"C{i}"
        days = [bucket for bucket, _ in series]
        shares = [share for _, share in series]
        # matplotlib plots dates; its type stubs only admit numbers
        axes.plot(days, shares, marker="o", color=color, label=metric)  # type: ignore[arg-type]
        commitment = policy.commitments.get(Metric(metric))
        if commitment is not None:
            axes.axhline(commitment, color=color, linestyle="--", linewidth=1)
    axes.set_ylim(0, 105)
    axes.set_ylabel("% within target")
    axes.set_xlabel(f"tickets created, by {every}")
    axes.set_title(f"{policy.name}: compliance over time (dashed: commitments)")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower left")
    figure.autofmt_xdate()
    try:
        figure.savefig(path, dpi=100)
    except OSError as exc:
        raise EscaleraError(f"{path}: cannot write the plot: {exc.strerror}") from exc
    finally:
        pyplot.close(figure)
