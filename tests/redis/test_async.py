"""The async face: redis.asyncio on asyncio; on trio (which redis.asyncio does not
support) the same operations run on the sync client in worker threads."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anyio
import pytest
import redis

from embedgate import Principal
from embedgate.redis_cache import PREFIX, CircuitBreaker, RedisCache, TieredCache, redis_key
from tests.redis.helpers import PRINCIPAL, SESSION, CountingIssuer, service
from tests.support.redis_server import RedisServer

pytestmark = [pytest.mark.redis, pytest.mark.anyio]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    return request.param


async def test_tasks_with_their_own_services_mint_a_cold_key_once(
    anyio_backend: str, redis_url: str, tiered: Callable[..., TieredCache]
) -> None:
    issuer = CountingIssuer(redis_url, delay=0.3)
    services = [service(tiered(redis_url), issuer) for _ in range(6)]
    jtis: list[str | None] = []

    async def ask(index: int) -> None:
        jtis.append((await services[index].aget_token(PRINCIPAL, SESSION)).jti)

    async with anyio.create_task_group() as group:
        for index in range(len(services)):
            group.start_soon(ask, index)
    assert len(jtis) == 6
    assert len(set(jtis)) == 1
    assert issuer.mints == 1
    for svc in services:
        assert isinstance(svc.cache, TieredCache)
        await svc.cache.shared.aclose()
    issuer.close()


async def test_async_round_trip_and_invalidation_match_the_sync_face(
    anyio_backend: str, redis_url: str, raw: redis.Redis, tiered: Callable[..., TieredCache]
) -> None:
    cache = tiered(redis_url)
    svc = service(cache)
    token = await svc.aget_token(PRINCIPAL, SESSION)
    other = await svc.aget_token(Principal(subject="bob"), SESSION)
    assert len(raw.keys(PREFIX + "token:*")) == 2
    # The sync face of another cache reads what the async face wrote.
    assert service(tiered(redis_url)).get_token(PRINCIPAL, SESSION) == token

    assert await svc.ainvalidate_subject("bob") == 1
    assert len(raw.keys(PREFIX + "token:*")) == 1
    assert await svc.ainvalidate_session(SESSION) == 1
    assert raw.keys(PREFIX + "token:*") == []
    assert (await svc.aget_token(PRINCIPAL, SESSION)).jti not in (token.jti, other.jti)
    await cache.shared.aclose()


async def test_a_dead_lock_holder_does_not_wedge_the_async_face(
    anyio_backend: str, redis_url: str
) -> None:
    alive = RedisCache.from_url(redis_url)
    # What a holder that died leaves behind: its lock, no longer extended.
    assert alive.client is not None
    alive.client.set(redis_key("lock", "k"), "dead-owner", px=300)
    async with alive.aexclusive("k") as ours:
        assert ours is True
    assert alive.lock_waits == 1
    assert alive.lock_timeouts == 0
    alive.close()
    await alive.aclose()


async def test_the_async_face_falls_back_during_an_outage(
    anyio_backend: str, own_redis: RedisServer, tiered: Callable[..., TieredCache]
) -> None:
    cache = tiered(own_redis.url, breaker=CircuitBreaker(threshold=2, cooldown=0.2))
    svc = service(cache)
    warm = await svc.aget_token(PRINCIPAL, SESSION)
    own_redis.stop()
    assert await svc.aget_token(PRINCIPAL, SESSION) == warm
    for i in range(4):
        assert (await svc.aget_token(Principal(subject=f"u{i}"), f"s{i}")).subject == f"u{i}"
    assert cache.shared.breaker.state == "open"
    async with cache.aexclusive("k") as ours:
        assert ours is None  # no lock could be taken: mint only with nothing to serve
    own_redis.start()
    deadline = time.monotonic() + 10
    probes = 0
    while cache.shared.breaker.state != "closed":
        assert time.monotonic() < deadline, "the breaker did not close"
        probes += 1
        await svc.aget_token(Principal(subject="prober"), f"probe-{probes}")
        await anyio.sleep(0.05)
    await cache.shared.aclose()


async def test_with_only_a_sync_client_the_async_face_runs_it_in_threads(
    anyio_backend: str, redis_url: str
) -> None:
    client = redis.Redis.from_url(redis_url, socket_timeout=0.25)
    writer = service(RedisCache(client))
    token = await writer.aget_token(PRINCIPAL, SESSION)
    assert service(RedisCache(client)).get_token(PRINCIPAL, SESSION) == token
    async with RedisCache(client).aexclusive("k") as ours:
        assert ours is True
    client.close()
