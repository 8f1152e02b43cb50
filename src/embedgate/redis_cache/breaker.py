"""The circuit breaker that guards every Redis call, so an outage costs a skipped
shared tier rather than a timeout per request."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Final

from ..errors import ConfigurationError

log = logging.getLogger("embedgate")


class CircuitBreaker:
    """Closed, open after ``threshold`` consecutive failures, then one probe per
    ``cooldown`` seconds (half-open) until a call succeeds.

    Opening and closing are logged once each, at warning; failed probes only at debug.
    The counters are for tests and metrics.
    """

    CLOSED: Final = "closed"
    OPEN: Final = "open"
    HALF_OPEN: Final = "half_open"

    def __init__(
        self,
        threshold: int = 3,
        cooldown: float = 5.0,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if threshold < 1:
            raise ConfigurationError("threshold", f"must be at least 1, got {threshold}")
        if cooldown <= 0:
            raise ConfigurationError("cooldown", f"must be positive, got {cooldown}")
        self.threshold = threshold
        self.cooldown = cooldown
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self.state: str = self.CLOSED
        self.consecutive_failures = 0
        self.failures = 0
        self.opened = 0
        self.recoveries = 0
        self.rejected = 0
        self._probe_at = 0.0

    def allow(self) -> bool:
        """Whether a call may go to Redis now (when not closed: one probe per cool-down)."""
        if self.state == self.CLOSED:
            return True
        with self._lock:
            if self.state == self.CLOSED:
                return True
            now = self._monotonic()
            if now >= self._probe_at:
                # A probe that never reports back (a cancelled task) frees the next slot.
                self.state = self.HALF_OPEN
                self._probe_at = now + self.cooldown
                return True
            self.rejected += 1
            return False

    def success(self) -> None:
        if self.state == self.CLOSED and not self.consecutive_failures:
            return
        with self._lock:
            self.consecutive_failures = 0
            if self.state != self.CLOSED:
                self.state = self.CLOSED
                self.recoveries += 1
                log.warning("embedgate: Redis is reachable again; the shared cache is back")

    def failure(self, error: BaseException) -> None:
        with self._lock:
            self.failures += 1
            self.consecutive_failures += 1
            if self.state == self.HALF_OPEN:
                self.state = self.OPEN
                self._probe_at = self._monotonic() + self.cooldown
                log.debug("embedgate: Redis probe failed (%s)", type(error).__name__)
            elif self.state == self.CLOSED and self.consecutive_failures >= self.threshold:
                self.state = self.OPEN
                self.opened += 1
                self._probe_at = self._monotonic() + self.cooldown
                log.warning(
                    "embedgate: Redis unreachable (%s); the shared cache is off, serving "
                    "from the in-process cache and minting locally until it returns",
                    type(error).__name__,
                )

    def __repr__(self) -> str:
        return f"CircuitBreaker(state={self.state!r}, opened={self.opened})"
