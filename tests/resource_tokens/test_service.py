"""TokenService.holds / aholds: which resources a session may have refreshed. Read-only (never
mints), per session and per user, gone with the cache entry, and kept for single-use
credentials (Looker URLs) by a grant marker that holds no credential."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from embedgate import Engine, IssueRequest, ManualClock, MemoryCache
from embedgate.redis_cache import RedisCache
from embedgate.token import EmbedToken
from tests.resource_tokens.conftest import (
    ALICE,
    build,
    looker_settings,
    metabase_settings,
    principal_of,
)
from tests.support.binaries import require_binary
from tests.support.redis_server import RedisServer

BOB = {"sub": "bob", "email": "bob@example.com"}
DASHBOARD = "dashboard:42"


class Counting:
    """The engine's real issuer, counting its issuances."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.issued = 0
        self.name = inner.name

    def cache_scope(self) -> str:
        scope: str = self.inner.cache_scope()
        return scope

    def issue(self, request: IssueRequest) -> EmbedToken:
        self.issued += 1
        token: EmbedToken = self.inner.issue(request)
        return token

    async def aissue(self, request: IssueRequest) -> EmbedToken:
        return self.issue(request)

    def jwks(self) -> Any:
        return self.inner.jwks()


def counted(engine: Engine) -> Counting:
    issuer = Counting(engine.service.issuer)
    engine.service.issuer = issuer
    return issuer


def test_a_resource_is_held_once_the_page_got_its_token_and_holds_never_mints(
    clock: ManualClock,
) -> None:
    engine = build(metabase_settings(ttl="300", min_remaining="30"), clock)
    issuer = counted(engine)
    alice = principal_of(engine)
    service = engine.service
    assert not service.holds(alice, "s1", DASHBOARD)
    assert issuer.issued == 0  # asking minted nothing
    service.get_token(alice, "s1", DASHBOARD)  # the page rendered the embed
    assert issuer.issued == 1
    assert service.holds(alice, "s1", DASHBOARD)
    assert not service.holds(alice, "s1", "dashboard:43")  # another dashboard
    assert not service.holds(alice, "s2", DASHBOARD)  # another session
    assert not service.holds(principal_of(engine, BOB), "s1", DASHBOARD)  # another user
    assert issuer.issued == 1


def test_the_grant_lasts_as_long_as_the_cache_entry(clock: ManualClock) -> None:
    engine = build(metabase_settings(ttl="300", min_remaining="30"), clock)
    alice = principal_of(engine)
    engine.service.get_token(alice, "s1", DASHBOARD)
    clock.advance(300 - 30 - 1)  # refresh is due, the token still servable
    assert engine.service.holds(alice, "s1", DASHBOARD)
    engine.service.get_token(alice, "s1", DASHBOARD)  # the endpoint's refresh, beside it
    assert engine.service.wait_idle()
    refreshed = engine.service.get_token(alice, "s1", DASHBOARD)
    clock.advance(2)  # past the first token's deadline, within the new one's
    assert engine.service.holds(alice, "s1", DASHBOARD)
    clock.advance(refreshed.expires_at - clock.now())
    assert not engine.service.holds(alice, "s1", DASHBOARD)


def test_logout_and_a_privilege_change_end_the_grant(clock: ManualClock) -> None:
    engine = build(metabase_settings(), clock)
    alice = principal_of(engine)
    engine.service.get_token(alice, "s1", DASHBOARD)
    engine.service.get_token(alice, "s2", DASHBOARD)
    engine.logout("s1")
    assert not engine.service.holds(alice, "s1", DASHBOARD)
    assert engine.service.holds(alice, "s2", DASHBOARD)
    engine.service.invalidate_subject("alice")
    assert not engine.service.holds(alice, "s2", DASHBOARD)


def test_single_use_urls_are_not_cached_but_their_grant_is(clock: ManualClock) -> None:
    cache = MemoryCache(clock=clock)
    engine = build(looker_settings(looker_session_length="600"), clock, cache=cache)
    issuer = counted(engine)
    alice = principal_of(engine)
    first = engine.service.get_token(alice, "s1", DASHBOARD)
    assert first.single_use
    assert first.url
    assert engine.service.holds(alice, "s1", DASHBOARD)
    assert not engine.service.holds(alice, "s2", DASHBOARD)
    # The marker is the only entry, and it holds no credential.
    assert len(cache) == 1
    (marker, _) = next(iter(cache._entries.values()))
    assert (marker.token, marker.url, marker.subject) == ("", None, "alice")
    # A refresh is a new one-time URL (never a cached one).
    second = engine.service.get_token(alice, "s1", DASHBOARD)
    assert second.url != first.url
    assert issuer.issued == 2
    # The grant ends with the Looker session the URL opened, or at logout.
    clock.advance(599)
    assert engine.service.holds(alice, "s1", DASHBOARD)
    clock.advance(2)
    assert not engine.service.holds(alice, "s1", DASHBOARD)
    engine.service.get_token(alice, "s1", DASHBOARD)
    engine.logout("s1")
    assert not engine.service.holds(alice, "s1", DASHBOARD)


def test_the_async_twin_answers_the_same(clock: ManualClock) -> None:
    async def scenario() -> list[bool]:
        answers = []
        for settings in (metabase_settings(), looker_settings()):
            engine = build(settings, clock)
            issuer = counted(engine)
            alice = principal_of(engine)
            answers.append(await engine.service.aholds(alice, "s1", DASHBOARD))
            await engine.service.aget_token(alice, "s1", DASHBOARD)
            answers.append(await engine.service.aholds(alice, "s1", DASHBOARD))
            answers.append(await engine.service.aholds(alice, "s2", DASHBOARD))
            answers.append(issuer.issued == 1)
        return answers

    assert anyio.run(scenario) == [False, True, False, True] * 2


@pytest.fixture
def redis_url() -> Iterator[str]:
    with RedisServer(require_binary("redis-server")) as server:
        yield server.url


@pytest.mark.redis
@pytest.mark.parametrize("settings", [metabase_settings(), looker_settings()], ids=["mb", "lk"])
def test_a_grant_made_by_one_worker_is_seen_by_another(
    redis_url: str, settings: dict[str, str]
) -> None:
    """The page is rendered by one process, the refresh may reach another: the grant
    (token or marker) lives in the shared cache."""
    caches = [RedisCache.from_url(redis_url), RedisCache.from_url(redis_url)]
    try:
        page_worker, endpoint_worker = (build(settings, cache=c) for c in caches)
        page_worker.service.get_token(principal_of(page_worker), "s1", DASHBOARD)
        alice = principal_of(endpoint_worker, ALICE)
        assert endpoint_worker.service.holds(alice, "s1", DASHBOARD)
        assert not endpoint_worker.service.holds(alice, "s2", DASHBOARD)
        assert anyio.run(endpoint_worker.service.aholds, alice, "s1", DASHBOARD)
        endpoint_worker.logout("s1")
        assert not page_worker.service.holds(principal_of(page_worker), "s1", DASHBOARD)
    finally:
        for cache in caches:
            cache.close()
