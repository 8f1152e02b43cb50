"""What RedisCache stores: JSON under hashed, namespaced keys, with PX expiry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import redis

from embedgate import (
    ConfigurationError,
    EmbedgateError,
    Engine,
    IssueRequest,
    ManualClock,
    verify,
)
from embedgate.cache import cache_key, session_tag
from embedgate.redis_cache import PREFIX, RedisCache, TieredCache, redis_key
from tests.redis.helpers import PRINCIPAL, SECRET, SESSION, SUBJECT, service, signer
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.redis


@pytest.fixture
def cache(redis_url: str) -> Iterator[RedisCache]:
    made = RedisCache.from_url(redis_url)
    yield made
    made.close()


def test_a_token_round_trips_as_json_under_a_hashed_namespaced_key(
    cache: RedisCache, raw: redis.Redis
) -> None:
    token = service(cache).get_token(PRINCIPAL, SESSION)

    keys = [k.decode() for k in raw.keys("*")]
    assert keys
    assert all(k.startswith(PREFIX) for k in keys)
    for k in keys:
        assert SESSION not in k
        assert SUBJECT not in k
        assert "acme" not in k
    token_keys = [k for k in keys if k.startswith(PREFIX + "token:")]
    assert len(token_keys) == 1
    stored = json.loads(raw.get(token_keys[0]))
    assert stored["token"] == token.token
    assert stored["subject"] == SUBJECT
    assert stored["session_tag"] == session_tag(SESSION)
    assert stored["refresh_at"] == token.refresh_at
    # A second service on the same Redis reads the very same token back.
    assert service(cache).get_token(PRINCIPAL, SESSION) == token


def test_every_key_expires_with_the_entry_deadline(cache: RedisCache, raw: redis.Redis) -> None:
    svc = service(cache)
    token = svc.get_token(PRINCIPAL, SESSION)
    deadline_ms = (token.expires_at - svc.timing.min_remaining - time.time()) * 1000
    keys = raw.keys("*")
    assert len(keys) == 3  # the token, its session index, its subject index
    for k in keys:
        assert 0 < raw.pttl(k) <= deadline_ms + 50


def test_px_expiry_removes_the_entry(cache: RedisCache, raw: redis.Redis) -> None:
    token = signer().issue(_request())
    cache.set("k", token, time.time() + 0.3)
    name = redis_key("token", "k")
    assert 0 < raw.pttl(name) <= 300
    assert cache.get("k") == token
    time.sleep(0.45)
    assert raw.exists(name) == 0
    assert cache.get("k") is None


def test_an_entry_past_its_deadline_is_not_written(cache: RedisCache, raw: redis.Redis) -> None:
    cache.set("k", signer().issue(_request()), time.time() - 1)
    assert raw.keys("*") == []


def test_an_unreadable_value_is_a_miss_and_gets_replaced(
    cache: RedisCache, raw: redis.Redis
) -> None:
    svc = service(cache)
    first = svc.get_token(PRINCIPAL, SESSION)
    (name,) = raw.keys(PREFIX + "token:*")
    raw.set(name, b"\x80not json")
    again = svc.get_token(PRINCIPAL, SESSION)
    assert again.jti != first.jti
    assert json.loads(raw.get(name))["token"] == again.token


def test_a_poisoned_entry_for_another_subject_is_never_served(
    cache: RedisCache, raw: redis.Redis
) -> None:
    svc = service(cache)
    mine = svc.get_token(PRINCIPAL, SESSION)
    (name,) = raw.keys(PREFIX + "token:*")
    forged = json.loads(raw.get(name))
    forged["subject"] = "mallory"
    raw.set(name, json.dumps(forged))
    served = svc.get_token(PRINCIPAL, SESSION)
    assert served.jti != mine.jti
    assert (
        verify(served.token, signer().keys, audience="analytics", issuer="embedgate-test")["sub"]
        == SUBJECT
    )


def test_invalidate_by_session_and_by_subject(cache: RedisCache, raw: redis.Redis) -> None:
    svc = service(cache)
    bob = PRINCIPAL.replace(subject="bob")
    svc.get_token(PRINCIPAL, "s1")
    svc.get_token(PRINCIPAL, "s1", resource="dash-2")
    svc.get_token(PRINCIPAL, "s2")
    svc.get_token(bob, "s3")
    assert len(raw.keys(PREFIX + "token:*")) == 4

    assert svc.invalidate_session("s1") == 2
    assert len(raw.keys(PREFIX + "token:*")) == 2
    assert svc.invalidate_session("s1") == 0

    assert svc.invalidate_subject(SUBJECT) == 1
    remaining = [json.loads(raw.get(k))["subject"] for k in raw.keys(PREFIX + "token:*")]
    assert remaining == ["bob"]


def test_invalidate_by_session_and_subject_together(cache: RedisCache) -> None:
    svc = service(cache)
    bob = PRINCIPAL.replace(subject="bob")
    svc.get_token(PRINCIPAL, "shared-session")
    svc.get_token(bob, "shared-session")
    assert cache.invalidate(session_tag=session_tag("shared-session"), subject="bob") == 1
    key = cache_key(
        session_id="shared-session",
        tenant="acme",
        subject=SUBJECT,
        claims_hash=PRINCIPAL.fingerprint(),
        scope=signer().cache_scope(),
        resource=None,
    )
    assert cache.get(key) is not None
    assert cache.invalidate() == 0


def test_the_index_of_a_busy_subject_keeps_only_live_entries(
    redis_url: str, raw: redis.Redis
) -> None:
    clock = ManualClock(start=time.time())
    cache = RedisCache.from_url(redis_url, clock=clock)
    token = signer().issue(_request())
    for i in range(5):
        cache.set(f"k{i}", token, clock.now() + 60)
    clock.advance(61)
    cache.set("fresh", token, clock.now() + 60)
    index = redis_key("subject", cache.codec.subject_tag(token.subject))
    assert raw.zcard(index) == 1
    cache.close()


def test_urls_other_than_redis_are_refused_without_echoing_them() -> None:
    with pytest.raises(ConfigurationError) as caught:
        RedisCache.from_url("http://user:hunter2@example.com:6379")
    assert caught.value.setting == "EMBEDGATE_REDIS_URL"
    assert "hunter2" not in str(caught.value)
    with pytest.raises(ConfigurationError) as caught:
        RedisCache.from_url("redis://:hunter2@127.0.0.1:6379/0?db=notanumber")
    assert "hunter2" not in str(caught.value)


def test_reprs_show_neither_password_nor_token(redis_url: str) -> None:
    url = redis_url.replace("redis://", "redis://:hunter2@")
    cache = RedisCache.from_url(url)
    assert "hunter2" not in repr(cache)
    cache.close()


def test_the_engine_uses_the_tiered_cache_for_embedgate_redis_url(
    redis_url: str, raw: redis.Redis
) -> None:
    settings = {"EMBEDGATE_SECRET": SECRET, "EMBEDGATE_REDIS_URL": redis_url}
    first, second = Engine.from_settings(settings), Engine.from_settings(settings)
    try:
        assert isinstance(first.service.cache, TieredCache)
        assert isinstance(second.service.cache, TieredCache)
        user = {"sub": "carol", "tenant": "acme"}
        token = first.token_for(user, SESSION)
        assert token is not None
        assert second.token_for(user, SESSION) == token
        assert len(raw.keys(PREFIX + "token:*")) == 1
        assert first.logout(SESSION) == 1
        # Another process hears of it through pub/sub: soon, not synchronously.
        local = second.service.cache.local
        deadline = time.monotonic() + 5
        while len(local) and time.monotonic() < deadline:
            time.sleep(0.01)
        again = second.token_for(user, SESSION)
        assert again is not None
        assert again.jti != token.jti
    finally:
        for engine in (first, second):
            assert isinstance(engine.service.cache, TieredCache)
            engine.service.cache.close()


def test_importing_without_redis_py_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['redis'] = None\n"
        "import embedgate\n"
        "from embedgate import EmbedgateError\n"
        "try:\n"
        "    import embedgate.redis_cache\n"
        "except EmbedgateError as error:\n"
        "    print(type(error).__name__, error)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
    )
    assert done.returncode == 0, done.stderr
    assert "ConfigurationError" in done.stdout
    assert "pip install embedgate[redis]" in done.stdout
    assert issubclass(ConfigurationError, EmbedgateError)


def _env() -> dict[str, str]:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return {**os.environ, "PYTHONPATH": os.path.join(root, "src")}


def _request() -> IssueRequest:
    return IssueRequest(principal=PRINCIPAL, now=time.time(), ttl=300)


def test_a_unix_socket_url_reaches_the_same_server(
    redis_server: RedisServer, redis_url: str
) -> None:
    over_tcp = RedisCache.from_url(redis_url)
    over_unix = RedisCache.from_url(redis_server.unix_url)
    token = service(over_tcp).get_token(PRINCIPAL, SESSION)
    assert service(over_unix).get_token(PRINCIPAL, SESSION) == token
    over_tcp.close()
    over_unix.close()


def test_clients_can_be_passed_in(redis_url: str) -> None:
    # As with Sentinel's master_for() or a RedisCluster: the cache takes clients as given.
    client = redis.Redis.from_url(redis_url, socket_timeout=0.25)
    token = service(RedisCache(client)).get_token(PRINCIPAL, SESSION)
    assert service(RedisCache(client)).get_token(PRINCIPAL, SESSION) == token
    client.close()


def test_a_cache_without_a_sync_client_says_so(redis_url: str) -> None:
    import redis.asyncio

    cache = RedisCache(async_client=redis.asyncio.Redis.from_url(redis_url))
    with pytest.raises(ConfigurationError, match="no sync client"):
        cache.get("k")
    with pytest.raises(ConfigurationError, match="needs a Redis client"):
        RedisCache()
