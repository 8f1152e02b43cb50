"""The names Redis sees: the ``embedgate:v1:`` prefix, the invalidation channel, and
hashed keys that never carry a raw id."""

from __future__ import annotations

import hashlib
from typing import Final

PREFIX: Final = "embedgate:v1:"
CHANNEL: Final = PREFIX + "invalidate"


def redis_key(kind: str, value: str) -> str:
    """``embedgate:v1:<kind>:<sha256>``: the name Redis sees, never the raw value."""
    hashed = hashlib.sha256(f"{kind}\x00{value}".encode()).hexdigest()
    return f"{PREFIX}{kind}:{hashed}"
