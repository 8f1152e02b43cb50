"""A per-session rate limit for the token endpoint (fixed one-minute windows)."""

from __future__ import annotations

import math
import threading

from ..clock import SYSTEM_CLOCK, Clock

WINDOW = 60.0


class RateLimiter:
    """Allows ``limit`` requests per session per minute; thread-safe, bounded in memory.

    One small entry per key, ``(window start, count)``, in a plain dict kept in order of
    window start (a new window moves its key to the end): windows over are dropped from the
    front as new ones open, and past ``maxsize`` keys the oldest window goes first. That is
    about a third of what a ``TTLCache`` entry costs, counted at 100k sessions.
    """

    def __init__(self, limit: int, *, clock: Clock = SYSTEM_CLOCK, maxsize: int = 100_000):
        self._limit = limit
        self._clock = clock
        self._maxsize = maxsize
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[float, int]] = {}

    def hit(self, key: str) -> float | None:
        """Count a request; None when allowed, else the seconds until it would be."""
        now = self._clock.now()
        with self._lock:
            windows = self._windows
            window = windows.get(key)
            if window is None or now - window[0] >= WINDOW:
                if window is not None:
                    del windows[key]  # re-inserted at the end: the newest window
                self._expire(now)
                windows[key] = (now, 1)
                return None
            if window[1] < self._limit:
                windows[key] = (window[0], window[1] + 1)  # same key: its place is kept
                return None
            return max(1.0, math.ceil(window[0] + WINDOW - now))

    def _expire(self, now: float) -> None:
        windows = self._windows
        while windows:
            oldest = next(iter(windows))
            if now - windows[oldest][0] < WINDOW and len(windows) < self._maxsize:
                return
            del windows[oldest]
