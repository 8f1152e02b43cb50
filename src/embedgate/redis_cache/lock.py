"""The cluster-wide per-key lock behind single-flight minting: one attempt's state,
the compare-and-delete release script, and the jittered polling delays."""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from typing import Literal

from .keys import redis_key

# Compare-and-delete: only the owner that set the lock may remove it.
_RELEASE_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

# Extend the lock while its owner still holds it (the call it guards is still running).
_EXTEND_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# The longest a live holder keeps extending its lock: far beyond any provider's timeouts.
MAX_HOLD = 300.0

# "mint": this caller mints; "minted": another just did, re-read; "busy": keep waiting.
# "down": Redis could not be asked.
_Attempt = Literal["mint", "minted", "busy", "down"]


class _Lock:
    """One attempt at a key's lock: its Redis name, a random owner, whether we hold it."""

    __slots__ = ("held", "name", "owner", "token_key")

    def __init__(self, key: str) -> None:
        self.name = redis_key("lock", key)
        self.token_key = redis_key("token", key)
        self.owner = secrets.token_hex(16)
        self.held = False


class _Renewal:
    """Extends a held lock every ``every`` seconds from a daemon thread, so the lock
    outlives the call it guards however slow the provider (a dead process stops extending
    it, and the lock expires ``lock_ttl`` later)."""

    def __init__(self, extend: Callable[[], bool], every: float) -> None:
        self._stop = threading.Event()
        self._extend = extend
        self._every = every
        self.extensions = 0
        self._thread = threading.Thread(target=self._run, name="embedgate-lock", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        end = time.monotonic() + MAX_HOLD
        while not self._stop.wait(self._every) and time.monotonic() < end:
            if not self._extend():
                return
            self.extensions += 1

    def stop(self) -> None:
        self._stop.set()


def _delays() -> Iterator[float]:
    """Polling delays: exponential from 10 ms to 250 ms, each with +-50 % jitter."""
    delay = 0.01
    while True:
        # The module's generator, reseeded in forked workers: theirs must not move in step.
        yield delay * (0.5 + random.random())  # noqa: S311 - jitter only
        delay = min(delay * 1.6, 0.25)
