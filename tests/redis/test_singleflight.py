"""Single flight that holds, with a real redis-server and several processes: the lock
outlives a provider slower than its lifetime, a waiter that sees a servable token does not
mint beside the holder, and a Redis restart costs no session a second token."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import Any

import pytest
import redis

from embedgate import ManualClock, TokenService, TokenTiming
from embedgate.cache import cache_key
from embedgate.redis_cache import tiered_cache_from_url
from tests.redis import workers
from tests.redis.helpers import PRINCIPAL, SESSION, CountingIssuer
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.timeout(120)


def _run_minters(url: str, raw: redis.Redis, count: int, *args: Any) -> list[str]:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    processes = [
        context.Process(target=workers.mint_slow, args=(url, results, *args)) for _ in range(count)
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
        return [results.get(timeout=60) for _ in range(count)]
    finally:
        for process in processes:
            process.join(30)
        assert [p.exitcode for p in processes] == [0] * count


def test_the_lock_outlives_a_provider_slower_than_its_lifetime(
    redis_url: str, raw: redis.Redis
) -> None:
    # The lock lives 0.3 s unless extended; the provider takes 1.5 s per mint.
    jtis = _run_minters(redis_url, raw, 4, 0.3, 1.5)
    assert int(raw.get("test:mints") or 0) == 1
    assert len(set(jtis)) == 1


def test_a_servable_token_ends_the_wait_for_another_workers_refresh(
    redis_url: str, raw: redis.Redis
) -> None:
    # TTL 60 with MIN_REMAINING 30: the case where the refresh point used to fall after
    # the token stopped being served, and a waiter saw "not fresh" and minted anyway.
    clock = ManualClock(start=time.time())
    issuer = CountingIssuer(redis_url)
    cache = tiered_cache_from_url(redis_url, clock=clock, lock_wait=0.5)
    svc = TokenService(
        issuer,  # type: ignore[arg-type]
        cache=cache,
        clock=clock,
        timing=TokenTiming(ttl=60, min_remaining=30),
    )
    try:
        first = svc.get_token(PRINCIPAL, SESSION)
        assert first.refresh_at < first.expires_at - 30  # due while still served
        clock.set(first.refresh_at + 0.5)
        key = cache_key(
            session_id=SESSION,
            tenant=PRINCIPAL.tenant,
            subject=PRINCIPAL.subject,
            claims_hash=PRINCIPAL.fingerprint(),
            scope=issuer.cache_scope(),
            resource=None,
        )
        # Another worker holds the key's lock: it is refreshing the token right now.
        raw.set(f"embedgate:v1:lock:{_hashed('lock', key)}", "another-worker", px=30_000)
        for _ in range(5):
            assert svc.get_token(PRINCIPAL, SESSION).token == first.token
        assert svc.wait_idle()
        assert issuer.mints == 1  # nobody minted beside the lock holder
    finally:
        issuer.close()
        cache.close()


def _hashed(kind: str, value: str) -> str:
    from embedgate.redis_cache import redis_key

    return redis_key(kind, value).rsplit(":", 1)[1]


@pytest.fixture
def peers(own_redis: RedisServer) -> Iterator[list[Connection]]:
    context = multiprocessing.get_context("spawn")
    pipes = [context.Pipe() for _ in range(3)]
    processes = [
        context.Process(target=workers.serve_sessions, args=(own_redis.url, there))
        for _, there in pipes
    ]
    for process in processes:
        process.start()
    try:
        for here, _ in pipes:
            assert here.poll(60), "a peer did not start"
            assert here.recv() is True, "a peer's listener did not subscribe"
        yield [here for here, _ in pipes]
    finally:
        for here, _ in pipes:
            here.send(("stop",))
        for process in processes:
            process.join(30)


def _ask(conn: Connection, *command: str) -> Any:
    conn.send(command)
    assert conn.poll(30), f"no answer to {command[0]}"
    return conn.recv()


def test_a_redis_restart_gives_no_session_a_second_token(
    own_redis: RedisServer, peers: list[Connection]
) -> None:
    sessions = [(f"user-{i}", f"session-{i}") for i in range(8)]
    before = {s: {_ask(peer, "get", *s) for peer in peers} for s in sessions}
    assert all(len(jtis) == 1 for jtis in before.values())  # shared: one mint per session

    own_redis.stop()
    for peer in peers:  # sessions that start during the outage open every worker's breaker
        for n in range(4):
            _ask(peer, "get", "newcomer", f"outage-{n}")
    assert {s: {_ask(peer, "get", *s) for peer in peers} for s in sessions} == before

    subscribed = [_ask(peer, "subscriptions") for peer in peers]
    own_redis.start()  # the same port, an empty data set
    deadline = time.monotonic() + 30
    while any(_ask(p, "subscriptions") <= n for p, n in zip(peers, subscribed, strict=True)):
        assert time.monotonic() < deadline, "a listener never resubscribed"
        time.sleep(0.05)
    # Every worker asks for every session at once, right after resubscribing.
    after = {s: {_ask(peer, "get", *s) for peer in peers} for s in sessions}
    assert after == before
