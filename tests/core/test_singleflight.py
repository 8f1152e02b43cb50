"""Single-flight: many concurrent callers on one cold key make exactly one upstream call,
under threads, asyncio and trio, and share its failure as well as its success."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio
import pytest

from embedgate import (
    EmbedToken,
    IssuerError,
    ManualClock,
    MemoryCache,
    Principal,
    TokenService,
)
from embedgate.singleflight import SingleFlight
from tests.core.issuers import CountingSigner, provider_down

THREADS = 200
TASKS = 1000


class GatedSigner(CountingSigner):
    """Mints only once every caller is inside get_token (plus a grace period to reach the
    flight), so the test proves single-flight, not luck in thread scheduling."""

    def __init__(self, callers: int) -> None:
        super().__init__()
        self.callers = callers
        self.arrived = 0
        self.everyone_in = threading.Event()
        self._arrival_lock = threading.Lock()

    def arrive(self) -> None:
        with self._arrival_lock:
            self.arrived += 1
            if self.arrived == self.callers:
                self.everyone_in.set()

    def issue(self, request: Any) -> EmbedToken:
        assert self.everyone_in.wait(30), f"only {self.arrived} callers arrived"
        time.sleep(0.2)  # the last arrivals finish their cache miss and join the flight
        return super().issue(request)


def _run_threads(signer: GatedSigner, fn: Callable[[], Any]) -> list[Any]:
    """Run ``fn`` in one thread per expected caller; results or exceptions, in order."""

    def call() -> Any:
        signer.arrive()
        try:
            return fn()
        except Exception as exc:  # collected: the test asserts on them
            return exc

    with ThreadPoolExecutor(max_workers=signer.callers) as pool:
        futures = [pool.submit(call) for _ in range(signer.callers)]
        return [future.result(timeout=60) for future in futures]


def test_200_threads_on_a_cold_key_mint_once(clock: ManualClock, alice: Principal) -> None:
    signer = GatedSigner(THREADS)
    service = TokenService(signer, clock=clock)
    results = _run_threads(signer, lambda: service.get_token(alice, "session"))
    assert signer.calls == 1
    assert all(isinstance(r, EmbedToken) for r in results)
    assert len({r.token for r in results}) == 1
    assert results[0].subject == "alice"


def test_200_threads_on_ten_keys_mint_once_per_key(clock: ManualClock, alice: Principal) -> None:
    signer = GatedSigner(THREADS)
    service = TokenService(signer, clock=clock)
    counter = iter(range(THREADS))
    lock = threading.Lock()

    def call() -> EmbedToken:
        with lock:
            n = next(counter)
        return service.get_token(alice, f"session-{n % 10}")

    results = _run_threads(signer, call)
    assert signer.calls == 10
    assert len({r.token for r in results}) == 10


def test_a_failing_issuer_is_called_once_and_everyone_gets_the_error(
    clock: ManualClock, alice: Principal
) -> None:
    signer = GatedSigner(THREADS)
    signer.failure = provider_down()
    service = TokenService(signer, clock=clock)
    results = _run_threads(signer, lambda: service.get_token(alice, "session"))
    assert signer.calls == 1
    assert all(isinstance(r, IssuerError) for r in results)
    assert {r.code for r in results} == {"upstream_unavailable"}


class LateReader(MemoryCache):
    """Holds one chosen thread between its cache miss and the single-flight, until the
    leader has minted and left: the window in which a naive service mints twice."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock=clock)
        self.late_thread: threading.Thread | None = None
        self.late_missed = threading.Event()
        self.leader_done = threading.Event()

    def get(self, key: str) -> EmbedToken | None:
        found = super().get(key)
        if threading.current_thread() is self.late_thread and not self.late_missed.is_set():
            assert found is None
            self.late_missed.set()
            assert self.leader_done.wait(10)
        return found


def test_a_caller_arriving_after_the_flight_landed_does_not_mint_again(
    clock: ManualClock, alice: Principal
) -> None:
    cache = LateReader(clock)
    signer = CountingSigner()
    service = TokenService(signer, cache=cache, clock=clock)
    results: list[EmbedToken] = []
    late = threading.Thread(target=lambda: results.append(service.get_token(alice, "s")))
    cache.late_thread = late
    late.start()
    assert cache.late_missed.wait(10)  # the late caller saw a cold key ...
    leader = service.get_token(alice, "s")  # ... and the leader mints meanwhile
    cache.leader_done.set()
    late.join(10)
    assert results[0].token == leader.token
    assert signer.calls == 1


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_1000_tasks_on_a_cold_key_mint_once(
    backend: str, clock: ManualClock, alice: Principal
) -> None:
    signer = CountingSigner(delay=0.05)
    service = TokenService(signer, clock=clock)
    tokens: list[str] = []

    async def one() -> None:
        tokens.append((await service.aget_token(alice, "session")).token)

    async def main() -> None:
        async with anyio.create_task_group() as group:
            for _ in range(TASKS):
                group.start_soon(one)

    anyio.run(main, backend=backend)
    assert signer.calls == 1
    assert len(tokens) == TASKS
    assert len(set(tokens)) == 1


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_1000_tasks_share_one_failure(backend: str, clock: ManualClock, alice: Principal) -> None:
    signer = CountingSigner(delay=0.05)
    signer.failure = provider_down()
    service = TokenService(signer, clock=clock)
    errors: list[BaseException] = []

    async def one() -> None:
        try:
            await service.aget_token(alice, "session")
        except IssuerError as exc:
            errors.append(exc)

    async def main() -> None:
        async with anyio.create_task_group() as group:
            for _ in range(TASKS):
                group.start_soon(one)

    anyio.run(main, backend=backend)
    assert signer.calls == 1
    assert len(errors) == TASKS


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_cancelled_leader_hands_over_to_a_waiter(backend: str) -> None:
    flights: SingleFlight[str] = SingleFlight()
    calls: list[str] = []
    results: list[str] = []

    async def slow(name: str) -> str:
        calls.append(name)
        await anyio.sleep(0.2)
        return name

    async def main() -> None:
        leader_scope = anyio.CancelScope()

        async def leader() -> None:
            with leader_scope:
                await flights.arun("k", lambda: slow("leader"))

        async def waiter() -> None:
            results.append(await flights.arun("k", lambda: slow("waiter")))

        async with anyio.create_task_group() as group:
            group.start_soon(leader)
            await anyio.sleep(0.05)
            group.start_soon(waiter)
            await anyio.sleep(0.05)
            leader_scope.cancel()

    anyio.run(main, backend=backend)
    assert calls == ["leader", "waiter"]  # the waiter took over instead of inheriting a cancel
    assert results == ["waiter"]
    assert len(flights) == 0


def test_thread_flights_clean_up_after_success_and_failure() -> None:
    flights: SingleFlight[int] = SingleFlight()
    assert flights.run("a", lambda: 1) == 1

    def boom() -> int:
        raise IssuerError("down")

    with pytest.raises(IssuerError):
        flights.run("b", boom)
    assert len(flights) == 0
    assert flights.run("b", lambda: 2) == 2  # a failure is not remembered


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_threads_and_tasks_of_one_process_share_a_flight(backend: str) -> None:
    """A page rendered in a worker thread and token requests handled by tasks mint once."""
    flights: SingleFlight[str] = SingleFlight()
    calls: list[str] = []
    thread_started = threading.Event()

    def slow_sync() -> str:
        calls.append("thread")
        thread_started.set()
        time.sleep(0.2)
        return "from-thread"

    async def slow_async() -> str:
        calls.append("task")
        await anyio.sleep(0.2)
        return "from-task"

    async def main() -> list[str]:
        results: list[str] = []
        worker = threading.Thread(target=lambda: results.append(flights.run("k", slow_sync)))
        worker.start()
        await anyio.to_thread.run_sync(thread_started.wait)

        async def task() -> None:
            results.append(await flights.arun("k", slow_async))

        async with anyio.create_task_group() as group:
            for _ in range(50):
                group.start_soon(task)
        await anyio.to_thread.run_sync(worker.join)
        return results

    results = anyio.run(main, backend=backend)
    assert calls == ["thread"]
    assert results == ["from-thread"] * 51


def test_a_thread_joins_a_flight_led_by_a_task() -> None:
    flights: SingleFlight[str] = SingleFlight()
    calls: list[str] = []

    async def slow_async() -> str:
        calls.append("task")
        await anyio.sleep(0.2)
        return "from-task"

    async def main() -> list[str]:
        results: list[str] = []

        async def task() -> None:
            results.append(await flights.arun("k", slow_async))

        async with anyio.create_task_group() as group:
            group.start_soon(task)
            await anyio.sleep(0.05)
            results.append(await anyio.to_thread.run_sync(flights.run, "k", lambda: "thread"))
        return results

    results = anyio.run(main)
    assert calls == ["task"]
    assert sorted(results) == ["from-task", "from-task"]
