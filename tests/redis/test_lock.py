"""Cluster-wide single-flight: one mint per cold key across threads and processes, and a
dead lock holder cannot wedge a key."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
import redis

from embedgate import IssueRequest, IssuerError
from embedgate.redis_cache import RedisCache, TieredCache, redis_key
from tests.redis import workers
from tests.redis.helpers import PRINCIPAL, SESSION, CountingIssuer, service, signer

pytestmark = pytest.mark.redis


def test_threads_with_their_own_services_mint_a_cold_key_once(
    redis_url: str, tiered: Callable[..., TieredCache]
) -> None:
    workers_count = 8
    issuer = CountingIssuer(redis_url, delay=0.3)
    services = [service(tiered(redis_url), issuer) for _ in range(workers_count)]
    start = threading.Barrier(workers_count)
    jtis: list[str | None] = []

    def ask(index: int) -> None:
        start.wait()
        jtis.append(services[index].get_token(PRINCIPAL, SESSION).jti)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(workers_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(jtis) == workers_count
    assert len(set(jtis)) == 1
    assert issuer.mints == 1
    issuer.close()


def test_processes_with_their_own_services_mint_a_cold_key_once(
    redis_url: str, raw: redis.Redis
) -> None:
    count = 5
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    processes = [
        context.Process(target=workers.mint_once, args=(redis_url, results)) for _ in range(count)
    ]
    for process in processes:
        process.start()
    try:
        deadline = time.monotonic() + 60
        while int(raw.get(workers.READY) or 0) < count:
            assert time.monotonic() < deadline, "workers did not start"
            assert all(p.is_alive() for p in processes), "a worker died while starting"
            time.sleep(0.02)
        raw.set(workers.GO, 1)
        jtis = [results.get(timeout=30) for _ in range(count)]
    finally:
        for process in processes:
            process.join(30)
    assert [p.exitcode for p in processes] == [0] * count
    assert len(set(jtis)) == 1
    assert jtis[0]
    assert int(raw.get("test:mints") or 0) == 1


def stop_extending(held: Any) -> None:
    """Stop the lock extension of a holder entered by hand (as if its process died)."""
    renewal = held.gen.gi_frame.f_locals["renewal"]
    assert renewal is not None
    renewal.stop()


def test_a_dead_lock_holder_blocks_a_key_only_until_its_lock_expires(redis_url: str) -> None:
    dead = RedisCache.from_url(redis_url, lock_ttl=0.3)
    alive = RedisCache.from_url(redis_url, lock_wait=5.0)
    held = dead.exclusive("cold-key")
    assert held.__enter__() is True  # ...and never leaves: the holder died,
    stop_extending(held)  # and with it the thread that kept its lock alive

    with alive.exclusive("cold-key") as ours:
        assert ours is True
        assert alive.lock_waits == 1
        assert alive.lock_timeouts == 0
        # The dead holder's late release must not remove the new holder's lock.
        held.__exit__(None, None, None)
        with redis.Redis.from_url(redis_url) as raw:
            assert raw.exists(redis_key("lock", "cold-key")) == 1
    with redis.Redis.from_url(redis_url) as raw:
        assert raw.exists(redis_key("lock", "cold-key")) == 0
    dead.close()
    alive.close()


def test_a_waiter_gives_up_after_lock_wait_and_does_not_mint_beside_the_holder(
    redis_url: str,
) -> None:
    holder = RedisCache.from_url(redis_url, lock_ttl=30)
    waiter = RedisCache.from_url(redis_url, lock_wait=0.2)
    issuer = CountingIssuer(redis_url)
    with holder.exclusive("k") as ours:
        assert ours
        with waiter.exclusive("k") as second:
            assert second is False
        assert waiter.lock_timeouts == 1
        # The service behind such a waiter answers "try again soon" rather than mint.
        svc = service(RedisCache.from_url(redis_url, lock_wait=0.2), issuer)
        key = svc._ask(PRINCIPAL, SESSION, None).key
        with holder.exclusive(key) as held:
            assert held
            with pytest.raises(IssuerError) as caught:
                svc.get_token(PRINCIPAL, SESSION)
        assert caught.value.retry_after >= 1
        assert issuer.mints == 0
    holder.close()
    waiter.close()
    issuer.close()


def test_a_waiter_returns_as_soon_as_the_holder_stored_a_fresh_token(redis_url: str) -> None:
    holder_cache = RedisCache.from_url(redis_url)
    waiter_cache = RedisCache.from_url(redis_url, lock_wait=10)
    key = "k"
    token = signer().issue(_request())
    stamped = replace(token, refresh_at=token.expires_at - 60)

    def finish_mint() -> None:
        time.sleep(0.2)
        holder_cache.set(key, stamped, stamped.expires_at - 30)

    with holder_cache.exclusive(key):
        thread = threading.Thread(target=finish_mint)
        thread.start()
        with waiter_cache.exclusive(key) as ours:
            assert ours is False
        thread.join()
    assert waiter_cache.lock_timeouts == 0
    assert waiter_cache.lock_waits == 1
    assert waiter_cache.get(key) == stamped
    holder_cache.close()
    waiter_cache.close()


def test_the_lock_is_released_after_the_mint(redis_url: str, raw: redis.Redis) -> None:
    cache = RedisCache.from_url(redis_url)
    service(cache).get_token(PRINCIPAL, SESSION)
    assert raw.keys("embedgate:v1:lock:*") == []
    cache.close()


def _request() -> IssueRequest:
    return IssueRequest(principal=PRINCIPAL, now=time.time(), ttl=300)
