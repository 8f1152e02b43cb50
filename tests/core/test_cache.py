"""Cache keys (typed digests) and the in-process MemoryCache (deadlines, LRU, purge)."""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import anyio
import pytest
from cachetools.keys import hashkey

from embedgate import EmbedToken, ManualClock, MemoryCache
from embedgate.cache import cache_key, session_tag

BASE: dict[str, Any] = {
    "session_id": "s-1",
    "tenant": "acme",
    "subject": "alice",
    "claims_hash": "c0ffee",
    "scope": "generic|iss|aud|kid-1",
    "resource": None,
}


def _token(
    subject: str = "alice", *, expires_at: float, tag: str = "", text: str = "tok"
) -> EmbedToken:
    return EmbedToken(
        token=text, expires_at=expires_at, issued_at=expires_at - 300, subject=subject,
        session_tag=tag,
    )  # fmt: skip


# -- cache keys ----------------------------------------------------------------------------


def test_cache_key_is_a_deterministic_opaque_digest() -> None:
    key = cache_key(**BASE)
    assert key == cache_key(**BASE)
    assert len(key) == 64
    assert int(key, 16) >= 0
    assert "alice" not in key
    assert "s-1" not in key


@pytest.mark.parametrize(
    "change",
    [
        {"session_id": "s-2"},
        {"tenant": "globex"},
        {"tenant": None},
        {"subject": "bob"},
        {"claims_hash": "c0ffef"},
        {"scope": "generic|iss|aud|kid-2"},  # the key id rotated
        {"scope": "generic|iss|other-aud|kid-1"},  # another audience
        {"resource": "dashboard-1"},
        {"resource": ""},
    ],
)
def test_cache_key_changes_with_every_input(change: dict[str, Any]) -> None:
    assert cache_key(**{**BASE, **change}) != cache_key(**BASE)


@pytest.mark.parametrize("field_name", ["session_id", "tenant", "subject", "resource"])
def test_values_python_thinks_equal_never_share_a_key(field_name: str) -> None:
    # The pitfall this guards against: cachetools' own keys collide.
    assert hashkey(1) == hashkey(True) == hashkey(1.0)
    keys = {cache_key(**{**BASE, field_name: value}) for value in (1, True, 1.0, "1")}
    assert len(keys) == 4


def test_inputs_cannot_be_shifted_between_fields() -> None:
    shifted = cache_key(**{**BASE, "session_id": "s-1|acme", "tenant": "x"})
    other = cache_key(**{**BASE, "session_id": "s-1", "tenant": "acme|x"})
    assert shifted != other
    assert cache_key(**{**BASE, "tenant": None}) != cache_key(**{**BASE, "tenant": "None"})
    assert cache_key(**{**BASE, "tenant": None}) != cache_key(**{**BASE, "tenant": "null"})


def test_cache_key_format_is_pinned() -> None:
    """Processes sharing a cache must agree on keys: a format change needs a new version."""
    text = "v2|s3:s-1|s4:acme|s5:alice|s6:c0ffee|s21:generic|iss|aud|kid-1|n"
    assert cache_key(**BASE) == hashlib.sha256(text.encode()).hexdigest()
    typed = "v2|j1:1|j4:true|j3:1.0|s6:c0ffee|s21:generic|iss|aud|kid-1|s1:1"
    odd: dict[str, Any] = {"session_id": 1, "tenant": True, "subject": 1.0, "resource": "1"}
    assert cache_key(**{**BASE, **odd}) == hashlib.sha256(typed.encode()).hexdigest()


class TaggedStr(str):
    """A str subclass (like markupsafe.Markup): equal text, equal key."""


def test_string_subclasses_and_plain_strings_share_a_key() -> None:
    # The fast path (plain str) and the general path (anything else) encode alike.
    assert cache_key(**{**BASE, "session_id": TaggedStr("s-1")}) == cache_key(**BASE)
    assert cache_key(**{**BASE, "tenant": TaggedStr("acme")}) == cache_key(**BASE)


def test_lone_surrogates_from_json_claims_still_hash() -> None:
    key = cache_key(**{**BASE, "subject": "\ud800", "session_id": "\udfff"})
    assert len(key) == 64
    assert key != cache_key(**{**BASE, "subject": "\udfff", "session_id": "\ud800"})


def test_session_tag_hides_the_session_id() -> None:
    assert session_tag("abc") == session_tag("abc") != session_tag("abd")
    assert "abc" not in session_tag("abc")


# -- MemoryCache ---------------------------------------------------------------------------


def test_entry_lives_until_its_deadline(clock: ManualClock) -> None:
    cache = MemoryCache(clock=clock)
    now = clock.now()
    token = _token(expires_at=now + 300)
    cache.set("k", token, deadline=now + 270)  # expires_at - min_remaining
    clock.advance(269.9)
    assert cache.get("k") is token
    clock.advance(0.1)  # exactly the deadline
    assert cache.get("k") is None
    assert len(cache) == 0


def test_setting_a_key_again_replaces_it_and_makes_it_recent(clock: ManualClock) -> None:
    cache = MemoryCache(maxsize=2, clock=clock)
    far = clock.now() + 300
    cache.set("a", _token(expires_at=far, text="a1"), far)
    cache.set("b", _token(expires_at=far, text="b"), far)
    cache.set("a", _token(expires_at=far, text="a2"), far)
    cache.set("c", _token(expires_at=far, text="c"), far)  # evicts b, the least recent
    got = cache.get("a")
    assert got is not None
    assert got.token == "a2"
    assert cache.get("b") is None
    assert len(cache) == 2


def test_maxsize_must_be_positive() -> None:
    with pytest.raises(ValueError, match="maxsize"):
        MemoryCache(maxsize=0)


def test_clear_empties_the_cache(clock: ManualClock) -> None:
    cache = MemoryCache(clock=clock)
    far = clock.now() + 300
    cache.set("a", _token(expires_at=far), far)
    cache.clear()
    assert cache.get("a") is None
    assert len(cache) == 0


def test_entry_past_its_deadline_is_not_stored(clock: ManualClock) -> None:
    cache = MemoryCache(clock=clock)
    cache.set("k", _token(expires_at=clock.now() + 10), deadline=clock.now() - 1)
    assert cache.get("k") is None


def test_cache_is_a_bounded_lru(clock: ManualClock) -> None:
    cache = MemoryCache(maxsize=3, clock=clock)
    far = clock.now() + 300
    for name in ("a", "b", "c"):
        cache.set(name, _token(expires_at=far, text=name), far)
    assert cache.get("a") is not None  # "a" is now the most recently used
    cache.set("d", _token(expires_at=far, text="d"), far)
    assert len(cache) == 3
    assert cache.get("b") is None  # the least recently used went
    assert [cache.get(k) is not None for k in ("a", "c", "d")] == [True, True, True]


def test_invalidate_by_session_by_subject_or_both(clock: ManualClock) -> None:
    cache = MemoryCache(clock=clock)
    far = clock.now() + 300
    cache.set("a1", _token("alice", expires_at=far, tag="s1"), far)
    cache.set("a2", _token("alice", expires_at=far, tag="s2"), far)
    cache.set("b1", _token("bob", expires_at=far, tag="s1"), far)
    cache.set("b3", _token("bob", expires_at=far, tag="s3"), far)
    assert cache.invalidate() == 0  # no filter: nothing, never everything
    assert cache.invalidate(session_tag="s1", subject="alice") == 1
    assert cache.get("b1") is not None
    assert cache.invalidate(session_tag="s1") == 1
    assert cache.invalidate(subject="bob") == 1
    assert cache.invalidate(subject="carol") == 0
    assert cache.get("a2") is not None
    assert len(cache) == 1


def test_concurrent_use_from_threads_stays_consistent(clock: ManualClock) -> None:
    cache = MemoryCache(maxsize=50, clock=clock)
    far = clock.now() + 300
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def worker(n: int) -> None:
        try:
            start.wait()
            for i in range(1500):
                key = f"k{(n * 7 + i) % 120}"
                cache.set(key, _token(f"u{n}", expires_at=far, tag=f"s{n}"), far)
                got = cache.get(key)
                assert got is None or got.expires_at == far
                if i % 100 == 0:
                    cache.invalidate(subject=f"u{(n + 1) % 8}")
        except BaseException as exc:  # collected and re-raised by the test
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assert 0 < len(cache) <= 50


def test_async_face_matches_the_sync_one(clock: ManualClock) -> None:
    cache = MemoryCache(clock=clock)
    far = clock.now() + 300

    async def scenario() -> None:
        await cache.aset("k", _token(expires_at=far, tag="s"), far)
        got = await cache.aget("k")
        assert got is not None
        assert got.subject == "alice"
        async with cache.aexclusive("k") as ours:
            assert ours is True
        assert await cache.ainvalidate(session_tag="s") == 1
        assert await cache.aget("k") is None

    anyio.run(scenario)


def test_reprs_show_no_token(clock: ManualClock) -> None:
    cache = MemoryCache(clock=clock)
    token = EmbedToken(
        token="eyJhbGciOi.secret-token.sig", expires_at=clock.now() + 300,
        issued_at=clock.now(), subject="alice", url="https://x/embed/eyJhbGciOi.secret-token.sig",
        session_tag="tag-secret",
    )  # fmt: skip
    cache.set("k", token, clock.now() + 270)
    assert "secret-token" not in repr(cache)
    assert "secret-token" not in repr(token)
    assert "tag-secret" not in repr(token)
    assert repr(cache) == "MemoryCache(entries=1, maxsize=10000)"


def test_token_round_trips_through_json_for_shared_caches() -> None:
    token = EmbedToken(
        token="t", expires_at=1.5, issued_at=0.5, subject="alice", jti="j", kid="k",
        url=None, refresh_at=1.2, session_tag="tag",
    )  # fmt: skip
    assert EmbedToken.from_json(token.to_json()) == token


def test_token_payload_for_the_endpoint() -> None:
    token = EmbedToken(
        token="t", expires_at=1300.9, issued_at=1000.0, subject="a", refresh_at=1240.5
    )
    assert token.payload(1000.2) == {
        "token": "t", "expires_at": 1300, "expires_in": 300, "refresh_in": 240,
        "server_time": 1000,
    }  # fmt: skip
    # Never a refresh delay below one second, never a negative expiry.
    assert token.payload(1299.0)["refresh_in"] == 1.0
    assert token.payload(1400.0)["expires_in"] == 0
