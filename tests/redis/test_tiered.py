"""The two tiers: hot hits stay in the process, a local entry lives at most local_ttl,
and invalidations reach other processes' local tiers."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import pytest
import redis

from embedgate import ManualClock, Principal
from embedgate.redis_cache import PREFIX, TieredCache
from tests.redis import workers
from tests.redis.helpers import PRINCIPAL, SESSION, CountingIssuer, service

pytestmark = pytest.mark.redis


def test_hits_are_served_from_the_local_tier_without_redis(
    redis_url: str, raw: redis.Redis, tiered: Callable[..., TieredCache]
) -> None:
    svc = service(tiered(redis_url))
    token = svc.get_token(PRINCIPAL, SESSION)
    raw.flushall()  # were the hit read from Redis, it would now miss and mint
    assert svc.get_token(PRINCIPAL, SESSION) == token


def test_a_local_entry_lives_at_most_local_ttl(
    redis_url: str, raw: redis.Redis, tiered: Callable[..., TieredCache]
) -> None:
    clock = ManualClock(start=time.time())
    cache = tiered(redis_url, local_ttl=10, clock=clock)
    svc = service(cache)
    token = svc.get_token(PRINCIPAL, SESSION)
    (name,) = raw.keys(PREFIX + "token:*")
    raw.delete(name)
    clock.advance(9)
    assert svc.get_token(PRINCIPAL, SESSION) == token
    clock.advance(2)
    assert svc.get_token(PRINCIPAL, SESSION).jti != token.jti


def test_a_refresh_done_by_another_worker_is_picked_up_from_redis(
    redis_url: str, tiered: Callable[..., TieredCache]
) -> None:
    clock = ManualClock(start=time.time())
    issuer = CountingIssuer(redis_url)
    first = service(tiered(redis_url, local_ttl=3600, clock=clock), issuer)
    second = service(tiered(redis_url, local_ttl=3600, clock=clock), issuer)
    for svc in (first, second):
        svc.clock = clock
    old = first.get_token(PRINCIPAL, SESSION)
    assert second.get_token(PRINCIPAL, SESSION) == old
    clock.set(old.refresh_at + 1)
    assert first.get_token(PRINCIPAL, SESSION) == old  # served; the refresh runs beside it
    assert first.wait_idle()
    new = first.get_token(PRINCIPAL, SESSION)
    assert new.jti != old.jti
    # second's local copy is due for refresh: it finds first's new token in Redis.
    assert second.get_token(PRINCIPAL, SESSION) == new
    assert issuer.mints == 2
    issuer.close()


def test_invalidations_reach_another_process_local_tier(
    redis_url: str, tiered: Callable[..., TieredCache]
) -> None:
    context = multiprocessing.get_context("spawn")
    here, there = context.Pipe()
    peer = context.Process(target=workers.serve_cache, args=(redis_url, there))
    peer.start()
    try:
        assert here.poll(60), "the peer did not start"
        assert here.recv() is True, "the peer's listener did not subscribe"
        first = _ask(here, "get", "alice", "s1")
        _ask(here, "get", "alice", "s2")
        _ask(here, "get", "bob", "s3")
        assert _ask(here, "local") == 3

        svc = service(tiered(redis_url))
        assert svc.invalidate_session("s1") == 1
        _wait_for(lambda: _ask(here, "local") == 2)
        again = _ask(here, "get", "alice", "s1")
        assert again != first

        assert svc.invalidate_subject("alice") == 2
        _wait_for(lambda: _ask(here, "local") == 1)
        assert _ask(here, "get", "alice", "s2") not in (first, again)
    finally:
        here.send(("stop",))
        peer.join(30)
    assert peer.exitcode == 0


def test_the_local_tier_is_emptied_when_the_listener_subscribes(
    redis_url: str, tiered: Callable[..., TieredCache]
) -> None:
    cache = tiered(redis_url)
    assert cache.wait_listening(10)
    svc = service(cache)
    svc.get_token(PRINCIPAL, SESSION)
    svc.get_token(Principal(subject="bob"), SESSION)
    assert len(cache.local) == 2
    assert cache.listener is not None
    # As after a fork or a reconnect: whatever was missed meanwhile is forgotten.
    cache.listener.stop()
    assert cache.wait_listening(10)
    assert len(cache.local) == 0
    assert cache.listener.subscriptions == 2


def test_a_forked_worker_starts_its_own_listener(
    redis_url: str, tiered: Callable[..., TieredCache]
) -> None:
    # gunicorn --preload: the app (and its cache) is built in the master, then forked.
    cache = tiered(redis_url)
    svc = service(cache)
    assert cache.wait_listening(10)
    svc.get_token(PRINCIPAL, "master-session")
    here, there = multiprocessing.get_context("fork").Pipe()

    def child() -> None:
        # Threads do not survive fork: this needs a listener of its own.
        there.send((cache.wait_listening(10), len(cache.local)))
        svc.get_token(PRINCIPAL, "child-session")
        there.send(len(cache.local))
        deadline = time.monotonic() + 10
        while len(cache.local) and time.monotonic() < deadline:
            time.sleep(0.02)
        there.send(len(cache.local))

    process = multiprocessing.get_context("fork").Process(target=child)
    process.start()
    try:
        assert here.poll(30)
        assert here.recv() == (True, 0)  # subscribed, inherited entries dropped
        assert here.poll(30)
        assert here.recv() == 1
        service(tiered(redis_url)).invalidate_session("child-session")
        assert here.poll(30)
        assert here.recv() == 0
    finally:
        process.join(30)
    assert process.exitcode == 0


def _ask(conn: Connection, *command: str) -> Any:
    conn.send(command)
    assert conn.poll(30), f"peer did not answer {command[0]}"
    return conn.recv()


def _wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll; the bound is far below local_ttl (30 s), so passing proves pub/sub delivery."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the invalidation did not arrive"
        time.sleep(0.02)
