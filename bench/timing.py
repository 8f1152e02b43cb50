"""Measuring helpers shared by the sections: best-of-N timing and retained memory."""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Callable


def per_call(fn: Callable[[], object], *, number: int, repeat: int = 7) -> float:
    """Seconds per call of ``fn``: the best of ``repeat`` runs of ``number`` calls.

    The best run is the one least disturbed by the rest of the machine; the garbage
    collector is paused while timing, as ``timeit`` does.
    """
    fn()  # warm up (imports, caches, lazy initialisation)
    best = float("inf")
    enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeat):
            start = time.perf_counter()
            for _ in range(number):
                fn()
            best = min(best, time.perf_counter() - start)
    finally:
        if enabled:
            gc.enable()
    return best / number


def per_each(make_calls: Callable[[], list[Callable[[], object]]], *, repeat: int = 5) -> float:
    """Seconds per call over distinct calls, best run. ``make_calls`` builds a fresh list
    for every run (outside the timing), so nothing memoised by one run helps the next."""
    best = float("inf")
    for _ in range(repeat):
        calls = make_calls()
        gc.collect()
        start = time.perf_counter()
        for call in calls:
            call()
        best = min(best, (time.perf_counter() - start) / len(calls))
    return best


def retained_bytes(fill: Callable[[], object]) -> tuple[int, object]:
    """Bytes still allocated after ``fill()`` returns (what it keeps alive), and its result.

    Measured with tracemalloc, after a full collection on both sides.
    """
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        result = fill()
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return after - before, result
