"""Timeouts and retries for a provider's HTTP API (no HTTP client needed to describe them)."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class HttpPolicy:
    """Timeouts (seconds) and retries for one provider."""

    connect_timeout: float = 3.0
    read_timeout: float = 10.0
    retries: int = 2
    backoff: float = 0.2
    backoff_max: float = 2.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Backoff before retry number ``attempt`` (0-based): exponential, half jittered."""
        base = min(self.backoff_max, self.backoff * 2.0**attempt)
        return base / 2 + rng.random() * base / 2
