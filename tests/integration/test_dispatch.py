"""Beat's pass on a real Redis: leases that outlast a wait in the fire queue, and backpressure.

Every instant is given to the pass (no sleeping): a "task start" is what the fire task does
first, `TimerIndex.extend` of its batch to its start plus `LEASE_SECONDS`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from scheduler.beat import EscaleraScheduler
from scheduler.dispatch import COALESCE_S, FIRE_QUEUE_HOLD, HELD_SLEEP_S, Dispatcher
from scheduler.timer_index import TimerIndex
from shared.celery_app import FIRE_CHECKPOINTS, make_celery
from shared.config import Settings, settings
from shared.redis_keys import (
    CLAIM_BATCH,
    LEASE_SECONDS,
    QUEUED_LEASE_SECONDS,
    REPEATS,
    celery_prefix,
    queue_list,
)
from tests.integration.services import REDIS_URL
from worker.runtime import runtime
from worker.tasks import end_leases_at_start

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def index(redis_prefix: str) -> TimerIndex:
    return TimerIndex(redis.Redis.from_url(REDIS_URL), redis_prefix)


class Queue:
    """The fire queue as beat sees it: what was sent, and a depth the test sets."""

    def __init__(self) -> None:
        self.sent: list[list[int]] = []
        self.depth = 0

    def send(self, ids: Sequence[int]) -> None:
        self.sent.append(list(ids))


@pytest.fixture
def queue() -> Queue:
    return Queue()


@pytest.fixture
def beat(index: TimerIndex, queue: Queue) -> Dispatcher:
    return Dispatcher(index, queue.send, queue_depth=lambda: queue.depth)


def test_a_batch_waiting_in_the_queue_past_the_start_lease_is_not_handed_out_again(
    index: TimerIndex, queue: Queue, beat: Dispatcher
) -> None:
    """Sent at 12:00, its task starts at 12:04:40 (a backlog; a running task holds its batch
    60 s): no pass hands it out meanwhile, and from its start it is held 60 s more, past the
    queued lease; claimed once in all."""
    index.arm([(1, T0)])
    assert beat.tick(T0).claimed == 1
    start = at(QUEUED_LEASE_SECONDS - 20)
    for waited in (LEASE_SECONDS, 2 * LEASE_SECONDS, QUEUED_LEASE_SECONDS - 21):
        passed = beat.tick(at(waited))
        assert (passed.reaped, passed.claimed) == (0, 0)
    index.extend([1], start + timedelta(seconds=LEASE_SECONDS))  # the fire task starts
    assert beat.tick(at(QUEUED_LEASE_SECONDS)).reaped == 0  # counted from the start now
    assert beat.tick(start + timedelta(seconds=LEASE_SECONDS - 0.001)).reaped == 0
    index.release([1])  # it fired
    assert beat.tick(start + timedelta(seconds=LEASE_SECONDS)).reaped == 0
    assert queue.sent == [[1]]


def test_a_started_task_that_dies_has_its_batch_back_a_lease_after_its_start(
    index: TimerIndex, queue: Queue, beat: Dispatcher
) -> None:
    """A worker killed mid-fire: the batch comes back 60 s after the task started."""
    index.arm([(1, T0), (2, T0)])
    beat.tick(T0)
    index.extend([1, 2], at(10 + LEASE_SECONDS))  # started at 12:00:10, then killed
    assert beat.tick(at(10 + LEASE_SECONDS - 0.001)).reaped == 0
    back = beat.tick(at(10 + LEASE_SECONDS))
    assert (back.reaped, back.claimed) == (2, 2)
    assert queue.sent == [[1, 2], [1, 2]]


def test_a_batch_whose_task_never_starts_is_handed_out_again_after_the_queued_lease(
    index: TimerIndex, queue: Queue, beat: Dispatcher
) -> None:
    """Its message lost, or its worker killed while holding it prefetched: 5 minutes after the
    claim the reaper hands it out again, and the same pass sends it."""
    index.arm([(1, T0)])
    beat.tick(T0)
    assert beat.tick(at(QUEUED_LEASE_SECONDS - 0.001)).reaped == 0
    again = beat.tick(at(QUEUED_LEASE_SECONDS))
    assert (again.reaped, again.claimed) == (1, 1)
    assert queue.sent == [[1], [1]]


def test_a_batch_claimed_but_never_sent_comes_back_after_the_short_lease(
    index: TimerIndex, queue: Queue
) -> None:
    """Beat loses the batch between claiming and sending (killed, Redis gone mid-send): it was
    never given the queued lease, so it is back 60 s after the claim."""

    def lost(_ids: Sequence[int]) -> None:
        raise redis.ConnectionError("Redis went away")

    index.arm([(1, T0)])
    with pytest.raises(redis.ConnectionError):
        Dispatcher(index, lost).tick(T0)
    beat = Dispatcher(index, queue.send, queue_depth=lambda: queue.depth)
    assert beat.tick(at(LEASE_SECONDS - 0.001)).reaped == 0
    assert (beat.tick(at(LEASE_SECONDS)).reaped, queue.sent) == (1, [[1]])


def test_checkpoints_falling_due_just_after_a_batch_leave_with_one_task_and_a_lone_one_at_once(
    index: TimerIndex, queue: Queue, beat: Dispatcher
) -> None:
    """Under load, what falls due within `COALESCE_S` of a pass that sent leaves together: one
    fire task for several checkpoints, not one each (a fire task's own cost is most of a lone
    checkpoint's). A checkpoint alone, the pass before it having sent nothing, is not held."""
    index.arm([(1, T0), (2, at(0.02)), (3, at(0.06)), (4, at(5))])
    first = beat.tick(T0)
    assert (first.claimed, first.sleep_s) == (1, COALESCE_S)  # not the 20 ms until the next
    assert beat.tick(at(COALESCE_S)).claimed == 2
    quiet = beat.tick(at(4.97))
    assert (quiet.claimed, quiet.sleep_s) == (0, pytest.approx(0.03, abs=0.01))
    assert beat.tick(at(5)).claimed == 1  # at its due instant
    assert queue.sent == [[1], [2, 3], [4]]


def test_a_full_fire_queue_holds_claims_until_it_drains(
    index: TimerIndex, queue: Queue, beat: Dispatcher
) -> None:
    """With the queue full nothing is claimed (what is due waits in the due set); with room for
    two tasks two batches go; once it drained, the rest. Each checkpoint is claimed once."""
    index.arm([(n, T0) for n in range(3 * CLAIM_BATCH)])
    queue.depth = FIRE_QUEUE_HOLD
    held = beat.tick(T0)
    assert (held.claimed, held.held, queue.sent) == (0, True, [])
    assert held.sleep_s == HELD_SLEEP_S  # something is due: look again soon, not at once
    queue.depth = FIRE_QUEUE_HOLD - 2
    some = beat.tick(at(1))
    assert (some.claimed, some.held, len(queue.sent)) == (2 * CLAIM_BATCH, False, 2)
    queue.depth = 0
    assert beat.tick(at(2)).claimed == CLAIM_BATCH
    claimed = sorted(cid for batch in queue.sent for cid in batch)
    assert claimed == list(range(3 * CLAIM_BATCH))


def test_a_full_fire_queue_holds_reaping_too(
    index: TimerIndex, queue: Queue, beat: Dispatcher
) -> None:
    """A lease expired while the queue is full is left alone (its task may be in that queue;
    reaped, it would only queue behind them): it is reaped once the queue has room."""
    index.arm([(1, T0)])
    beat.tick(T0)
    queue.depth = FIRE_QUEUE_HOLD
    assert beat.tick(at(QUEUED_LEASE_SECONDS + 1)).reaped == 0
    queue.depth = FIRE_QUEUE_HOLD - 1
    again = beat.tick(at(QUEUED_LEASE_SECONDS + 2))
    assert (again.reaped, again.claimed, queue.sent) == (1, 1, [[1], [1]])


def test_with_little_room_each_lane_gets_its_share(
    index: TimerIndex, queue: Queue, redis_prefix: str
) -> None:
    """A backlog of checkpoints does not hold back the pages' repeats: one batch each in turn."""
    repeats = TimerIndex(redis.Redis.from_url(REDIS_URL), redis_prefix, REPEATS)
    repeated: list[list[int]] = []
    index.arm([(n, T0) for n in range(3 * CLAIM_BATCH)])
    repeats.arm([(7, T0)])
    queue.depth = FIRE_QUEUE_HOLD - 2
    beat = Dispatcher(
        index, queue.send, also=[(repeats, repeated.append)], queue_depth=lambda: queue.depth
    )
    assert beat.tick(T0).claimed == CLAIM_BATCH + 1
    assert (len(queue.sent), repeated) == (1, [[7]])


@pytest.fixture
def scheduler(
    redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[EscaleraScheduler, list[Any]]]:
    """`escalera beat`'s scheduler on this test's prefix, and the tasks it sent (caught)."""
    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    monkeypatch.setenv("ESCALERA_REDIS_PREFIX", redis_prefix)
    settings.cache_clear()
    app = make_celery(Settings())
    sent: list[Any] = []
    monkeypatch.setattr(app, "send_task", lambda name, args=None, **_: sent.append((name, args)))
    yield EscaleraScheduler(app=app, lazy=False), sent
    settings.cache_clear()


def test_beat_holds_while_celerys_fire_list_is_full(
    scheduler: tuple[EscaleraScheduler, list[Any]], index: TimerIndex, redis_prefix: str
) -> None:
    """`escalera beat` reads the depth of the fire queue's Redis list: with FIRE_QUEUE_HOLD
    messages on it the due checkpoint stays put; once they are taken it is sent."""
    beat, sent = scheduler
    client = redis.Redis.from_url(REDIS_URL)
    fire = queue_list(celery_prefix(redis_prefix), settings().fire_queue)
    client.lpush(fire, *[b"{}"] * FIRE_QUEUE_HOLD)
    index.arm([(1, T0)])
    sent.clear()  # beat sends a reconcile at start
    assert beat.dispatcher.tick(T0).held and sent == []
    client.delete(fire)
    assert beat.dispatcher.tick(T0).claimed == 1
    assert sent == [(FIRE_CHECKPOINTS, [[1]])]


def test_a_worker_starting_after_a_kill_hands_out_what_the_dead_one_held_at_once(
    index: TimerIndex, queue: Queue, beat: Dispatcher, configured: None
) -> None:
    """The killed worker held the batch in its prefetch (queued lease: 5 minutes). The new
    worker's start ends every lease, and beat's next pass hands the batch out again at once,
    not 5 minutes after its claim."""
    rt = runtime()
    lane = rt.timers
    dispatcher = Dispatcher(lane, queue.send, queue_depth=lambda: queue.depth)
    lane.arm([(1, T0), (2, T0)])
    dispatcher.tick(T0)
    lane.extend([1, 2], at(QUEUED_LEASE_SECONDS))  # on the queue: beat's queued lease
    assert dispatcher.tick(at(5)).reaped == 0
    end_leases_at_start(rt, at(6))  # the worker restarted 6 s after the claim
    back = dispatcher.tick(at(6))
    assert (back.reaped, back.claimed) == (2, 2)
    assert queue.sent == [[1, 2], [1, 2]]
