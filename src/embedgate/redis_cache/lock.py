"""The cluster-wide per-key lock behind single-flight minting: one attempt's state,
the compare-and-delete release script, and the jittered polling delays."""

from __future__ import annotations

import random
import secrets
from collections.abc import Iterator
from typing import Literal

from .keys import redis_key

# Compare-and-delete: only the owner that set the lock may remove it.
_RELEASE_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

# "mint": this caller mints; "minted": another just did, re-read; "busy": keep waiting.
_Attempt = Literal["mint", "minted", "busy"]


class _Lock:
    """One attempt at a key's lock: its Redis name, a random owner, whether we hold it."""

    __slots__ = ("held", "name", "owner", "token_key")

    def __init__(self, key: str) -> None:
        self.name = redis_key("lock", key)
        self.token_key = redis_key("token", key)
        self.owner = secrets.token_hex(16)
        self.held = False


def _delays() -> Iterator[float]:
    """Polling delays: exponential from 10 ms to 250 ms, each with +-50 % jitter."""
    delay = 0.01
    while True:
        # The module's generator, reseeded in forked workers: theirs must not move in step.
        yield delay * (0.5 + random.random())  # noqa: S311 - jitter only
        delay = min(delay * 1.6, 0.25)
