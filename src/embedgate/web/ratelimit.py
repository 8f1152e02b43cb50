"""A per-session rate limit for the token endpoint (fixed one-minute windows)."""

from __future__ import annotations

import math
import threading

from cachetools import TTLCache

from ..clock import SYSTEM_CLOCK, Clock

WINDOW = 60.0


class RateLimiter:
    """Allows ``limit`` requests per session per minute; thread-safe, bounded in memory."""

    def __init__(self, limit: int, *, clock: Clock = SYSTEM_CLOCK, maxsize: int = 100_000):
        self._limit = limit
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: TTLCache[str, list[float]] = TTLCache(
            maxsize=maxsize, ttl=WINDOW, timer=clock.now
        )

    def hit(self, key: str) -> float | None:
        """Count a request; None when allowed, else the seconds until it would be."""
        now = self._clock.now()
        with self._lock:
            window = self._windows.get(key)
            if window is None or now - window[0] >= WINDOW:
                self._windows[key] = [now, 1.0]
                return None
            if window[1] < self._limit:
                window[1] += 1
                return None
            return max(1.0, math.ceil(window[0] + WINDOW - now))
