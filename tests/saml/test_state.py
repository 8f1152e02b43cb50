"""The SP's state pieces on their own: outstanding requests and consumed assertions
(`SAMLRequestState`, in memory and in a real Redis), the shared login index
(`RedisSessionIndex`), the subject purge for the `saml` preset, and the refusal codes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from embedgate import Engine, Principal
from embedgate.sso import (
    RedisSessionIndex,
    SAMLRequestState,
    SSOSessions,
    saml_error_code,
)
from tests.sso.conftest import EMBED_SECRET
from tests.support.binaries import require_binary
from tests.support.redis_server import RedisServer

IDP = "https://idp.example/metadata"


@pytest.fixture(scope="module")
def redis_client() -> Iterator[redis.Redis]:
    with RedisServer(require_binary("redis-server")) as server, server.client() as client:
        yield client


def _states(redis_client: redis.Redis | None) -> tuple[SAMLRequestState, SAMLRequestState]:
    # Two workers: the request is made on one, the response may reach the other.
    return SAMLRequestState(redis=redis_client), SAMLRequestState(redis=redis_client)


@pytest.mark.parametrize("shared", [False, True], ids=["memory", "redis"])
def test_an_outstanding_request_is_taken_once_and_an_assertion_used_once(
    shared: bool, request: pytest.FixtureRequest
) -> None:
    client = request.getfixturevalue("redis_client") if shared else None
    if client is not None:
        client.flushall()
    one, two = _states(client)
    one.add("id-req-1", "/reports")
    other = two if shared else one
    assert other.take("id-req-1") == "/reports"
    assert other.take("id-req-1") is None  # answered: a replay finds nothing
    assert one.take("id-never-sent") is None
    assert other.first_use("id-assertion-1")
    assert not one.first_use("id-assertion-1")  # the other worker, or the same one
    assert "id-req" not in repr(one)


def test_redis_session_index_is_shared_between_workers(redis_client: redis.Redis) -> None:
    redis_client.flushall()
    engine_a = Engine.from_settings(environ={}, mode="sso", secret=EMBED_SECRET)
    engine_b = Engine.from_settings(environ={}, mode="sso", secret=EMBED_SECRET)
    worker_a = SSOSessions(engine_a, index=RedisSessionIndex(redis_client), issuer=IDP)
    worker_b = SSOSessions(engine_b, index=RedisSessionIndex(redis_client), issuer=IDP)
    claims = {"nameid": "alice-nameid", "session_index": "idx-1"}
    session_id = worker_a.login(claims)
    other = worker_a.login({"nameid": "bob-nameid", "session_index": "idx-2"})
    assert worker_b.index.find(issuer=IDP, sid="idx-1") == {session_id}
    assert worker_b.index.find(issuer=IDP, sub="alice-nameid") == {session_id}
    result = worker_b.end(issuer=IDP, sid="idx-1")
    assert result.sessions == 1
    assert not worker_a.active(session_id)  # ended on B, seen on A
    assert worker_a.active(other)
    assert "alice" not in repr(worker_a.index)


def test_an_unreachable_redis_index_keeps_sessions_active_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from tests.support.net import free_port

    index = RedisSessionIndex(redis.Redis(port=free_port(), socket_connect_timeout=0.5))
    assert index.is_ended("some-session") is False
    assert "SSO session index unreachable" in caplog.text


def test_saml_preset_subject_purge_reaches_sessions_this_process_never_saw() -> None:
    # The saml preset's subject is ("nameid", ...): the NameID *is* the embed subject, so
    # an IdP logout naming it purges that subject's tokens in every session.
    engine = Engine.from_settings(
        environ={}, mode="sso", secret=EMBED_SECRET, claim_mapping='{"preset": "saml"}'
    )
    sessions = SSOSessions(engine, issuer=IDP)
    engine.service.get_token(Principal("alice-nameid"), "w" * 32)  # another worker's session
    assert sessions.end(issuer=IDP, sub="alice-nameid").tokens == 1
    # azure-ad-saml reads the subject from objectidentifier: no blind subject purge.
    azure = Engine.from_settings(
        environ={}, mode="sso", secret=EMBED_SECRET, claim_mapping='{"preset": "azure-ad-saml"}'
    )
    azure.service.get_token(Principal("alice-nameid"), "w" * 32)
    assert SSOSessions(azure, issuer=IDP).end(issuer=IDP, sub="alice-nameid").tokens == 0


class SignatureError(Exception):
    pass


class ResponseLifetimeExceed(Exception):
    pass


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (SignatureError("Signature missing for assertion"), "unsigned"),
        (SignatureError("Failed to verify signature"), "bad_signature"),
        (ResponseLifetimeExceed("Can't use response, too old"), "expired"),
        (Exception("AudienceRestrictions conditions not satisfied!"), "wrong_audience"),
        (Exception("No valid recipient"), "wrong_recipient"),
        (Exception("Unsolicited response: id-1"), "unsolicited"),
        (ValueError("something else"), "invalid"),
    ],
)
def test_refusal_codes_name_pysaml2s_errors(error: Exception, code: str) -> None:
    assert saml_error_code(error) == code


def test_a_request_bound_to_a_browser_is_taken_by_that_browser_only() -> None:
    state = SAMLRequestState()
    state.add("id-1", "/", browser="browser-secret-a")
    assert state.take("id-1", browser="browser-secret-b") is None
    assert state.take("id-1", browser="browser-secret-a") is None  # spent by the attempt
    state.add("id-2", "/next", browser="browser-secret-a")
    assert state.take("id-2") is None  # no cookie at all
    state.add("id-3", "/next", browser="browser-secret-a")
    assert state.take("id-3", browser="browser-secret-a") == "/next"
