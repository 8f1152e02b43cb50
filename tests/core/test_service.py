"""TokenService: per-session caching, refresh timing, invalidation, the subject check and
the fallback when the issuer fails."""

from __future__ import annotations

import logging
import math
import random
import time
from typing import Any

import anyio
import jwt
import pytest

from embedgate import (
    AttributePolicy,
    ConfigurationError,
    EmbedToken,
    IssuerError,
    KeySet,
    ManualClock,
    MemoryCache,
    Principal,
    PrincipalError,
    TokenService,
    TokenTiming,
    TokenTooLargeError,
    verify,
)
from embedgate.cache import cache_key
from tests.core.conftest import AUDIENCE, ISSUER, signing_key
from tests.core.issuers import CountingSigner, DictCache, provider_down


class FixedRandom(random.Random):
    """A Random whose ``random()`` is a chosen value (the jitter's extremes)."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def random(self) -> float:
        return self.value


@pytest.fixture
def now_clock() -> ManualClock:
    """A manual clock starting at the real time, so verify() accepts fresh tokens."""
    return ManualClock(start=float(int(time.time())))


def _service(clock: ManualClock, **kwargs: Any) -> tuple[TokenService, CountingSigner]:
    signer = kwargs.pop("signer", None) or CountingSigner()
    return TokenService(signer, clock=clock, **kwargs), signer


def _claims(token: EmbedToken) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token.token, options={"verify_signature": False})
    return claims


# -- caching -------------------------------------------------------------------------------


def test_second_call_is_served_from_the_cache(now_clock: ManualClock, alice: Principal) -> None:
    service, signer = _service(now_clock)
    first = service.get_token(alice, "session-1")
    now_clock.advance(100)
    second = service.get_token(alice, "session-1")
    assert second.token == first.token
    assert signer.calls == 1
    assert verify(first.token, signer.keys, audience=AUDIENCE, issuer=ISSUER)["sub"] == "alice"


def test_a_fresh_principal_object_with_the_same_claims_hits(
    clock: ManualClock, alice: Principal
) -> None:
    service, signer = _service(clock)
    first = service.get_token(alice, "s")
    rebuilt = Principal.from_mapping(alice.to_dict())  # what each request does
    assert service.get_token(rebuilt, "s").token == first.token
    assert signer.calls == 1


def test_sessions_and_users_never_share_a_token(now_clock: ManualClock, alice: Principal) -> None:
    service, signer = _service(now_clock)
    bob = Principal(subject="bob", tenant="acme")
    tokens = {
        ("alice", "s1"): service.get_token(alice, "s1"),
        ("alice", "s2"): service.get_token(alice, "s2"),
        ("bob", "s1"): service.get_token(bob, "s1"),  # same session id, other user
        ("bob", "s2"): service.get_token(bob, "s2"),
    }
    assert len({t.token for t in tokens.values()}) == 4
    assert signer.calls == 4
    for (subject, _session), token in tokens.items():
        assert token.subject == subject
        assert verify(token.token, signer.keys, audience=AUDIENCE, issuer=ISSUER)["sub"] == subject
    # And each is served again to its own user only.
    assert service.get_token(bob, "s1").token == tokens[("bob", "s1")].token
    assert signer.calls == 4


def test_attribute_values_python_thinks_equal_get_their_own_tokens(clock: ManualClock) -> None:
    service, signer = _service(clock)
    values: list[Any] = [1, True, 1.0, "1"]
    tokens = [service.get_token(Principal("alice", attributes={"flag": v}), "s") for v in values]
    assert signer.calls == 4
    assert [_claims(t)["attributes"]["flag"] for t in tokens] == values
    assert [type(_claims(t)["attributes"]["flag"]) for t in tokens] == [int, bool, float, str]
    again = [service.get_token(Principal("alice", attributes={"flag": v}), "s") for v in values]
    assert [t.token for t in again] == [t.token for t in tokens]
    assert signer.calls == 4


def test_lone_surrogates_in_claims_do_not_break_issuing(clock: ManualClock) -> None:
    # json.loads accepts "\\ud800": an IdP can send it; it must not crash the cache key.
    service, _ = _service(clock)
    odd = Principal("alice", attributes={"nick": "\ud800"})
    token = service.get_token(odd, "s")
    assert _claims(token)["attributes"] == {"nick": "\ud800"}
    assert service.get_token(odd, "s").token == token.token


@pytest.mark.parametrize("session_id", [1, True, 1.0, None, "", b"s"])
def test_session_id_must_be_a_non_empty_string(clock: ManualClock, session_id: Any) -> None:
    service, signer = _service(clock)
    with pytest.raises(PrincipalError) as caught:
        service.get_token(Principal("alice"), session_id)
    assert caught.value.field == "session"
    assert signer.calls == 0


def test_changing_an_attribute_or_the_tenant_gives_a_new_token(
    clock: ManualClock, alice: Principal
) -> None:
    service, signer = _service(clock)
    first = service.get_token(alice, "s")
    moved = service.get_token(alice.replace(attributes={**alice.attributes, "region": "US"}), "s")
    other_tenant = service.get_token(alice.replace(tenant="globex"), "s")
    assert signer.calls == 3
    assert _claims(moved)["attributes"]["region"] == "US"
    assert _claims(other_tenant)["tenant"] == "globex"
    assert first.token not in (moved.token, other_tenant.token)


def test_resource_is_part_of_the_key(clock: ManualClock, alice: Principal) -> None:
    service, signer = _service(clock)
    one = service.get_token(alice, "s", "dashboard-1")
    two = service.get_token(alice, "s", "dashboard-2")
    none = service.get_token(alice, "s")
    assert signer.calls == 3
    assert (_claims(one)["resource"], _claims(two)["resource"]) == ("dashboard-1", "dashboard-2")
    assert "resource" not in _claims(none)
    assert service.get_token(alice, "s", "dashboard-1").token == one.token


def test_rotating_the_key_gives_a_new_token(clock: ManualClock, alice: Principal) -> None:
    shared = MemoryCache(clock=clock)  # e.g. Redis shared by the old and the new deployment
    old_key = signing_key("ES256", kid="2024-01")
    old = TokenService(CountingSigner(KeySet([old_key])), cache=shared, clock=clock)
    before = old.get_token(alice, "s")
    rotated_keys = KeySet(
        [signing_key("ES256", kid="2024-01", active=False), signing_key("EdDSA", kid="2024-02")]
    )
    new = TokenService(CountingSigner(rotated_keys), cache=shared, clock=clock)
    after = new.get_token(alice, "s")
    assert (before.kid, after.kid) == ("2024-01", "2024-02")
    assert jwt.get_unverified_header(after.token)["kid"] == "2024-02"
    assert old.get_token(alice, "s").token == before.token  # both live side by side


def test_another_audience_gives_a_new_token(clock: ManualClock, alice: Principal) -> None:
    shared = MemoryCache(clock=clock)
    first = TokenService(CountingSigner(), cache=shared, clock=clock).get_token(alice, "s")
    other = TokenService(CountingSigner(audience="other"), cache=shared, clock=clock)
    assert _claims(other.get_token(alice, "s"))["aud"] == "other"
    assert _claims(first)["aud"] == AUDIENCE


def test_policy_applies_before_the_cache_and_the_token(
    clock: ManualClock, alice: Principal
) -> None:
    policy = AttributePolicy(allowed=frozenset({"region"}), required=frozenset({"tenant"}))
    service, _ = _service(clock, policy=policy)
    token = service.get_token(alice, "s")
    assert _claims(token)["attributes"] == {"region": "EU"}
    # The dropped attributes are not in the key either: changing them hits the cache.
    changed = alice.replace(attributes={**alice.attributes, "level": 99})
    assert service.get_token(changed, "s").token == token.token
    with pytest.raises(PrincipalError) as caught:
        service.get_token(alice.replace(tenant=None), "s")
    assert caught.value.field == "tenant"


def test_too_large_token_is_refused_and_not_cached(clock: ManualClock) -> None:
    service, signer = _service(clock)
    big = Principal("alice", attributes={f"attr{i}": "v" * 100 for i in range(40)})
    with pytest.raises(TokenTooLargeError):
        service.get_token(big, "s")
    with pytest.raises(TokenTooLargeError):
        service.get_token(big, "s")
    assert signer.calls == 2
    assert len(service.cache) == 0  # type: ignore[arg-type]


def test_single_use_credentials_are_never_cached(clock: ManualClock, alice: Principal) -> None:
    service, signer = _service(clock, signer=CountingSigner(single_use=True))
    first = service.get_token(alice, "s")
    second = service.get_token(alice, "s")
    assert first.token != second.token
    assert signer.calls == 2
    assert len(service.cache) == 0  # type: ignore[arg-type]


# -- the subject check ---------------------------------------------------------------------


def _key_for(service: TokenService, principal: Principal, session_id: str) -> str:
    return cache_key(
        session_id=session_id,
        tenant=principal.tenant,
        subject=principal.subject,
        claims_hash=principal.fingerprint(),
        scope=service.issuer.cache_scope(),
        resource=None,
    )


def test_a_poisoned_entry_for_another_subject_is_never_served(
    now_clock: ManualClock, alice: Principal
) -> None:
    service, signer = _service(now_clock)
    mallory = service.get_token(Principal("mallory"), "m-session")
    # Someone with write access to the shared cache files mallory's token under alice's key.
    service.cache.set(_key_for(service, alice, "s"), mallory, mallory.expires_at)
    served = service.get_token(alice, "s")
    assert served.subject == "alice"
    assert verify(served.token, signer.keys, audience=AUDIENCE, issuer=ISSUER)["sub"] == "alice"
    assert served.token != mallory.token
    assert signer.calls == 2


class PoisonedCache(MemoryCache):
    """A backend that answers every read with someone else's token."""

    def __init__(self, planted: EmbedToken, clock: ManualClock) -> None:
        super().__init__(clock=clock)
        self.planted = planted

    def get(self, key: str) -> EmbedToken | None:
        return self.planted


def test_a_backend_returning_foreign_tokens_cannot_leak_them(
    clock: ManualClock, alice: Principal
) -> None:
    planted = EmbedToken(
        token="mallorys-token", expires_at=clock.now() + 300, issued_at=clock.now(),
        subject="mallory", refresh_at=clock.now() + 240,
    )  # fmt: skip
    service, signer = _service(clock, cache=PoisonedCache(planted, clock))
    for _ in range(3):
        assert service.get_token(alice, "s").subject == "alice"
    assert signer.calls == 3


def test_an_issuer_answering_for_another_subject_is_an_error(clock: ManualClock) -> None:
    class Confused(CountingSigner):
        def issue(self, request: Any) -> EmbedToken:
            token = super().issue(request)
            return EmbedToken(token.token, token.expires_at, token.issued_at, "someone-else")

    service, _ = _service(clock, signer=Confused())
    with pytest.raises(IssuerError) as caught:
        service.get_token(Principal("alice"), "s")
    assert caught.value.code == "subject_mismatch"


# -- expiry and refresh --------------------------------------------------------------------


def test_token_is_refreshed_at_refresh_at_and_not_before(
    clock: ManualClock, alice: Principal
) -> None:
    service, signer = _service(clock)
    first = service.get_token(alice, "s")
    assert first.expires_at == clock.now() + 300
    assert first.expires_at - 66 <= first.refresh_at <= first.expires_at - 60
    clock.set(first.refresh_at - 0.5)
    assert service.get_token(alice, "s").token == first.token
    clock.set(first.refresh_at)
    # Due: still served at once, the refresh runs beside the call.
    assert service.get_token(alice, "s").token == first.token
    assert service.wait_idle()
    second = service.get_token(alice, "s")
    assert second.token != first.token
    assert second.expires_at == math.floor(clock.now()) + 300  # iat is whole seconds
    assert signer.calls == 2


def test_a_token_is_never_served_with_less_than_min_remaining(
    clock: ManualClock, alice: Principal
) -> None:
    # DictCache keeps entries past their deadline: the service's own check must hold.
    service, _ = _service(clock, cache=DictCache())
    first = service.get_token(alice, "s")
    clock.set(first.expires_at - 29)  # 29 s left, min_remaining is 30
    second = service.get_token(alice, "s")
    assert second.token != first.token
    assert second.remaining(clock.now()) == 300


@pytest.mark.parametrize(
    ("ttl", "min_remaining", "margin"),
    [(60, 30, None), (60, 59, None), (31, 30, None), (300, 30, None), (3600, 30, None),
     (300, 250, None), (120, 30, 31.0), (120, 30, 119.0), (3600, 3000, 3100.0)],
)  # fmt: skip
@pytest.mark.parametrize("jitter", [0.0, 0.5, 0.999999])
def test_the_refresh_point_always_falls_while_the_token_is_served(
    ttl: int, min_remaining: int, margin: float | None, jitter: float
) -> None:
    # A short TTL once put the refresh point after the token stopped being served: the
    # margin was capped at 45 % of the lifetime, below min_remaining.
    timing = TokenTiming(ttl=ttl, min_remaining=min_remaining, refresh_margin=margin)
    for lifetime in (ttl, (ttl + min_remaining) / 2, min_remaining + 1):
        got = timing.margin(lifetime, FixedRandom(jitter))
        assert min_remaining < got < lifetime


def test_a_short_ttl_is_refreshed_beside_requests_while_served(
    clock: ManualClock, alice: Principal
) -> None:
    timing = TokenTiming(ttl=60, min_remaining=30)
    service, signer = _service(clock, cache=DictCache(), timing=timing, rng=FixedRandom(0.0))
    first = service.get_token(alice, "s")
    assert first.expires_at - 60 < first.refresh_at < first.expires_at - 30
    clock.set(first.refresh_at + 0.5)
    assert service.get_token(alice, "s").token == first.token  # served, refreshed beside
    assert service.wait_idle()
    assert signer.calls == 2
    assert service.get_token(alice, "s").token != first.token
    assert signer.calls == 2


def test_fallback_never_serves_less_than_min_remaining(
    clock: ManualClock, alice: Principal
) -> None:
    service, signer = _service(clock, cache=DictCache())  # keeps entries past the deadline
    first = service.get_token(alice, "s")
    signer.failure = provider_down()
    clock.set(first.expires_at - 31)
    assert service.get_token(alice, "s").token == first.token  # 31 s left: still served
    clock.set(first.expires_at - 29)
    with pytest.raises(IssuerError):
        service.get_token(alice, "s")


def test_an_issuer_handing_out_short_lived_tokens_is_refused(clock: ManualClock) -> None:
    service, _ = _service(
        clock, timing=TokenTiming(ttl=300, min_remaining=30), signer=CountingSigner(max_ttl=20)
    )
    with pytest.raises(IssuerError) as caught:
        service.get_token(Principal("alice"), "s")
    assert caught.value.code == "short_lived"
    assert "20 s left" in str(caught.value)


@pytest.mark.parametrize(
    ("lifetime", "low", "high"),
    [(300, 60.0, 66.0), (3600, 720.0, 792.0), (100, 45.0, 49.5), (60, 27.0, 29.7)],
)
def test_default_refresh_margin(lifetime: int, low: float, high: float) -> None:
    """max(60 s, 20 % of the lifetime), at most 45 % of it, plus up to 10 % jitter."""
    timing = TokenTiming(ttl=min(lifetime, 3600), min_remaining=0)
    assert timing.margin(lifetime, FixedRandom(0.0)) == pytest.approx(low)
    assert timing.margin(lifetime, FixedRandom(0.999999)) == pytest.approx(high, rel=1e-5)


def test_explicit_refresh_margin_is_used(clock: ManualClock, alice: Principal) -> None:
    timing = TokenTiming(ttl=600, refresh_margin=90)
    assert timing.margin(600, FixedRandom(0.0)) == 90
    service, _ = _service(clock, timing=timing, rng=FixedRandom(0.0))
    token = service.get_token(alice, "s")
    assert token.refresh_at == token.expires_at - 90


def test_jitter_spreads_refreshes_across_sessions(clock: ManualClock, alice: Principal) -> None:
    service, _ = _service(clock, rng=random.Random(7))
    tokens = [service.get_token(alice, f"session-{i}") for i in range(200)]
    refresh_ats = [t.refresh_at for t in tokens]
    expires_at = tokens[0].expires_at
    assert all(expires_at - 66 <= r <= expires_at - 60 for r in refresh_ats)
    assert len(set(refresh_ats)) > 190
    assert max(refresh_ats) - min(refresh_ats) > 5.0


@pytest.mark.parametrize(
    ("kwargs", "setting"),
    [
        ({"ttl": 0}, "EMBEDGATE_TTL"),
        ({"ttl": 7200}, "EMBEDGATE_TTL"),
        ({"ttl": 300, "min_remaining": 300}, "EMBEDGATE_MIN_REMAINING"),
        ({"ttl": 300, "min_remaining": -1}, "EMBEDGATE_MIN_REMAINING"),
        ({"ttl": 300, "refresh_margin": 10}, "EMBEDGATE_REFRESH_MARGIN"),
        ({"ttl": 300, "refresh_margin": 300}, "EMBEDGATE_REFRESH_MARGIN"),
    ],
)
def test_timing_errors_name_the_setting(kwargs: dict[str, Any], setting: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        TokenTiming(**kwargs)
    assert caught.value.setting == setting


# -- invalidation --------------------------------------------------------------------------


def test_logout_purges_one_session_only(clock: ManualClock, alice: Principal) -> None:
    service, signer = _service(clock)
    s1 = service.get_token(alice, "s1")
    s2 = service.get_token(alice, "s2")
    assert service.invalidate_session("s1") == 1
    assert service.invalidate_session("s1") == 0
    assert service.get_token(alice, "s2").token == s2.token
    assert service.get_token(alice, "s1").token != s1.token
    assert signer.calls == 3


def test_privilege_change_purges_every_session_of_the_subject(
    clock: ManualClock, alice: Principal
) -> None:
    service, signer = _service(clock)
    bob = Principal("bob")
    for session in ("s1", "s2", "s3"):
        service.get_token(alice, session)
    bob_token = service.get_token(bob, "s1")
    assert service.invalidate_subject("alice") == 3
    assert service.get_token(bob, "s1").token == bob_token.token
    service.get_token(alice, "s2")
    assert signer.calls == 5


def test_async_invalidation(clock: ManualClock, alice: Principal) -> None:
    service, signer = _service(clock)

    async def scenario() -> None:
        await service.aget_token(alice, "s1")
        await service.aget_token(alice, "s2")
        assert await service.ainvalidate_session("s1") == 1
        assert await service.ainvalidate_subject("alice") == 1
        await service.aget_token(alice, "s2")

    anyio.run(scenario)
    assert signer.calls == 3


# -- when the issuer fails -----------------------------------------------------------------


def test_cached_token_is_served_while_the_issuer_is_down(
    clock: ManualClock, alice: Principal, caplog: pytest.LogCaptureFixture
) -> None:
    service, signer = _service(clock)
    first = service.get_token(alice, "s")
    signer.failure = provider_down(retry_after=7)
    clock.set(first.refresh_at + 1)  # due for refresh, still well over min_remaining
    with caplog.at_level(logging.WARNING, logger="embedgate"):
        assert service.get_token(alice, "s").token == first.token
        assert service.wait_idle()
        served = [service.get_token(alice, "s") for _ in range(5)]
    assert {s.token for s in served} == {first.token}
    # The issuer's retry_after is the window: the browser comes back when it ends.
    assert served[0].refresh_at == clock.now() + 7
    assert signer.calls == 2  # one call for the window, whatever the requests
    assert caplog.text.count("upstream_unavailable") == 1  # once per state change
    assert first.token not in caplog.text
    # Once less than min_remaining is left, the error reaches the caller.
    clock.set(first.expires_at - 29)
    with pytest.raises(IssuerError) as caught:
        service.get_token(alice, "s")
    assert caught.value.code == "upstream_unavailable"
    # And the provider coming back heals it, once the window has passed.
    signer.failure = None
    clock.advance(caught.value.retry_after)
    healed = service.get_token(alice, "s")
    assert healed.token != first.token
    assert healed.remaining(clock.now()) == 300


def test_issuer_error_on_a_cold_key_propagates(clock: ManualClock, alice: Principal) -> None:
    service, signer = _service(clock)
    signer.failure = provider_down()
    with pytest.raises(IssuerError):
        service.get_token(alice, "s")
    assert service.cache.get(_key_for(service, alice, "s")) is None


def test_stale_token_of_another_subject_is_no_fallback(
    clock: ManualClock, alice: Principal
) -> None:
    planted = EmbedToken(
        token="mallorys-token", expires_at=clock.now() + 300, issued_at=clock.now(),
        subject="mallory", refresh_at=clock.now() + 240,
    )  # fmt: skip
    service, signer = _service(clock, cache=PoisonedCache(planted, clock))
    signer.failure = provider_down()
    with pytest.raises(IssuerError):
        service.get_token(alice, "s")


def test_async_face_has_the_same_rules(clock: ManualClock, alice: Principal) -> None:
    service, signer = _service(clock)

    async def scenario() -> None:
        first = await service.aget_token(alice, "s")
        assert (await service.aget_token(alice, "s")).token == first.token
        signer.failure = provider_down(retry_after=3)
        clock.set(first.refresh_at + 1)
        assert (await service.aget_token(alice, "s")).token == first.token
        assert await service.await_idle()
        stale = await service.aget_token(alice, "s")
        assert stale.token == first.token
        assert stale.refresh_at == clock.now() + 3
        assert signer.calls == 2
        clock.set(first.expires_at - 10)
        with pytest.raises(IssuerError) as caught:
            await service.aget_token(alice, "s")
        signer.failure = None
        clock.advance(caught.value.retry_after)
        assert (await service.aget_token(alice, "s")).token != first.token

    for backend in ("asyncio", "trio"):
        clock.set(1_800_000_000.0)
        service.cache = MemoryCache(clock=clock)
        signer.failure = None
        signer.calls = 0
        anyio.run(scenario, backend=backend)


def test_logs_carry_neither_tokens_nor_subjects(
    clock: ManualClock, alice: Principal, caplog: pytest.LogCaptureFixture
) -> None:
    service, _ = _service(clock)
    with caplog.at_level(logging.DEBUG, logger="embedgate"):
        token = service.get_token(alice, "session-secret-id")
    assert "issued jti=" in caplog.text
    assert token.token not in caplog.text
    assert "alice" not in caplog.text
    assert "session-secret-id" not in caplog.text
