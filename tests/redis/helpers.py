"""Shared pieces of the Redis tests: a real HS256 signer, a counting issuer, principals.

Top-level and importable, so spawned worker processes can use them too.
"""

from __future__ import annotations

import time

import anyio
import redis

from embedgate import IssueRequest, KeySet, LocalSigner, Principal, SigningKey, TokenService
from embedgate.cache import CacheBackend
from embedgate.token import EmbedToken

SECRET = "test-secret-0123456789abcdef-0123456789"
SESSION = "sess-7f3a9c-raw-session-id"
SUBJECT = "alice@example.com"
PRINCIPAL = Principal(subject=SUBJECT, tenant="acme", roles=("viewer",))
MINTS = "test:mints"


def signer() -> LocalSigner:
    return LocalSigner(
        KeySet([SigningKey.hmac(SECRET)]), issuer="embedgate-test", audience="analytics"
    )


class CountingIssuer:
    """A real HS256 signer that counts mints in Redis (so across processes) and can take
    its time, like a remote provider, so that concurrent callers really overlap."""

    def __init__(self, url: str, delay: float = 0.0) -> None:
        self.inner = signer()
        self.delay = delay
        self.counter = redis.Redis.from_url(url)

    @property
    def name(self) -> str:
        return "counting"

    def cache_scope(self) -> str:
        return self.inner.cache_scope()

    def issue(self, request: IssueRequest) -> EmbedToken:
        self.counter.incr(MINTS)
        time.sleep(self.delay)
        return self.inner.issue(request)

    async def aissue(self, request: IssueRequest) -> EmbedToken:
        self.counter.incr(MINTS)
        await anyio.sleep(self.delay)
        return self.inner.issue(request)

    def jwks(self) -> None:
        return None

    @property
    def mints(self) -> int:
        return int(self.counter.get(MINTS) or 0)

    def close(self) -> None:
        self.counter.close()


def service(cache: CacheBackend, issuer: object | None = None) -> TokenService:
    return TokenService(issuer or signer(), cache=cache)  # type: ignore[arg-type]
