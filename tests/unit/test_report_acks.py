"""Acknowledgement times per route: which pages count, percentiles, who acknowledged most."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from worker.report.acks import Page, percentile, route_acks
from worker.report.tickets import Period

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = Period(START, START + timedelta(days=1), START + timedelta(days=1))


def _page(route: str, sent_min: int, acked_min: int | None = None, by: str | None = None) -> Page:
    sent = START + timedelta(minutes=sent_min)
    acked = None if acked_min is None else START + timedelta(minutes=acked_min)
    return Page(route, f"api/T-{sent_min}", "first_response:breach", sent, acked, by)


def test_percentile_is_a_time_someone_took() -> None:
    """Nearest rank: the median of four waits is the second, the p90 the slowest."""
    waits = [timedelta(minutes=m) for m in (10, 1, 4, 2)]
    assert percentile(waits, 0.5) == timedelta(minutes=2)
    assert percentile(waits, 0.9) == timedelta(minutes=10)
    assert percentile([timedelta(minutes=3)], 0.5) == timedelta(minutes=3)
    assert percentile([], 0.5) is None


def test_each_route_counts_its_pages_acks_and_waits() -> None:
    """Pages group by route, sorted by name; waits run from the first delivery to the ack."""
    rows = route_acks(
        [
            _page("desk", 0, 4, "Ana"),
            _page("desk", 1, 11, "Ana"),
            _page("desk", 2),
            _page("lead", 0, 2, "Luis"),
            _page("lead", 1),
        ],
        DAY,
    )
    assert [
        (r.route, r.pages, r.acknowledged, r.unacknowledged, r.p50, r.p90, r.top_acker, r.top_acks)
        for r in rows
    ] == [
        ("desk", 3, 2, 1, timedelta(minutes=4), timedelta(minutes=10), "Ana", 2),
        ("lead", 2, 1, 1, timedelta(minutes=2), timedelta(minutes=2), "Luis", 1),
    ]


def test_a_route_nobody_answers_has_no_percentiles() -> None:
    (row,) = route_acks([_page("phone", 0), _page("phone", 5)], DAY)
    assert (row.pages, row.acknowledged, row.p50, row.p90, row.top_acker) == (
        2,
        0,
        None,
        None,
        None,
    )


def test_pages_outside_the_period_and_acks_after_its_instant_do_not_count() -> None:
    """A page first delivered before the period is left out; an acknowledgement later than the
    report's instant is not known yet."""
    period = Period(
        START + timedelta(minutes=1), START + timedelta(hours=1), START + timedelta(minutes=30)
    )
    (row,) = route_acks([_page("desk", 0, 3, "Ana"), _page("desk", 5, 45, "Ana")], period)
    assert (row.pages, row.acknowledged, row.unacknowledged) == (1, 0, 1)


def test_most_acknowledged_ties_go_by_name_and_early_acks_wait_nothing() -> None:
    """Two people with one acknowledgement each: the first by name is shown. An acknowledgement
    recorded before the delivery (an API call racing the channel) counts as zero wait."""
    (row,) = route_acks([_page("desk", 5, 3, "Zoe"), _page("desk", 6, 8, "Bea")], DAY)
    assert (row.top_acker, row.top_acks) == ("Bea", 1)
    assert row.p50 == timedelta(0)
