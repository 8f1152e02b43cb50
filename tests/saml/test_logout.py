"""Single logout over real HTTP. IdP-initiated: the IdP's signed LogoutRequest (HTTP-Redirect
or HTTP-POST, delivered by the user's browser) ends the user's embedgate sessions and purges
their tokens, and the SP answers with a signed LogoutResponse; across two workers sharing
Redis, the request reaching one worker ends what the other opened. SP-initiated: the app
logs out locally and sends a signed LogoutRequest the IdP verifies."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import httpx
import pytest
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT

from tests.saml.conftest import (
    SAMLStack,
    login_page,
    page_token,
    saml_users,
    start_app,
    stop_app,
    token_claims,
)
from tests.saml.idp import LocalSAMLIdP, read_form, running_saml_idp
from tests.support.binaries import require_binary
from tests.support.net import free_port
from tests.support.redis_server import RedisServer

SAME_ORIGIN = {"X-Embedgate": "1", "Sec-Fetch-Site": "same-origin"}


def token_endpoint(app: httpx.Client, url: str) -> httpx.Response:
    return app.post(f"{url}/_embedgate/token", headers=SAME_ORIGIN)


def deliver_logout_request(
    idp: LocalSAMLIdP,
    browser: httpx.Client,
    username: str,
    sp_entity_id: str,
    binding: str,
    sp_url: str | None = None,
) -> httpx.Response:
    """The IdP's LogoutRequest, sent through ``browser`` as the front channel does;
    ``sp_url`` re-targets it at another worker of the same SP."""
    info = idp.logout_request(username, sp_entity_id, binding)
    if binding == BINDING_HTTP_REDIRECT:
        location = dict(info["headers"])["Location"]
        if sp_url:
            location = sp_url + location[location.index("/saml/slo") :]
        return browser.get(location)
    action, fields = read_form(info["data"])
    if sp_url:
        action = sp_url + "/saml/slo"
    return browser.post(action, data=fields)


def assert_logout_response_to_idp(idp: LocalSAMLIdP, response: httpx.Response) -> None:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(f"{idp.base_url}/slo/redirect?SAMLResponse=")
    assert "Signature=" in location  # the SP signs its LogoutResponse
    assert "SigAlg=http%3A%2F%2Fwww.w3.org%2F2001%2F04%2Fxmldsig-more%23rsa-sha256" in location
    answer = httpx.get(location, timeout=10)
    assert answer.status_code == 200, answer.text
    assert idp.logout_responses[-1] == "urn:oasis:names:tc:SAML:2.0:status:Success"


@pytest.mark.parametrize(
    "binding", [BINDING_HTTP_REDIRECT, BINDING_HTTP_POST], ids=["redirect", "post"]
)
def test_idp_initiated_logout_ends_the_users_sessions_and_tokens(
    saml_stack: SAMLStack, binding: str
) -> None:
    alice, page = login_page(saml_stack, "alice", "alice-password")
    alice_elsewhere, _ = login_page(saml_stack, "alice", "alice-password")  # a 2nd browser
    bob, _ = login_page(saml_stack, "bob", "bob-password")
    assert page_token(page.text) is not None
    for client in (alice, alice_elsewhere, bob):
        assert token_endpoint(client, saml_stack.app_url).status_code == 200

    response = deliver_logout_request(saml_stack.idp, alice, "alice", saml_stack.entity_id, binding)
    assert_logout_response_to_idp(saml_stack.idp, response)

    for client in (alice, alice_elsewhere):  # every session of alice's, this browser or not
        assert token_endpoint(client, saml_stack.app_url).status_code == 401
        after = client.get(f"{saml_stack.app_url}/")
        assert "Not signed in." in after.text
        assert page_token(after.text) is None
    # bob is untouched
    assert token_endpoint(bob, saml_stack.app_url).status_code == 200


def test_a_logout_request_with_a_bad_signature_is_refused(saml_stack: SAMLStack) -> None:
    alice, _ = login_page(saml_stack, "alice", "alice-password")
    info = saml_stack.idp.logout_request("alice", saml_stack.entity_id, BINDING_HTTP_REDIRECT)
    location = dict(info["headers"])["Location"]
    query = {k: v[0] for k, v in parse_qs(urlparse(location).query).items()}
    signature = bytearray(base64.b64decode(query["Signature"]))
    signature[10] ^= 0x01
    forged = {**query, "Signature": base64.b64encode(bytes(signature)).decode()}
    unsigned = {k: v for k, v in query.items() if k not in ("Signature", "SigAlg")}
    for params in (forged, unsigned):
        response = alice.get(f"{saml_stack.app_url}/saml/slo?{urlencode(params)}")
        assert response.status_code == 400, response.text
        assert token_endpoint(alice, saml_stack.app_url).status_code == 200  # still signed in


def test_a_replayed_logout_request_is_refused(saml_stack: SAMLStack) -> None:
    info = saml_stack.idp.logout_request("alice", saml_stack.entity_id, BINDING_HTTP_REDIRECT)
    location = dict(info["headers"])["Location"]
    first = httpx.get(location, timeout=10)
    assert first.status_code == 302
    alice, _ = login_page(saml_stack, "alice", "alice-password")
    again = alice.get(location)  # the same signed request, captured and sent again
    assert again.status_code == 400
    assert '<code id="code">replayed</code>' in again.text
    assert token_endpoint(alice, saml_stack.app_url).status_code == 200


def test_sp_initiated_logout_purges_locally_and_tells_the_idp(saml_stack: SAMLStack) -> None:
    alice, page = login_page(saml_stack, "alice", "alice-password")
    payload = page_token(page.text)
    assert payload is not None
    response = alice.post(f"{saml_stack.app_url}/logout")
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(f"{saml_stack.idp.base_url}/slo/redirect?SAMLRequest=")
    assert "Signature=" in location
    assert token_endpoint(alice, saml_stack.app_url).status_code == 401  # already, locally
    # The IdP verifies the signed request and answers with its LogoutResponse.
    answer = alice.get(location)
    assert answer.status_code == 302, answer.text
    assert saml_stack.idp.logout_requests == ["AAdzZWNyZXQxvP9vJq3Xm0Jd6w"]
    back = answer.headers["location"]
    assert back.startswith(f"{saml_stack.app_url}/saml/slo?SAMLResponse=")
    done = alice.get(back)
    assert done.status_code == 302
    page = alice.get(f"{saml_stack.app_url}/")
    assert "Not signed in." in page.text
    assert token_claims(payload["token"])["sub"] == "AAdzZWNyZXQxvP9vJq3Xm0Jd6w"


@pytest.fixture
def redis_url() -> Iterator[str]:
    with RedisServer(require_binary("redis-server")) as server:
        yield server.url


@pytest.mark.redis
def test_logout_reaching_one_worker_ends_what_another_opened(
    tmp_path: Path, redis_url: str
) -> None:
    require_binary("xmlsec1")
    idp = LocalSAMLIdP(free_port(), tmp_path, saml_users())
    public, other = free_port(), free_port()
    shared: dict[str, Any] = {"EMBEDGATE_REDIS_URL": redis_url, "SECRET_KEY": "k" * 64}
    with running_saml_idp(idp):
        # Two workers of one SP (one entity id, one public URL), one Redis.
        worker_a, handle_a = start_app(idp, tmp_path, public, shared)
        _worker_b, handle_b = start_app(
            idp, tmp_path, other, {**shared, "SAML_SP_BASE_URL": f"http://127.0.0.1:{public}"}
        )
        try:
            stack = SAMLStack(idp, worker_a, f"http://127.0.0.1:{public}")
            alice, page = login_page(stack, "alice", "alice-password")
            assert page_token(page.text) is not None
            assert token_endpoint(alice, stack.app_url).status_code == 200
            response = deliver_logout_request(
                idp,
                alice,
                "alice",
                stack.entity_id,
                BINDING_HTTP_REDIRECT,
                sp_url=f"http://127.0.0.1:{other}",
            )
            assert_logout_response_to_idp(idp, response)
            # Worker A never saw the logout: its session and tokens are gone all the same.
            assert token_endpoint(alice, stack.app_url).status_code == 401
            assert "Not signed in." in alice.get(f"{stack.app_url}/").text
        finally:
            stop_app(handle_b)
            stop_app(handle_a)
