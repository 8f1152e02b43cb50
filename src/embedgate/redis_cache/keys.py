"""The names Redis sees: the ``embedgate:v1:`` prefix, the invalidation channel, and
hashed keys that never carry a raw id.

The hash sits in braces, a Redis Cluster *hash tag*: every name derived from one value
(a cache key's token entry and its lock, say) lands in one hash slot, on one node, so a
Lua script or a multi-key command over them is legal on a cluster and they fail over
together.
"""

from __future__ import annotations

import hashlib
from typing import Final

PREFIX: Final = "embedgate:v1:"
CHANNEL: Final = PREFIX + "invalidate"


def key_hash(value: str) -> str:
    """The SHA-256 standing for ``value`` in names (the hash tag)."""
    return hashlib.sha256(b"embedgate\x00" + value.encode()).hexdigest()


def redis_key(kind: str, value: str) -> str:
    """``embedgate:v1:<kind>:{<sha256>}``: the name Redis sees, never the raw value; names
    of every kind derived from one value share a hash slot."""
    return f"{PREFIX}{kind}:{{{key_hash(value)}}}"
