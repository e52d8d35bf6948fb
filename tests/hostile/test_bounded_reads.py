"""Bounded work per request: a ticket read cannot cost a core for long, nor starve ``/healthz``.

- ``at`` lies in a window around the ticket's life: ``at=9999-12-30`` (31 s of a core and 700 MB
  on the athento preset) is refused with 422 naming ``at`` and the allowed range;
- reads take turns: with every turn taken and the queue full, a read is answered 503 with
  ``Retry-After`` at once (driven by holding evaluations in the test, never by timing);
- ``/healthz`` answers while reads hold every thread of the pool.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from scheduler.evaluate import evaluate
from shared.config import Settings
from shared.events import Event
from tests.hostile.gate import Gate
from tests.hostile.secrets import READER_TOKEN
from worker.api import tickets
from worker.api.read_slots import ReadsBusy, ReadSlots
from worker.api.services import Services
from worker.events.apply import apply_event

READER = {"authorization": f"Bearer {READER_TOKEN}"}
THREAD_POOL = 40  # anyio's default number of worker threads, which sync routes share
CREATED = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
TICKET = "/v1/tickets/api/READ-1"


@pytest.fixture
def turns() -> tuple[int, int]:
    """Read turns (at once, waiting): the defaults, unless a test parametrizes them."""
    return 2, 64


@pytest.fixture
def config(config: Settings, turns: tuple[int, int]) -> Settings:
    """The suite's settings, tickets of source `api` on the athento preset (Madrid hours and
    Spain's holidays: the preset of the 31 s probe), with the test's read turns."""
    at_once, waiting = turns
    return config.model_copy(
        update={
            "source_policies": {"api": "athento"},
            "ticket_reads_at_once": at_once,
            "ticket_reads_waiting": waiting,
        }
    )


@pytest.fixture
def ticket(services: Services) -> None:
    """READ-1: created two hours ago, P2, answered by an agent an hour later."""
    created = {"type": "created", "priority": "P2", "customer": "acme"}
    with services.sessions.begin() as session:
        for n, (at, fields) in enumerate(
            [(CREATED, created), (CREATED + timedelta(hours=1), {"type": "agent_replied"})]
        ):
            event = Event.model_validate(
                {"event_id": f"r{n}", "ticket_id": "READ-1", "occurred_at": at, **fields}
            )
            apply_event(session, services.policies, event, datetime.now(UTC))


def read(gate: Gate, at: datetime | str | None = None) -> httpx.Response:
    params = None if at is None else {"at": at if isinstance(at, str) else at.isoformat()}
    return gate.send("GET", TICKET, headers=READER, params=params)


def refused_at(response: httpx.Response) -> str:
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["field"] == "at", problem
    return str(problem["detail"])


# -- at in a window around the ticket's life --------------------------------------------------------
@pytest.mark.usefixtures("ticket")
def test_the_far_future_probe_is_refused_naming_at_and_the_range(gate: Gate) -> None:
    """The issue's probe, at=9999-12-30, is a 422 naming `at` and saying the allowed range."""
    detail = refused_at(read(gate, "9999-12-30T00:00:00Z"))
    assert "must lie between" in detail
    assert CREATED.isoformat().replace("+00:00", "Z") in detail


@pytest.mark.usefixtures("ticket")
def test_at_is_read_up_to_the_horizon_past_now_and_refused_beyond(
    gate: Gate, config: Settings
) -> None:
    """Inside the window the ticket is evaluated; a day past its far edge, or a second before
    the first event, is refused."""
    horizon = timedelta(days=config.ticket_read_horizon_days)
    edge = datetime.now(UTC) + horizon - timedelta(minutes=5)
    inside = read(gate, edge)
    assert inside.status_code == 200, inside.text
    assert inside.json()["metrics"]["resolution"]["state"] == "breached"
    refused_at(read(gate, edge + timedelta(days=1)))
    refused_at(read(gate, CREATED - timedelta(seconds=1)))
    assert read(gate, CREATED).status_code == 200
    assert read(gate).status_code == 200  # now, the default, is always inside


@pytest.mark.usefixtures("ticket")
@pytest.mark.parametrize(
    ("report", "field", "value"),
    [
        ("/v1/reports/timeline/api/READ-1", "at", "2300-12-30T00:00:00+00:00"),
        ("/v1/reports/timeline/api/READ-1", "at", "9999-12-31T23:00:00-05:00"),
        ("/v1/reports/at-risk", "at", "9999-12-30T00:00:00Z"),
        ("/v1/reports/allowances", "at", "9999-12-31T23:00:00-05:00"),
        ("/v1/reports/compliance", "at", "0001-01-01T00:00:00+05:00"),
        ("/v1/reports/compliance", "from", "0001-01-01"),
        ("/v1/reports/compliance", "to", "9999-12-31"),
    ],
)
def test_a_reports_instants_are_bounded_too(
    gate: Gate, report: str, field: str, value: str
) -> None:
    """Reports evaluate tickets at `at` too: far instants (seconds of CPU each, or an overflow
    and a 500) are refused with 422 naming the field, like a ticket read's."""
    response = gate.send("GET", report, headers=READER, params={field: value})
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    assert "must lie between" in response.json()["detail"]


# -- turns: 503 with Retry-After, /healthz always answers -----------------------------------------
class HeldEvaluations:
    """Stands in for `evaluate` in the ticket route: each call says it has started, then waits
    until the test lets every evaluation go (the test holds them, like a semaphore)."""

    def __init__(self, real: Callable[..., Any]) -> None:
        self.real = real
        self.started = 0
        self._changed = threading.Condition()
        self._go = threading.Event()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self._changed:
            self.started += 1
            self._changed.notify_all()
        assert self._go.wait(timeout=60), "the test never let the evaluation go"
        return self.real(*args, **kwargs)

    def wait_started(self, count: int) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: self.started >= count, timeout=30), (
                f"{self.started} of {count} evaluations started"
            )

    def let_go(self) -> None:
        self._go.set()


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldEvaluations]:
    holder = HeldEvaluations(evaluate)
    monkeypatch.setattr(tickets, "evaluate", holder)
    yield holder
    holder.let_go()  # never leave a thread waiting, whatever the test did


def hold_reads(
    gate: Gate, held: HeldEvaluations, count: int
) -> tuple[ThreadPoolExecutor, list[Future[httpx.Response]]]:
    pool = ThreadPoolExecutor(max_workers=count)
    futures = [pool.submit(read, gate) for _ in range(count)]
    held.wait_started(count)
    return pool, futures


@pytest.mark.parametrize("turns", [(1, 0)])
@pytest.mark.usefixtures("ticket")
def test_a_read_beyond_the_turns_is_told_when_to_retry(gate: Gate, held: HeldEvaluations) -> None:
    """One turn, no queue: while a read evaluates, the next is a 503 problem with Retry-After,
    /healthz answers, and the held read completes once let go."""
    pool, futures = hold_reads(gate, held, 1)
    with pool:
        # past the Gate, which takes any 5xx for a crash: this 503 is the answer expected
        busy = gate.client.get(TICKET, headers=READER)
        assert busy.status_code == 503, busy.text
        assert busy.headers["content-type"] == "application/problem+json"
        assert int(busy.headers["Retry-After"]) >= 1
        assert "try again in" in busy.json()["detail"]
        assert gate.send("GET", "/healthz").json() == {"status": "ok"}
        held.let_go()
        assert futures[0].result(timeout=30).status_code == 200
    assert read(gate).status_code == 200  # the turn was given back


@pytest.mark.parametrize("turns", [(1, 0)])
@pytest.mark.usefixtures("ticket")
@pytest.mark.parametrize(
    "report", ["/v1/reports/at-risk", "/v1/reports/timeline/api/READ-1", "/v1/reports/compliance"]
)
def test_reports_take_the_same_turns(gate: Gate, held: HeldEvaluations, report: str) -> None:
    """Reports evaluate tickets too: while a ticket read holds the one turn, a report is a 503
    with Retry-After (a review found them on the thread pool, seconds of CPU each, unbounded)."""
    pool, futures = hold_reads(gate, held, 1)
    with pool:
        busy = gate.client.get(report, headers=READER)  # past the Gate: this 503 is expected
        assert busy.status_code == 503, busy.text
        assert int(busy.headers["Retry-After"]) >= 1
        held.let_go()
        assert futures[0].result(timeout=30).status_code == 200
    assert gate.send("GET", report, headers=READER).status_code == 200


@pytest.mark.parametrize("turns", [(THREAD_POOL, 0)])
@pytest.mark.usefixtures("ticket")
def test_healthz_answers_while_reads_hold_every_thread(gate: Gate, held: HeldEvaluations) -> None:
    """Reads holding all 40 threads of the pool: /healthz still answers (it once waited for a
    free thread, and the liveness probe gave up after 3 s)."""
    pool, futures = hold_reads(gate, held, THREAD_POOL)
    with pool, ThreadPoolExecutor(max_workers=1) as probe:
        health = probe.submit(gate.send, "GET", "/healthz")
        # a deadline only for the failure: the answer is awaited, not a timer
        assert health.result(timeout=20).json() == {"status": "ok"}
        held.let_go()
        assert all(f.result(timeout=60).status_code == 200 for f in futures)


# -- the turns themselves ----------------------------------------------------------------------------
def test_turns_are_handed_over_first_come_first_served() -> None:
    """Two turns and two places: the fifth read is refused at once; a finished read hands its
    turn to the first waiting one; a waiting read that goes away leaves no hole."""

    async def scenario() -> list[str]:
        slots, order = ReadSlots(at_once=2, waiting=2), []
        release = {name: asyncio.Event() for name in "abcd"}

        async def reader(name: str) -> None:
            async with slots.turn():
                order.append(name)
                await release[name].wait()

        tasks = {name: asyncio.create_task(reader(name)) for name in "abcd"}
        await asyncio.sleep(0)  # let every task reach its turn or the queue
        assert (slots.running, slots.queued, order) == (2, 2, ["a", "b"])
        with pytest.raises(ReadsBusy) as busy:
            async with slots.turn():
                pass
        assert busy.value.retry_after >= 1
        tasks["c"].cancel()
        release["a"].set()
        await tasks["a"]
        await asyncio.sleep(0)
        assert (slots.running, slots.queued, order) == (2, 0, ["a", "b", "d"])
        for name in "bd":
            release[name].set()
            await tasks[name]
        assert (slots.running, slots.queued) == (0, 0)
        return order

    assert asyncio.run(scenario()) == ["a", "b", "d"]
