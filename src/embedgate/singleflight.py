"""Single-flight: concurrent callers for one key share one call and its outcome.

The first caller runs the function; callers arriving while it runs wait and receive the
same result or the same exception (so a failing upstream sees one call, not one per
waiter). One class for threads, one for tasks (asyncio or trio, through anyio).
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import anyio

T = TypeVar("T")


class _Outcome(Generic[T]):
    __slots__ = ("error", "value")

    def __init__(self) -> None:
        self.value: T | None = None
        self.error: BaseException | None = None

    def unwrap(self) -> T:
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]


class ThreadFlights(Generic[T]):
    """Single-flight for threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[str, tuple[threading.Event, _Outcome[T]]] = {}

    def run(self, key: str, fn: Callable[[], T]) -> T:
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = (threading.Event(), _Outcome())
                self._flights[key] = flight
        done, outcome = flight
        if not leader:
            done.wait()
            return outcome.unwrap()
        try:
            outcome.value = fn()
        except BaseException as exc:
            outcome.error = exc
            raise
        finally:
            with self._lock:
                del self._flights[key]
            done.set()
        return outcome.value

    def __len__(self) -> int:
        return len(self._flights)


class AsyncFlights(Generic[T]):
    """Single-flight for tasks of one event loop (asyncio or trio)."""

    def __init__(self) -> None:
        self._flights: dict[str, tuple[anyio.Event, _Outcome[T]]] = {}

    async def run(self, key: str, fn: Callable[[], Awaitable[T]]) -> T:
        while (flight := self._flights.get(key)) is not None:
            done, outcome = flight
            await done.wait()
            # A cancelled leader's cancellation belongs to its own task: take over instead.
            if not isinstance(outcome.error, anyio.get_cancelled_exc_class()):
                return outcome.unwrap()
        done, outcome = self._flights[key] = (anyio.Event(), _Outcome())
        try:
            outcome.value = await fn()
        except BaseException as exc:
            outcome.error = exc
            raise
        finally:
            del self._flights[key]
            done.set()
        return outcome.value

    def __len__(self) -> int:
        return len(self._flights)
