"""Redis section: what the shared cache costs per request.

A cache hit served by the in-process tier, the same hit served by a Redis round trip,
and a local HS256 mint, against a redis-server this section starts on a free 127.0.0.1
port (loopback: a network hop adds to every Redis figure). Skipped, with the reason
printed, when redis-server is not installed.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from functools import partial
from itertools import count

from bench.core import realistic_principal
from bench.table import Row
from bench.timing import per_call, per_each
from embedgate import IssueRequest, KeySet, LocalSigner, MemoryCache, SigningKey, TokenService
from embedgate.redis_cache import RedisCache, TieredCache

SECTION = "redis"
SECRET = "bench-secret-7Qm2vX9kL4pR8tZ1wB6nC3yD5fG0hJ"


def _us(seconds: float) -> float:
    return seconds * 1e6


def run() -> list[Row]:
    """Measure, and return the rows for the table ([] without redis-server)."""
    binary = shutil.which("redis-server")
    if binary is None:
        print(f"bench: skipped {SECTION}: redis-server is not installed", file=sys.stderr)
        return []
    from tests.support.redis_server import RedisServer

    signer = LocalSigner(
        KeySet([SigningKey.hmac(SECRET)]), issuer="https://app.example.com", audience="analytics"
    )
    principal = realistic_principal(1)
    with RedisServer(binary) as server:
        tiered = TieredCache(MemoryCache(), RedisCache.from_url(server.url))
        shared = RedisCache.from_url(server.url)
        try:
            tiered.wait_listening()
            via_local = TokenService(signer, cache=tiered)
            via_redis = TokenService(signer, cache=shared)
            token = via_local.get_token(principal, "warm")
            via_redis.get_token(principal, "warm")
            tiered.set("raw", token, token.expires_at - 30)

            local_hit = per_call(lambda: via_local.get_token(principal, "warm"), number=20_000)
            redis_hit = per_call(lambda: via_redis.get_token(principal, "warm"), number=1_000)
            local_get = per_call(lambda: tiered.get("raw"), number=50_000)
            redis_get = per_call(lambda: shared.get("raw"), number=1_000)
            request = IssueRequest(principal=principal, now=time.time(), ttl=300)
            mint = per_call(lambda: signer.issue(request), number=5_000)
            sessions = count()

            def cold() -> list[Callable[[], object]]:
                names = [f"cold-{next(sessions)}" for _ in range(300)]
                return [partial(via_local.get_token, principal, name) for name in names]

            miss = per_each(cold, repeat=3)
        finally:
            tiered.close()
            shared.close()

    return [
        Row(SECTION, "cache hit: get_token, in-process tier", _us(local_hit), "µs/op"),
        Row(
            SECTION,
            "cache hit: get_token, Redis round trip",
            _us(redis_hit),
            "µs/op",
            note="RedisCache alone, loopback",
        ),
        Row(SECTION, "cache get alone: in-process tier", _us(local_get), "µs/op"),
        Row(
            SECTION,
            "cache get alone: Redis round trip",
            _us(redis_get),
            "µs/op",
            note="GET + JSON decode",
        ),
        Row(SECTION, "mint afresh: LocalSigner.issue (HS256)", _us(mint), "µs/op"),
        Row(
            SECTION,
            "cache miss: get_token, new session",
            _us(miss),
            "µs/op",
            note="lock, re-read, mint, write, unlock",
        ),
        Row(SECTION, "in-process hit is faster than a Redis hit by", redis_hit / local_hit, "x"),
        Row(SECTION, "in-process hit is faster than an HS256 mint by", mint / local_hit, "x"),
        Row(
            SECTION,
            "Redis hit vs an HS256 mint",
            mint / redis_hit,
            "x",
            note="below 1: a local HS256 mint beats the round trip",
        ),
    ]
