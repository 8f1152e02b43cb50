"""Scale section: Redis operations per page (shared hit) and per refresh (a mint), bytes
per session held in Redis (token entry, session and subject indexes; values sealed), and
mints per second per core for each signing algorithm. Skipped without redis-server."""

from __future__ import annotations

import shutil
import sys
import time
from typing import Any

from bench.table import Row
from bench.timing import per_call
from embedgate import IssueRequest, KeySet, LocalSigner, SigningKey, TokenService
from embedgate.keys import generate_private_pem
from embedgate.principal import Principal
from embedgate.redis_cache import RedisCache
from embedgate.redis_cache.codec import ValueCodec

SECTION = "scale"
SECRET = "bench-scale-secret-7Qm2vX9kL4pR8tZ1wB6nC3yD5f"
SESSIONS = 2_000


def _calls(client: Any) -> int:
    stats = client.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k not in ("cmdstat_info",))


def run() -> list[Row]:
    binary = shutil.which("redis-server")
    if binary is None:
        print(f"bench: skipped {SECTION}: redis-server is not installed", file=sys.stderr)
        return []
    from tests.support.redis_server import RedisServer

    rows: list[Row] = []
    signer = LocalSigner(KeySet([SigningKey.hmac(SECRET)]), issuer="https://app", audience="a")
    codec = ValueCodec(tag_key=b"k" * 32, cipher_key=b"c" * 32)
    with RedisServer(binary) as server, server.client() as raw:
        shared = RedisCache.from_url(server.url, codec=codec)
        service = TokenService(signer, cache=shared)
        try:
            principal = Principal(subject="user-0@example.com", tenant="acme")
            service.get_token(principal, "s-warm")
            raw.config_resetstat()
            for _ in range(100):
                service.get_token(principal, "s-warm")
            per_hit = (_calls(raw) - 1) / 100
            raw.config_resetstat()
            for i in range(100):
                service.get_token(Principal(subject=f"cold{i}@example.com"), f"s-cold-{i}")
            per_mint = (_calls(raw) - 1) / 100
            raw.flushall()
            base = int(raw.info("memory")["used_memory"])
            for i in range(SESSIONS):
                service.get_token(Principal(subject=f"user{i}@example.com", tenant="acme"), f"s{i}")
            used = int(raw.info("memory")["used_memory"]) - base
            keys = list(raw.scan_iter(count=1000))
            usage = sum(int(raw.memory_usage(k) or 0) for k in keys)
        finally:
            shared.close()
    rows += [
        Row(SECTION, "Redis commands per page served from Redis (no local tier)", per_hit, "ops"),
        Row(
            SECTION,
            "Redis commands per refresh (lock, re-read, mint, write, release)",
            per_mint,
            "ops",
        ),
        Row(
            SECTION,
            "keys per session (entry + session index + subject index)",
            len(keys) / SESSIONS,
            "keys",
        ),
        Row(
            SECTION,
            "bytes per session in Redis (MEMORY USAGE, sealed values)",
            usage / SESSIONS,
            "B",
        ),
        Row(SECTION, "bytes per session in Redis (used_memory delta)", used / SESSIONS, "B"),
        Row(
            SECTION,
            "sessions per GB of Redis (used_memory delta)",
            1e9 / max(1.0, used / SESSIONS),
            "sessions",
        ),
    ]
    request = IssueRequest(principal=Principal(subject="u", tenant="t"), now=time.time(), ttl=300)
    for algorithm in ("HS256", "ES256", "EdDSA", "RS256"):
        if algorithm == "HS256":
            key = SigningKey.hmac(SECRET)
        else:
            key = SigningKey.private(generate_private_pem(algorithm), algorithm=algorithm)
        one = LocalSigner(KeySet([key]), issuer="https://app", audience="a")
        seconds = per_call(lambda one=one: one.issue(request), number=500)
        rows.append(Row(SECTION, f"mints per second per core, {algorithm}", 1 / seconds, "/s"))
    return rows
