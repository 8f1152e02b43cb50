"""Fixtures for the Redis tests: one real redis-server for the session, flushed per test,
and caches that are closed (listener threads stopped) after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from embedgate import MemoryCache
from embedgate.redis_cache import RedisCache, TieredCache
from tests.support.binaries import require_binary
from tests.support.redis_server import RedisServer


@pytest.fixture(scope="session")
def redis_binary() -> str:
    return require_binary("redis-server")


@pytest.fixture(scope="session")
def redis_server(redis_binary: str) -> Iterator[RedisServer]:
    with RedisServer(redis_binary) as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    with redis_server.client() as client:
        client.flushall()
    return redis_server.url


@pytest.fixture
def raw(redis_server: RedisServer, redis_url: str) -> Iterator[redis.Redis]:
    """A plain client to look at what embedgate stored."""
    with redis_server.client() as client:
        yield client


@pytest.fixture
def own_redis(redis_binary: str) -> Iterator[RedisServer]:
    """A server of this test's own, to stop and restart."""
    with RedisServer(redis_binary) as server:
        yield server


@pytest.fixture
def tiered() -> Iterator[Callable[..., TieredCache]]:
    """Build TieredCaches from a URL, their listeners subscribed; all closed after the test."""
    made: list[TieredCache] = []

    def make(
        url: str,
        *,
        local_ttl: float = 30.0,
        clock: Any = None,
        listening: bool = True,
        **options: Any,
    ) -> TieredCache:
        extra = {} if clock is None else {"clock": clock}
        shared = RedisCache.from_url(url, **extra, **options)
        cache = TieredCache(MemoryCache(**extra), shared, local_ttl=local_ttl, **extra)
        made.append(cache)
        # The first subscription empties the local tier: let it happen before the test
        # fills it.
        if listening:
            assert cache.wait_listening(10), "the invalidation listener did not subscribe"
        return cache

    yield make
    for cache in made:
        cache.close()
