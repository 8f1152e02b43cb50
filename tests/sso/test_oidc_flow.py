"""End to end over real HTTP: OIDC login at the local IdP (code flow, PKCE, ID-token
verification by Authlib) -> the example's page carries an embed token with the mapped
claims; back-channel logout purges it."""

from __future__ import annotations

import json

import httpx
import pytest
from joserfc.jwk import RSAKey

from tests.sso.conftest import (
    Stack,
    load_example,
    login,
    page_token,
    running_stack,
    token_claims,
)
from tests.sso.idp import LocalIdP

SAME_ORIGIN = {"X-Embedgate": "1", "Sec-Fetch-Site": "same-origin"}


def test_login_ends_on_a_page_whose_token_carries_the_mapped_claims(stack: Stack) -> None:
    app, page = login(stack, "alice", "alice-password")
    assert page.status_code == 200
    assert "Signed in as <strong>Alice Analyst</strong>" in page.text
    assert "no-store" in page.headers["cache-control"]
    payload = page_token(page.text)
    assert payload is not None
    claims = token_claims(payload["token"])
    assert claims["sub"] == "alice-0001"
    assert claims["tenant"] == "acme"  # nested under the namespace URI claim
    assert claims["attributes"] == {"region": "eu-west"}  # employee_id: not allowed
    assert claims["roles"] == ["analysts", "sales"]  # IdP groups -> roles
    assert claims["email"] == "alice@acme.example"
    assert "groups" not in claims
    app.close()


def test_token_endpoint_knows_the_sso_user_and_anonymous_gets_401(stack: Stack) -> None:
    app, page = login(stack, "bob", "bob-password")
    first = page_token(page.text)
    assert first is not None
    response = app.post(f"{stack.app_url}/_embedgate/token", headers=SAME_ORIGIN)
    assert response.status_code == 200, response.text
    assert response.json()["token"] == first["token"]  # the session's cached token
    claims = token_claims(response.json()["token"])
    assert (claims["sub"], claims["tenant"]) == ("bob-0002", "globex")
    anonymous = httpx.post(f"{stack.app_url}/_embedgate/token", headers=SAME_ORIGIN)
    assert anonymous.status_code == 401
    app.close()


def test_two_users_get_their_own_sessions_and_tokens(stack: Stack) -> None:
    alice, alice_page = login(stack, "alice", "alice-password")
    bob, bob_page = login(stack, "bob", "bob-password")
    alice_token = page_token(alice_page.text)
    bob_token = page_token(bob_page.text)
    assert alice_token is not None
    assert bob_token is not None
    assert token_claims(alice_token["token"])["tenant"] == "acme"
    assert token_claims(bob_token["token"])["tenant"] == "globex"
    alice.close()
    bob.close()


def test_the_app_refuses_an_id_token_its_idp_did_not_sign(stack: Stack) -> None:
    # The IdP now publishes another key under the same kid: the signature cannot verify.
    impostor = LocalIdP(1, users=[], clients=[])
    impostor.key = RSAKey.import_key({**impostor.key.as_dict(private=True), "kid": stack.idp.kid})
    stack.idp.jwks = impostor.jwks  # type: ignore[method-assign]
    app, response = login(stack, "alice", "alice-password", callback_status=500)
    assert response.status_code == 500
    page = app.get(f"{stack.app_url}/")
    assert "Not signed in." in page.text
    assert page_token(page.text) is None
    app.close()


def test_wrong_password_stays_at_the_idp(stack: Stack) -> None:
    idp = httpx.Client(timeout=10)
    response = idp.post(
        f"{stack.idp.issuer}/login",
        data={"username": "alice", "password": "nope", "next": "/authorize"},
    )
    assert response.status_code == 401
    assert "Wrong username or password" in response.text
    idp.close()


def test_local_logout_purges_the_sessions_token(stack: Stack) -> None:
    app, page = login(stack, "alice", "alice-password")
    assert page_token(page.text) is not None
    cache = stack.engine.service.cache
    assert len(cache) == 1  # type: ignore[arg-type]
    response = app.post(f"{stack.app_url}/logout")
    assert response.status_code == 302
    assert len(cache) == 0  # type: ignore[arg-type]
    after = app.get(f"{stack.app_url}/")
    assert "Not signed in." in after.text
    assert page_token(after.text) is None
    app.close()


def test_backchannel_logout_from_the_idp_purges_the_token_and_ends_the_session(
    stack: Stack,
) -> None:
    app, page = login(stack, "alice", "alice-password")
    bob, bob_page = login(stack, "bob", "bob-password")
    before = page_token(page.text)
    assert before is not None
    answers = stack.idp.backchannel_logout("alice")
    assert [a.status_code for a in answers] == [200]
    assert answers[0].headers["cache-control"] == "no-store"
    # Alice's token is gone from the cache; Bob's stays.
    cache = stack.engine.service.cache
    assert len(cache) == 1  # type: ignore[arg-type]
    after = app.get(f"{stack.app_url}/")
    assert "Not signed in." in after.text
    assert page_token(after.text) is None
    endpoint = app.post(f"{stack.app_url}/_embedgate/token", headers=SAME_ORIGIN)
    assert endpoint.status_code == 401
    bob_again = bob.get(f"{stack.app_url}/")
    bob_payload = page_token(bob_again.text)
    bob_first = page_token(bob_page.text)
    assert bob_payload is not None
    assert bob_first is not None
    assert bob_payload["token"] == bob_first["token"]
    app.close()
    bob.close()


def test_backchannel_logout_by_sub_only_ends_every_session_of_the_user(stack: Stack) -> None:
    first, first_page = login(stack, "alice", "alice-password")
    second, _ = login(stack, "alice", "alice-password")  # a second browser
    first_token = page_token(first_page.text)
    assert first_token is not None
    answers = stack.idp.backchannel_logout("alice", include_sid=False)
    assert {a.status_code for a in answers} == {200}
    assert len(stack.engine.service.cache) == 0  # type: ignore[arg-type]
    for client in (first, second):
        assert "Not signed in." in client.get(f"{stack.app_url}/").text
        client.close()


def test_backchannel_logout_refuses_a_forged_or_replayed_token(stack: Stack) -> None:
    app, _ = login(stack, "alice", "alice-password")
    url = stack.client.backchannel_logout_uri
    assert url is not None
    sid = next(iter(stack.idp.logins))
    good = stack.idp.logout_token(stack.client.client_id, sid=sid)
    header, payload, signature = good.split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"
    response = httpx.post(url, data={"logout_token": forged})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert forged not in response.text
    assert len(stack.engine.service.cache) == 1  # type: ignore[arg-type]
    assert httpx.post(url, data={"logout_token": good}).status_code == 200
    replay = httpx.post(url, data={"logout_token": good})
    assert replay.status_code == 400
    assert "already used" in replay.json()["error_description"]
    app.close()


def test_an_id_token_is_not_a_logout_token(stack: Stack) -> None:
    app, _ = login(stack, "alice", "alice-password")
    url = stack.client.backchannel_logout_uri
    assert url is not None
    sid = next(iter(stack.idp.logins))
    id_like = stack.idp.logout_token(
        stack.client.client_id, sid=sid, events=None, nonce="n-0S6_WzA2Mj"
    )
    response = httpx.post(url, data={"logout_token": id_like})
    assert response.status_code == 400
    assert len(stack.engine.service.cache) == 1  # type: ignore[arg-type]
    app.close()


def test_claims_the_idp_answers_only_from_userinfo_reach_the_token() -> None:
    # Like npm oidc-provider: the ID token carries sub (and sid) only; email, name, groups
    # and the custom namespace claim come from the UserInfo endpoint.
    namespace = load_example().NAMESPACE
    only_userinfo = ("email", "name", "groups", "employee_id", namespace)
    with running_stack(userinfo_only=only_userinfo) as running:
        app, page = login(running, "alice", "alice-password")
        assert "Signed in as <strong>Alice Analyst</strong>" in page.text
        payload = page_token(page.text)
        assert payload is not None
        claims = token_claims(payload["token"])
        assert claims["sub"] == "alice-0001"
        assert claims["tenant"] == "acme"
        assert claims["attributes"] == {"region": "eu-west"}
        assert claims["roles"] == ["analysts", "sales"]
        assert claims["email"] == "alice@acme.example"
        app.close()


def test_claim_mapping_from_the_environment_overrides_the_examples(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EMBEDGATE_CLAIM_MAPPING", json.dumps({"tenant": "email", "attributes": {}}))
    with running_stack() as running:
        app, page = login(running, "bob", "bob-password")
        payload = page_token(page.text)
        assert payload is not None
        claims = token_claims(payload["token"])
        assert claims["tenant"] == "bob@globex.example"  # the environment's mapping
        assert "roles" not in claims  # the example's groups -> roles mapping is not used
        app.close()
