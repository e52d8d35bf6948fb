"""The Redis index of armed checkpoints, on a real Redis: claim, leases, reaping, reconcile."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import redis

from scheduler.timer_index import TimerIndex
from shared.redis_keys import CLAIM_BATCH
from tests.integration.services import REDIS_URL

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def index(redis_prefix: str) -> TimerIndex:
    return TimerIndex(redis.Redis.from_url(REDIS_URL), redis_prefix)


def test_nothing_is_claimed_before_it_is_due(index: TimerIndex) -> None:
    """A checkpoint due at 12:00:05 is not handed out at 12:00:04.999, and is at 12:00:05."""
    index.arm([(1, T0 + timedelta(seconds=5))])
    assert index.claim(T0 + timedelta(seconds=4.999)) == []
    assert index.claim(T0 + timedelta(seconds=5)) == [1]


def test_a_claimed_checkpoint_is_not_claimed_again(index: TimerIndex) -> None:
    """Once leased, a second claimer gets nothing; after release it is gone for good."""
    index.arm([(7, T0)])
    assert index.claim(T0) == [7]
    assert index.claim(T0 + timedelta(seconds=1)) == []
    index.release([7])
    assert index.count() == (0, 0)


def test_claims_come_earliest_first_in_batches(index: TimerIndex) -> None:
    """Two and a half batches' worth of due checkpoints leave in three batches, oldest first."""
    due = 2 * CLAIM_BATCH + CLAIM_BATCH // 2
    index.arm([(n, T0 + timedelta(microseconds=n)) for n in range(due)])
    batches = [index.claim(T0 + timedelta(seconds=1)) for _ in range(4)]
    assert [len(b) for b in batches] == [CLAIM_BATCH, CLAIM_BATCH, CLAIM_BATCH // 2, 0]
    assert batches[0][:3] == [0, 1, 2]


def test_rearming_moves_a_checkpoint(index: TimerIndex) -> None:
    """A deadline pushed back by a pause is not due at its old instant."""
    index.arm([(3, T0)])
    index.arm([(3, T0 + timedelta(hours=1))])
    assert index.claim(T0 + timedelta(minutes=1)) == []
    assert index.next_due() == (T0 + timedelta(hours=1)).timestamp()


def test_disarm_removes_armed_and_leased(index: TimerIndex) -> None:
    """A met checkpoint leaves the index whether armed or already claimed."""
    index.arm([(1, T0), (2, T0)])
    index.claim(T0, limit=1)
    index.disarm([1, 2])
    assert index.count() == (0, 0)


def test_an_expired_lease_returns_to_the_due_set(index: TimerIndex) -> None:
    """A worker that dies after claiming loses nothing: the reaper hands the checkpoint out again."""
    index.arm([(9, T0)])
    assert index.claim(T0, lease_s=60) == [9]
    assert index.reap(T0 + timedelta(seconds=59)) == 0
    assert index.reap(T0 + timedelta(seconds=60)) == 1
    assert index.claim(T0 + timedelta(seconds=60)) == [9]


def test_a_large_backlog_of_expired_leases_is_reaped_in_bounded_steps(index: TimerIndex) -> None:
    """2,500 leases of a dead beat's fire tasks come back 1,000 per tick, none twice or lost."""
    index.arm([(cid, T0) for cid in range(2500)])
    assert len(index.claim(T0, limit=2500)) == 2500
    later = T0 + timedelta(seconds=60)
    assert [index.reap(later) for _ in range(4)] == [1000, 1000, 500, 0]
    assert index.count() == (2500, 0)


def test_concurrent_claimers_never_share_a_checkpoint(index: TimerIndex) -> None:
    """Three claimers racing over 5,000 due checkpoints take each exactly once between them."""
    index.arm([(n, T0) for n in range(5000)])
    taken: list[list[int]] = [[], [], []]

    def claimer(bucket: list[int]) -> None:
        while batch := index.claim(T0 + timedelta(seconds=1)):
            bucket.extend(batch)

    threads = [threading.Thread(target=claimer, args=(bucket,)) for bucket in taken]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [cid for bucket in taken for cid in bucket]
    assert sorted(everything) == list(range(5000))


def test_reconcile_restores_what_redis_lost_but_not_leased_ones(
    index: TimerIndex, redis_prefix: str
) -> None:
    """After Redis loses the due set, the database's armed checkpoints come back; leased stay leased."""
    armed = [(n, T0 + timedelta(minutes=n)) for n in range(1, 6)]
    index.arm(armed)
    index.claim(T0 + timedelta(minutes=1))  # checkpoint 1 is in flight
    redis.Redis.from_url(REDIS_URL).delete(index.keys.due)  # what a restart without AOF does
    assert index.reconcile(armed) == 4
    assert index.count() == (4, 1)
    assert index.reconcile(armed) == 0  # idempotent
    assert index.claim(T0 + timedelta(minutes=2)) == [2]


def test_reconcile_from_an_older_snapshot_never_delays_a_checkpoint(index: TimerIndex) -> None:
    """Re-armed earlier while a reconcile streamed the old due time: the earlier one stands."""
    index.arm([(4, T0 + timedelta(minutes=10))])  # a pause ended early: now due at 12:10
    index.reconcile([(4, T0 + timedelta(minutes=30))])  # the snapshot still said 12:30
    assert index.next_due() == (T0 + timedelta(minutes=10)).timestamp()
