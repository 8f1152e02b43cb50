"""A manual clock for embedgate's own notion of time (token lifetimes, caches, refresh)."""

from __future__ import annotations

import contextlib
import time as _real_time
from collections.abc import Iterator
from types import SimpleNamespace

from .. import clock as _clock_module
from ..clock import ManualClock


@contextlib.contextmanager
def manual_clock(start: float | None = None) -> Iterator[ManualClock]:
    """Make embedgate's system clock read a :class:`~embedgate.ManualClock` (starting now,
    or at ``start``) until the block ends: every engine, cache and rate limiter built on
    the system clock follows it, including those built before. Only embedgate's clock moves:
    the rest of the process keeps the real time."""
    clock = ManualClock(_real_time.time() if start is None else start)
    # SystemClock.now() looks ``time`` up in its module at each call: bound methods taken
    # earlier (caches, rate limiters) follow the swap too.
    names = vars(_clock_module)
    real = names["time"]
    names["time"] = SimpleNamespace(time=clock.now)
    try:
        yield clock
    finally:
        names["time"] = real
