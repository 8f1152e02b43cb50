"""Entry points of the worker processes the Redis tests spawn (each its own interpreter,
its own TokenService and caches, one shared Redis)."""

from __future__ import annotations

import time
from multiprocessing.connection import Connection
from multiprocessing.queues import Queue

import redis

from embedgate import Principal, TokenService
from embedgate.redis_cache import tiered_cache_from_url
from tests.redis.helpers import PRINCIPAL, SESSION, CountingIssuer, signer

READY = "test:ready"
GO = "test:go"


def mint_once(url: str, results: Queue[str]) -> None:
    """Wait for the starting signal, then ask for the one cold key everybody asks for."""
    cache = tiered_cache_from_url(url)
    issuer = CountingIssuer(url, delay=0.3)
    svc = TokenService(issuer, cache=cache)  # type: ignore[arg-type]
    control = redis.Redis.from_url(url)
    control.incr(READY)
    deadline = time.monotonic() + 60
    while not control.exists(GO) and time.monotonic() < deadline:
        time.sleep(0.002)
    token = svc.get_token(PRINCIPAL, SESSION)
    results.put(token.jti or "")
    control.close()
    issuer.close()
    cache.close()


def serve_cache(url: str, conn: Connection) -> None:
    """A peer worker: answers ("get", subject, session) with a jti and ("local",) with the
    number of entries in its in-process tier, until ("stop",)."""
    cache = tiered_cache_from_url(url)
    svc = TokenService(signer(), cache=cache)
    conn.send(cache.wait_listening(20))
    while True:
        command = conn.recv()
        if command[0] == "get":
            principal = Principal(subject=command[1], tenant="acme")
            conn.send(svc.get_token(principal, command[2]).jti)
        elif command[0] == "local":
            conn.send(len(cache.local))
        else:
            break
    cache.close()
    conn.close()


def mint_slow(url: str, results: Queue[str], lock_ttl: float, delay: float) -> None:
    """Like :func:`mint_once`, against a provider slower than the lock's lifetime."""
    cache = tiered_cache_from_url(url, lock_ttl=lock_ttl, lock_wait=10 * delay)
    issuer = CountingIssuer(url, delay=delay)
    svc = TokenService(issuer, cache=cache)  # type: ignore[arg-type]
    control = redis.Redis.from_url(url)
    control.incr(READY)
    deadline = time.monotonic() + 60
    while not control.exists(GO) and time.monotonic() < deadline:
        time.sleep(0.002)
    token = svc.get_token(PRINCIPAL, SESSION)
    results.put(token.jti or "")
    control.close()
    issuer.close()
    cache.close()


def serve_sessions(url: str, conn: Connection) -> None:
    """A worker for the restart test: ("get", subject, session) -> jti,
    ("subscriptions",) -> how often its listener (re)subscribed, ("stop",)."""
    cache = tiered_cache_from_url(url)
    svc = TokenService(signer(), cache=cache)
    conn.send(cache.wait_listening(20))
    while True:
        command = conn.recv()
        if command[0] == "get":
            principal = Principal(subject=command[1], tenant="acme")
            conn.send(svc.get_token(principal, command[2]).jti)
        elif command[0] == "subscriptions":
            conn.send(cache.listener.subscriptions if cache.listener is not None else 0)
        else:
            break
    cache.close()
    conn.close()
