"""Single-flight: concurrent callers for one key share one call and its outcome.

The first caller runs the function; callers arriving while it runs wait and receive the
same result or the same exception (so a failing upstream sees one call, not one per
waiter). One registry serves threads (the sync face) and tasks on asyncio or trio (the
async face) alike, so a page rendered in a worker thread and a token request handled by
a task of the same process still mint once.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Generic, TypeVar

import anyio

T = TypeVar("T")

_POLL_MIN = 0.001
_POLL_MAX = 0.02


class _Flight(Generic[T]):
    __slots__ = ("async_done", "done", "error", "led_by_task", "value")

    def __init__(self, *, led_by_task: bool) -> None:
        self.done = threading.Event()
        self.led_by_task = led_by_task
        # Tasks of the leader's own event loop wait on this without polling.
        self.async_done: anyio.Event | None = anyio.Event() if led_by_task else None
        self.value: T | None = None
        self.error: BaseException | None = None

    def unwrap(self) -> T:
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]

    def finish(self) -> None:
        self.done.set()
        if self.async_done is not None:
            self.async_done.set()


def _on_event_loop_thread() -> bool:
    """True when called (synchronously) from code an event loop runs in this thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        return True
    trio = sys.modules.get("trio")  # only loaded when an app runs on trio
    if trio is not None:
        try:
            trio.lowlevel.current_task()
        except RuntimeError:
            return False
        return True
    return False


def _spawn(make: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Start a task that outlives the caller's: on asyncio a task of the running loop, on
    trio a system task (trio's only nursery-free spawn)."""
    trio = sys.modules.get("trio")
    if trio is not None:
        try:
            trio.lowlevel.current_task()
        except RuntimeError:
            pass
        else:
            trio.lowlevel.spawn_system_task(make)
            return
    task = asyncio.get_running_loop().create_task(make())
    _TASKS.add(task)  # the loop keeps only a weak reference
    task.add_done_callback(_TASKS.discard)


_TASKS: set[asyncio.Task[None]] = set()


class SingleFlight(Generic[T]):
    """Per-key single-flight for threads (:meth:`run`) and tasks (:meth:`arun`), and flights
    that run beside their callers (:meth:`launch`, :meth:`alaunch`): callers wait for those
    only as long as they choose (:meth:`wait`, :meth:`await_flight`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[str, _Flight[T]] = {}

    def __contains__(self, key: str) -> bool:
        return key in self._flights

    def launch(self, key: str, fn: Callable[[], T]) -> _Flight[T]:
        """Run ``fn`` for ``key`` in a daemon thread, unless a flight for ``key`` is under
        way already; returns the flight either way."""
        flight, leader = self._join_or_lead(key, as_task=False)
        if leader:
            threading.Thread(
                target=self._lead, args=(key, flight, fn), name="embedgate-flight", daemon=True
            ).start()
        return flight

    def _lead(self, key: str, flight: _Flight[T], fn: Callable[[], T]) -> None:
        try:
            flight.value = fn()
        except BaseException as exc:  # kept for the waiters; a thread has nobody else to tell
            flight.error = exc
        finally:
            self._land(key, flight)

    def alaunch(self, key: str, fn: Callable[[], Awaitable[T]]) -> _Flight[T]:
        """Run ``fn`` for ``key`` in a task of its own (asyncio or trio), unless a flight
        for ``key`` is under way already; returns the flight either way. Call from a task."""
        flight, leader = self._join_or_lead(key, as_task=True)
        if leader:

            async def lead() -> None:
                try:
                    flight.value = await fn()
                except Exception as exc:
                    flight.error = exc
                except BaseException as exc:  # cancelled (the loop shuts down): pass it on
                    flight.error = exc
                    raise
                finally:
                    self._land(key, flight)

            try:
                _spawn(lead)
            except BaseException:
                self._land(key, flight)
                raise
        return flight

    def wait(self, flight: _Flight[T], timeout: float) -> T:
        """The flight's outcome, or TimeoutError after ``timeout`` seconds."""
        if flight.led_by_task and _on_event_loop_thread() and not flight.done.is_set():
            raise TimeoutError  # blocking would stop the very loop that runs the flight
        if not flight.done.wait(timeout):
            raise TimeoutError
        return flight.unwrap()

    async def await_flight(self, flight: _Flight[T], timeout: float) -> T:
        """Async face of :meth:`wait`."""
        with anyio.move_on_after(timeout):
            await self._wait(flight)
        if not flight.done.is_set() or isinstance(flight.error, anyio.get_cancelled_exc_class()):
            raise TimeoutError
        return flight.unwrap()

    def _join_or_lead(self, key: str, *, as_task: bool) -> tuple[_Flight[T], bool]:
        with self._lock:
            flight = self._flights.get(key)
            if flight is not None:
                return flight, False
            flight = self._flights[key] = _Flight(led_by_task=as_task)
            return flight, True

    def _land(self, key: str, flight: _Flight[T]) -> None:
        with self._lock:
            if self._flights.get(key) is flight:
                del self._flights[key]
        flight.finish()

    def run(self, key: str, fn: Callable[[], T]) -> T:
        """Run ``fn`` once for all threads asking for ``key`` at the same time."""
        flight, leader = self._join_or_lead(key, as_task=False)
        if not leader:
            if flight.led_by_task and _on_event_loop_thread():
                # Blocking here would stop the very event loop whose task leads the
                # flight: call fn directly (a rare, harmless extra call).
                return fn()
            flight.done.wait()
            return flight.unwrap()
        try:
            flight.value = fn()
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            self._land(key, flight)
        return flight.value

    async def arun(self, key: str, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn`` once for all tasks (and threads) asking for ``key`` at the same time."""
        while True:
            flight, leader = self._join_or_lead(key, as_task=True)
            if leader:
                break
            await self._wait(flight)
            # A cancelled leader's cancellation belongs to its own task: take over instead.
            if not isinstance(flight.error, anyio.get_cancelled_exc_class()):
                return flight.unwrap()
        try:
            flight.value = await fn()
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            self._land(key, flight)
        return flight.value

    @staticmethod
    async def _wait(flight: _Flight[T]) -> None:
        if flight.async_done is not None:
            try:
                await flight.async_done.wait()
                return
            except RuntimeError:
                pass  # led by a task of another event loop: fall back to polling
        delay = _POLL_MIN
        while not flight.done.is_set():
            # A thread leads the flight: poll its threading.Event without blocking the loop.
            await anyio.sleep(delay)
            delay = min(delay * 2, _POLL_MAX)

    def __len__(self) -> int:
        return len(self._flights)
