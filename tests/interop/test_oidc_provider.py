"""npm oidc-provider (OpenID certified, pinned in package.json) as the IdP of examples/sso:
authorization code flow with PKCE, its login and consent forms driven over HTTP, claims it
answers only from UserInfo reaching the embed token, and back-channel logout purging it."""

from __future__ import annotations

import html
import json
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest
from flask import Flask

from tests.interop.peers import HERE, node, serve_wsgi, server_process
from tests.sso.conftest import EMBED_SECRET, load_example, page_token, token_claims
from tests.support.net import free_port

pytestmark = pytest.mark.interop

SAME_ORIGIN = {"X-Embedgate": "1", "Sec-Fetch-Site": "same-origin"}
FORM = re.compile(r"<form\b[^>]*\baction=\"([^\"]*)\"[^>]*>(.*?)</form>", re.DOTALL)
HIDDEN = re.compile(r"<input\b[^>]*type=\"hidden\"[^>]*>")
ATTRIBUTE = re.compile(r"\b(name|value)=\"([^\"]*)\"")


@dataclass
class Peers:
    issuer: str
    app: Flask
    app_url: str


def accounts(namespace: str) -> dict[str, dict[str, object]]:
    return {
        "alice": {
            "email": "alice@acme.example",
            "email_verified": True,
            "name": "Alice Analyst",
            "groups": ["analysts", "sales"],
            "employee_id": "E-1001",
            namespace: {"tenant": "acme", "region": "eu-west"},
        },
        "bob": {
            "email": "bob@globex.example",
            "name": "Bob Builder",
            "groups": ["viewers"],
            namespace: {"tenant": "globex", "region": "us-east"},
        },
    }


@pytest.fixture
def peers(tmp_path: Path) -> Iterator[Peers]:
    example = load_example()
    idp_port, app_port = free_port(), free_port()
    issuer, app_url = f"http://127.0.0.1:{idp_port}", f"http://127.0.0.1:{app_port}"
    client = {
        "client_id": "embedgate-sso-example",
        "client_secret": secrets.token_urlsafe(24),
        "redirect_uri": f"{app_url}/callback",
        "backchannel_logout_uri": f"{app_url}/backchannel-logout",
    }
    setup = {"port": idp_port, "client": client, "accounts": accounts(example.NAMESPACE)}
    with server_process(
        [node(), str(HERE / "oidc_idp.mjs")],
        idp_port,
        tmp_path / "oidc-provider.log",
        env={"EMBEDGATE_INTEROP_IDP": json.dumps(setup)},
        cwd=HERE,
    ):
        app = example.create_app(
            {
                "SECRET_KEY": secrets.token_hex(32),
                "SSO_METADATA_URL": f"{issuer}/.well-known/openid-configuration",
                "SSO_CLIENT_ID": client["client_id"],
                "SSO_CLIENT_SECRET": client["client_secret"],
                "EMBEDGATE_SECRET": EMBED_SECRET,
            }
        )
        with serve_wsgi(app, app_port):
            yield Peers(issuer, app, app_url)


def submit_form(client: httpx.Client, page: httpx.Response, **fields: str) -> httpx.Response:
    """Submit the page's first form: its hidden inputs plus ``fields``."""
    match = FORM.search(page.text)
    assert match is not None, page.text[:2000]
    data = {}
    for tag in HIDDEN.findall(match.group(2)):
        attrs = dict(ATTRIBUTE.findall(tag))
        data[attrs["name"]] = html.unescape(attrs.get("value", ""))
    action = urljoin(str(page.url), html.unescape(match.group(1)))
    return client.post(action, data={**data, **fields})


def login(peers: Peers, username: str) -> tuple[httpx.Client, httpx.Client, httpx.Response]:
    """Sign in through the IdP's real forms; returns the app's client, the IdP's client
    (its session cookies) and the app page the flow ends on."""
    app = httpx.Client(timeout=15)
    idp = httpx.Client(timeout=15)
    response = app.get(f"{peers.app_url}/login")
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(f"{peers.issuer}/auth?")
    assert "code_challenge_method=S256" in location
    forms = []
    for _ in range(12):  # auth -> login form -> auth -> consent form -> auth -> callback
        if location.startswith(peers.app_url):
            break
        response = idp.get(urljoin(peers.issuer, location))
        if response.status_code == 200:
            prompt = re.search(r'name="prompt" value="(\w+)"', response.text)
            assert prompt is not None, response.text[:2000]
            forms.append(prompt.group(1))
            fields = {"login": username, "password": "any"} if prompt.group(1) == "login" else {}
            response = submit_form(idp, response, **fields)
        assert response.status_code in (302, 303), response.text[:2000]
        location = response.headers["location"]
    assert forms == ["login", "consent"]
    assert location.startswith(f"{peers.app_url}/callback?code=")
    response = app.get(location)
    assert response.status_code == 302, response.text[:2000]
    return app, idp, app.get(urljoin(peers.app_url, response.headers["location"]))


def test_login_at_oidc_provider_gives_a_token_with_the_userinfo_claims(peers: Peers) -> None:
    app, idp, page = login(peers, "alice")
    assert "Signed in as <strong>Alice Analyst</strong>" in page.text
    payload = page_token(page.text)
    assert payload is not None
    claims = token_claims(payload["token"])
    assert claims["sub"] == "alice"
    # Only in oidc-provider's UserInfo answer, not in its ID token:
    assert claims["tenant"] == "acme"
    assert claims["email"] == "alice@acme.example"
    assert claims["roles"] == ["analysts", "sales"]
    assert claims["attributes"] == {"region": "eu-west"}
    endpoint = app.post(f"{peers.app_url}/_embedgate/token", headers=SAME_ORIGIN)
    assert endpoint.status_code == 200
    assert endpoint.json()["token"] == payload["token"]
    app.close()
    idp.close()


def test_logout_at_oidc_provider_purges_the_token_by_back_channel(peers: Peers) -> None:
    alice, alice_idp, _ = login(peers, "alice")
    bob, bob_idp, bob_page = login(peers, "bob")
    cache = peers.app.extensions["embedgate"].service.cache
    assert len(cache) == 2
    # RP-initiated logout at the IdP: its confirmation form, then the back-channel POST.
    confirm = alice_idp.get(f"{peers.issuer}/session/end")
    assert confirm.status_code == 200
    done = submit_form(alice_idp, confirm, logout="yes")
    assert done.status_code in (200, 302, 303), done.text[:2000]
    deadline = time.monotonic() + 10
    while len(cache) != 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(cache) == 1  # alice's token is gone, bob's stays
    assert "Not signed in." in alice.get(f"{peers.app_url}/").text
    refused = alice.post(f"{peers.app_url}/_embedgate/token", headers=SAME_ORIGIN)
    assert refused.status_code == 401
    bob_payload = page_token(bob.get(f"{peers.app_url}/").text)
    first = page_token(bob_page.text)
    assert bob_payload is not None
    assert first is not None
    assert token_claims(bob_payload["token"])["tenant"] == "globex"
    for client in (alice, alice_idp, bob, bob_idp):
        client.close()
