"""What a reader of the shared Redis learns, read raw from a real redis-server: no live
token, no subject and no session id in any key, value or invalidation message (values
are AES-GCM sealed with a key derived from the engine, subjects keyed-hashed), and an entry
copied under another user's key is not served to that user."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from embedgate import Engine, Principal
from embedgate.redis_cache.keys import CHANNEL, PREFIX, redis_key
from tests.conftest import TEST_SECRET
from tests.support.binaries import require_binary
from tests.support.redis_server import RedisServer

SUBJECT = "alice.secret-subject@example.com"
SESSION = "session-Zq8vJ3xK0pLmT7wR2nB5yC9dF4gH6jA1"
ALICE = Principal(subject=SUBJECT, tenant="acme")


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer(require_binary("redis-server")) as server:
        yield server


@pytest.fixture
def raw(redis_server: RedisServer) -> Iterator[redis.Redis]:
    with redis_server.client() as client:
        client.flushall()
        yield client


def engine(url: str, **settings: Any) -> Engine:
    return Engine.from_settings(environ={}, secret=TEST_SECRET, redis_url=url, **settings)


def everything(raw: redis.Redis) -> bytes:
    """Every key and every value Redis holds, as bytes."""
    out = b""
    for key in raw.keys("*"):
        out += key + b"\n"
        kind = raw.type(key)
        if kind == b"string":
            out += raw.get(key) or b""
        elif kind == b"zset":
            out += b" ".join(raw.zrange(key, 0, -1))
        out += b"\n"
    return out


def close(*engines: Engine) -> None:
    for e in engines:
        e.service.cache.close()  # type: ignore[attr-defined]


def test_redis_holds_no_token_subject_or_session_id(
    redis_server: RedisServer, raw: redis.Redis
) -> None:
    e = engine(redis_server.url)
    token = e.service.get_token(ALICE, SESSION)
    stored = everything(raw)
    assert raw.keys(PREFIX + "token:*"), "the token was cached in Redis"
    for secret in (token.token, SUBJECT, SESSION, token.jti or "<none>"):
        assert secret.encode() not in stored, secret
    # the subject's index name is a keyed hash: not the plain digest anyone can compute
    plain = hashlib.sha256(b"embedgate subject\x00" + SUBJECT.encode()).hexdigest().encode()
    assert plain not in stored
    # still a working cache: another worker reads it
    other = engine(redis_server.url)
    assert other.service.get_token(ALICE, SESSION).token == token.token
    close(e, other)


def test_invalidation_messages_never_carry_the_subject(
    redis_server: RedisServer, raw: redis.Redis
) -> None:
    first, second = engine(redis_server.url), engine(redis_server.url)
    token = first.service.get_token(ALICE, SESSION)
    assert second.service.get_token(ALICE, SESSION).token == token.token  # in its local tier
    seen: list[bytes] = []
    pubsub = raw.pubsub()
    pubsub.subscribe(CHANNEL)
    pubsub.get_message(timeout=5)  # the subscribe confirmation

    def listen() -> None:
        message = pubsub.get_message(timeout=10)
        while message is not None and message["type"] != "message":
            message = pubsub.get_message(timeout=10)
        if message is not None:
            seen.append(message["data"])

    listener = threading.Thread(target=listen)
    listener.start()
    first.service.invalidate_subject(SUBJECT)
    listener.join(timeout=15)
    pubsub.close()
    assert seen, "an invalidation message was published"
    assert SUBJECT.encode() not in seen[0]
    # the other worker still dropped its local copy (matched by the keyed hash)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        again = second.service.get_token(ALICE, SESSION)
        if again.token != token.token:
            break
        time.sleep(0.05)
    assert again.token != token.token
    close(first, second)


def test_an_entry_copied_under_another_key_is_not_served(
    redis_server: RedisServer, raw: redis.Redis
) -> None:
    """Alice's token of one session, planted under the key of another session's token, is
    not served to that session (the sealed value is bound to the key it was stored under)."""
    e = engine(redis_server.url)
    other_session = "session-Lq7Rw2Xz9Kp4Vn8Mb3Jc6Hd1Gf5Ts0Ya"
    e.service.get_token(ALICE, other_session)
    (victim_key,) = raw.keys(PREFIX + "token:*")
    planted_token = e.service.get_token(ALICE, SESSION)
    source_key = next(k for k in raw.keys(PREFIX + "token:*") if k != victim_key)
    raw.set(victim_key, raw.get(source_key), px=raw.pttl(source_key))
    fresh = engine(redis_server.url)  # an empty local tier: it reads Redis
    served = fresh.service.get_token(ALICE, other_session)
    assert served.token != planted_token.token
    close(e, fresh)


def test_encryption_can_be_turned_off_but_subjects_stay_hashed(
    redis_server: RedisServer, raw: redis.Redis
) -> None:
    e = engine(redis_server.url, redis_encrypt=False)
    token = e.service.get_token(ALICE, SESSION)
    stored = everything(raw)
    assert token.token.encode() in stored  # documented: plain values when turned off
    keys = raw.keys("*")
    assert not any(SUBJECT.encode() in key for key in keys)
    # nor the unkeyed digest a reader could compute from a guessed subject
    assert redis_key("subject", SUBJECT).encode() not in keys
    close(e)
