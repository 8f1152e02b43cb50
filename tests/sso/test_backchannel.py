"""Back-Channel Logout: logout-token verification rules, the handler's answers, the IdP's
keys fetched over real HTTP (discovery, rotation, outage) and the session index."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import jwt as pyjwt
import pytest
from joserfc.jwk import RSAKey

from embedgate import Engine, ManualClock, Principal, VerificationError
from embedgate.sso import (
    BackchannelLogout,
    LogoutTokenVerifier,
    OIDCProvider,
    SessionIndex,
    SSOSessions,
)
from tests.sso.conftest import EMBED_SECRET
from tests.sso.idp import IdPClient, LocalIdP, running_idp
from tests.support.net import free_port

CLIENT = "rp-1"


@pytest.fixture(scope="module")
def idp() -> LocalIdP:
    return LocalIdP(1, users=[], clients=[])  # only its keys and token builder


@pytest.fixture
def verifier(idp: LocalIdP) -> LogoutTokenVerifier:
    return LogoutTokenVerifier(OIDCProvider(issuer=idp.issuer, jwks=idp.jwks()), CLIENT)


def test_a_valid_logout_token_gives_its_sid_and_sub(
    idp: LocalIdP, verifier: LogoutTokenVerifier
) -> None:
    claims = verifier.verify(idp.logout_token(CLIENT, sid="sid-1", sub="alice"))
    assert (claims.issuer, claims.sid, claims.sub) == (idp.issuer, "sid-1", "alice")


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"aud": "another-client"}, "wrong_audience"),
        ({"iss": "https://evil.example"}, "wrong_issuer"),
        ({"events": None}, "missing_claim"),
        ({"events": {"http://schemas.openid.net/event/other": {}}}, "not_a_logout_token"),
        ({"jti": None}, "missing_claim"),
        ({"iat": None}, "missing_claim"),
        ({"nonce": "n-0S6_WzA2Mj"}, "nonce_present"),
        ({"sid": None}, "missing_claim"),  # and no sub either
        ({"exp": int(time.time()) - 600}, "expired"),
        ({"iat": int(time.time()) - 3600, "exp": None}, "stale"),
        ({"iat": int(time.time()) + 3600}, "not_yet_valid"),
    ],
)
def test_bad_logout_tokens_are_refused_with_a_reason(
    idp: LocalIdP, verifier: LogoutTokenVerifier, overrides: dict[str, Any], code: str
) -> None:
    token = idp.logout_token(CLIENT, **{"sid": "sid-1", **overrides})
    with pytest.raises(VerificationError) as caught:
        verifier.verify(token)
    assert caught.value.code == code
    assert token not in str(caught.value)


def test_only_pinned_asymmetric_algorithms_and_known_keys_are_accepted(
    idp: LocalIdP, verifier: LogoutTokenVerifier
) -> None:
    claims = {
        "iss": idp.issuer,
        "aud": CLIENT,
        "iat": int(time.time()),
        "jti": "j",
        "sid": "s",
        "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
    }
    unsigned = pyjwt.encode(claims, None, algorithm="none")
    hmac = pyjwt.encode(claims, "x" * 32, algorithm="HS256", headers={"kid": idp.kid})
    for token in (unsigned, hmac):
        with pytest.raises(VerificationError) as caught:
            verifier.verify(token)
        assert caught.value.code == "algorithm_mismatch"
    stranger = LocalIdP(1, users=[], clients=[])
    with pytest.raises(VerificationError) as caught:
        verifier.verify(stranger.logout_token(CLIENT, sid="s", iss=idp.issuer))
    assert caught.value.code == "unknown_key"
    with pytest.raises(VerificationError) as caught:
        verifier.verify(idp.sign({**claims, "jti": "k"}, typ="at+jwt"))
    assert caught.value.code == "wrong_type"


def test_a_logout_token_is_accepted_once(idp: LocalIdP, verifier: LogoutTokenVerifier) -> None:
    token = idp.logout_token(CLIENT, sub="alice")
    verifier.verify(token)
    with pytest.raises(VerificationError) as caught:
        verifier.verify(token)
    assert caught.value.code == "replayed"


def _engine() -> Engine:
    return Engine.from_settings(environ={}, mode="sso", secret=EMBED_SECRET)


def test_handler_answers_per_the_spec(idp: LocalIdP, verifier: LogoutTokenVerifier) -> None:
    engine = _engine()
    sessions = SSOSessions(engine)
    session_id = sessions.login({"iss": idp.issuer, "sub": "alice", "sid": "sid-9"})
    engine.service.get_token(Principal("alice"), session_id)
    handler = BackchannelLogout(verifier, sessions)

    wrong_type = handler.handle(b"logout_token=x", "application/json")
    assert wrong_type.status == 400
    token = idp.logout_token(CLIENT, sid="sid-9")
    twice = handler.handle(f"logout_token={token}&logout_token={token}".encode())
    assert twice.status == 400
    assert handler.handle({"other": "x"}).status == 400

    ok = handler.handle(f"logout_token={token}".encode(), "application/x-www-form-urlencoded")
    assert ok.status == 200
    assert ("cache-control", "no-store") in ok.headers
    assert len(engine.service.cache) == 0  # type: ignore[arg-type]
    assert not sessions.active(session_id)


def test_sid_ends_one_session_sub_ends_all_of_the_user(idp: LocalIdP) -> None:
    engine = _engine()
    sessions = SSOSessions(engine, issuer=idp.issuer)
    laptop = sessions.login({"iss": idp.issuer, "sub": "alice", "sid": "sid-a"})
    phone = sessions.login({"iss": idp.issuer, "sub": "alice", "sid": "sid-b"})
    bob = sessions.login({"iss": idp.issuer, "sub": "bob", "sid": "sid-c"})
    for session_id, who in ((laptop, "alice"), (phone, "alice"), (bob, "bob")):
        engine.service.get_token(Principal(who), session_id)

    assert sessions.end(issuer=idp.issuer, sid="sid-a").sessions == 1
    assert (sessions.active(laptop), sessions.active(phone)) == (False, True)
    # Another issuer's sid or sub never matches.
    assert sessions.end(issuer="https://other.example", sub="alice").sessions == 0
    result = sessions.end(issuer=idp.issuer, sub="alice", purge_subject=False)
    assert (result.sessions, result.tokens) == (1, 1)
    assert not sessions.active(phone)
    assert sessions.active(bob)
    assert len(engine.service.cache) == 1  # type: ignore[arg-type]


def test_sub_only_purges_the_subject_everywhere_when_sub_is_the_embed_subject() -> None:
    engine = _engine()
    sessions = SSOSessions(engine)
    # A session this process never indexed (another worker logged it in).
    engine.service.get_token(Principal("alice"), "x" * 32)
    assert sessions.end(issuer="https://idp", sub="alice").tokens == 1


def test_the_index_forgets_after_its_ttl() -> None:
    clock = ManualClock(start=1_000.0)
    index = SessionIndex(ttl=60, clock=clock)
    index.add("s1", issuer="i", sid="sid", sub="u")
    assert index.find(issuer="i", sid="sid") == {"s1"}
    index.end({"s1"})
    assert index.is_ended("s1")
    assert index.find(issuer="i", sub="u") == set()
    index.add("s2", issuer="i", sid=None, sub="u")
    clock.advance(61)
    assert index.find(issuer="i", sub="u") == set()
    assert not index.is_ended("s1")
    assert "s2" not in repr(index)


# -- keys over real HTTP ------------------------------------------------------------------


@pytest.fixture
def served_idp() -> Iterator[LocalIdP]:
    client = IdPClient(CLIENT, "secret", ["http://127.0.0.1:1/cb"])
    with running_idp(free_port(), users=[], clients=[client]) as idp:
        yield idp


def test_keys_come_from_discovery_and_a_rotated_key_is_fetched(served_idp: LocalIdP) -> None:
    provider = OIDCProvider(f"{served_idp.issuer}/.well-known/openid-configuration", min_refetch=0)
    verifier = LogoutTokenVerifier(provider, CLIENT)
    assert verifier.verify(served_idp.logout_token(CLIENT, sid="a")).sid == "a"
    assert provider.issuer == served_idp.issuer
    served_idp.key = RSAKey.generate_key(2048, parameters={"kid": "rotated", "alg": "RS256"})
    assert verifier.verify(served_idp.logout_token(CLIENT, sid="b")).sid == "b"


def test_an_unknown_kid_does_not_refetch_more_than_once_per_interval(
    served_idp: LocalIdP,
) -> None:
    provider = OIDCProvider(issuer=served_idp.issuer, min_refetch=3600)
    verifier = LogoutTokenVerifier(provider, CLIENT)
    verifier.verify(served_idp.logout_token(CLIENT, sid="a"))
    served_idp.key = RSAKey.generate_key(2048, parameters={"kid": "rotated", "alg": "RS256"})
    with pytest.raises(VerificationError) as caught:
        verifier.verify(served_idp.logout_token(CLIENT, sid="b"))
    assert caught.value.code == "unknown_key"


def test_an_unreachable_idp_answers_503_so_the_idp_retries() -> None:
    provider = OIDCProvider(f"http://127.0.0.1:{free_port()}", timeout=2)
    handler = BackchannelLogout(LogoutTokenVerifier(provider, CLIENT), SSOSessions(_engine()))
    token = LocalIdP(1, users=[], clients=[]).logout_token(CLIENT, sid="s")
    response = handler.handle({"logout_token": token})
    assert response.status == 503
    assert ("retry-after", "30") in response.headers


def test_a_discovery_document_naming_another_issuer_is_refused(served_idp: LocalIdP) -> None:
    provider = OIDCProvider(
        f"{served_idp.issuer}/.well-known/openid-configuration", issuer="https://other"
    )
    with pytest.raises(VerificationError) as caught:
        LogoutTokenVerifier(provider, CLIENT).verify(served_idp.logout_token(CLIENT, sid="a"))
    assert caught.value.code == "wrong_issuer"
