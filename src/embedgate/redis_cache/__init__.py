"""The shared token cache on Redis, for apps that run several worker processes.

:class:`RedisCache` is a :class:`~embedgate.cache.CacheBackend` on redis-py: tokens as
JSON under hashed ``embedgate:v1:`` keys, a cluster-wide lock per key for single-flight,
and invalidation by session and by subject. :class:`TieredCache` puts a short in-process
tier in front of it, so hot hits never leave the process.

Design decisions:

* Keys never carry raw ids: every key is ``embedgate:v1:<kind>:<sha256>``. The value is
  ``EmbedToken.to_json()`` and so holds the raw subject: the service compares it with the
  requester's before serving (a guard against collisions and a poisoned cache), and the
  token next to it is a bearer credential that usually carries ``sub`` anyway. Invalidation
  messages carry it too (a subject hash could not be matched against the local tier
  without hashing every entry). Treat the Redis instance as a secret store.
* Invalidation reaches other processes through the pub/sub channel
  ``embedgate:v1:invalidate``, listened to by one daemon thread per process (started
  lazily, restarted after a fork). A generation counter per process would cost a Redis
  round trip on every local hit, which is what the local tier exists to avoid. Pub/sub
  is fire-and-forget, so the bound does not depend on it: a local entry never outlives
  ``local_ttl`` (30 s by default), and the local tier is emptied whenever the listener
  (re)subscribes, since messages may have been missed while it was away.
* Index sets are sorted sets scored by each entry's deadline: expired members are pruned
  on every write, so the index of a busy subject (the sandbox subject, say) stays bounded.
  Index expiry uses ``PEXPIRE ... NX`` / ``GT``: Redis 7.0 or newer.
* A circuit breaker guards every Redis call: after ``threshold`` consecutive failures the
  shared tier is skipped (reads miss, writes and invalidations are dropped, ``exclusive``
  yields True) and tokens come from the local tier or are minted directly; one probe per
  cool-down tests whether Redis is back. Invalidations made while it is open reach this
  process's local tier only: the Redis copies live out their deadlines. An issued token
  cannot be revoked by a cache anyway; invalidation only stops re-serving it.
* The async face uses ``redis.asyncio`` on asyncio. redis.asyncio does not run on trio,
  so there the async face runs the sync client in worker threads.
"""

from __future__ import annotations

# The submodules reach redis-py only through .client, whose import guard raises a
# ConfigurationError naming ``pip install embedgate[redis]`` when it is missing.
# Names imported ``as`` themselves are re-exported for callers of the old module but
# stay out of ``__all__``, as they were.
from .backend import DEFAULT_TIMEOUT as DEFAULT_TIMEOUT
from .backend import RedisCache
from .breaker import CircuitBreaker
from .client import SCHEMES as SCHEMES
from .client import AsyncClient as AsyncClient
from .client import SyncClient as SyncClient
from .client import check_url as check_url
from .invalidation import InvalidationListener
from .keys import CHANNEL, PREFIX, redis_key
from .tiered import DEFAULT_LOCAL_TTL as DEFAULT_LOCAL_TTL
from .tiered import TieredCache, tiered_cache_from_url

__all__ = [
    "CHANNEL",
    "PREFIX",
    "CircuitBreaker",
    "InvalidationListener",
    "RedisCache",
    "TieredCache",
    "redis_key",
    "tiered_cache_from_url",
]
