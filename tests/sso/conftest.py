"""An SSO stack on 127.0.0.1: the local OpenID Provider and the SSO example app, each a
real threaded HTTP server, plus helpers to log in through them with httpx."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import re
import secrets
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest
from flask import Flask
from werkzeug.serving import make_server

from embedgate import Engine, KeySet, SigningKey, verify
from tests.sso.idp import IdPClient, IdPUser, LocalIdP, running_idp
from tests.support.blocks import without_binding
from tests.support.net import free_port

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sso" / "app.py"
EMBED_SECRET = "sso-test-secret-0123456789abcdef-0123456789"
TOKEN_BLOCK = re.compile(
    r'<script type="application/json" id="embedgate-token">(.*?)</script>', re.DOTALL
)


def load_example() -> ModuleType:
    """examples/sso/app.py as a module (it is not part of the package)."""
    name = "embedgate_sso_example"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # Flask finds the templates folder through it
    spec.loader.exec_module(module)
    return module


def users(namespace: str) -> list[IdPUser]:
    return [
        IdPUser(
            "alice",
            "alice-password",
            {
                "sub": "alice-0001",
                "email": "alice@acme.example",
                "name": "Alice Analyst",
                "groups": ["analysts", "sales"],
                "employee_id": "E-1001",
                namespace: {"tenant": "acme", "region": "eu-west"},
            },
        ),
        IdPUser(
            "bob",
            "bob-password",
            {
                "sub": "bob-0002",
                "email": "bob@globex.example",
                "name": "Bob Builder",
                "groups": ["viewers"],
                namespace: {"tenant": "globex", "region": "us-east"},
            },
        ),
    ]


@dataclass
class Stack:
    idp: LocalIdP
    client: IdPClient
    app: Flask
    app_url: str

    @property
    def engine(self) -> Engine:
        engine: Engine = self.app.extensions["embedgate"]
        return engine


@contextlib.contextmanager
def running_stack(*, userinfo_only: Sequence[str] = ()) -> Iterator[Stack]:
    """The local IdP and the SSO example app, each on its own port of 127.0.0.1."""
    example = load_example()
    idp_port, app_port = free_port(), free_port()
    app_url = f"http://127.0.0.1:{app_port}"
    client = IdPClient(
        client_id="embedgate-sso-example",
        client_secret=secrets.token_urlsafe(24),
        redirect_uris=[f"{app_url}/callback"],
        backchannel_logout_uri=f"{app_url}/backchannel-logout",
    )
    with running_idp(
        idp_port, users=users(example.NAMESPACE), clients=[client], userinfo_only=userinfo_only
    ) as idp:
        app = example.create_app(
            {
                "SECRET_KEY": secrets.token_hex(32),
                "SSO_METADATA_URL": f"{idp.issuer}/.well-known/openid-configuration",
                "SSO_CLIENT_ID": client.client_id,
                "SSO_CLIENT_SECRET": client.client_secret,
                "EMBEDGATE_SECRET": EMBED_SECRET,
            }
        )
        server = make_server("127.0.0.1", app_port, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield Stack(idp, client, app, app_url)
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)


@pytest.fixture
def stack() -> Iterator[Stack]:
    with running_stack() as running:
        yield running


def login(
    stack: Stack, username: str, password: str, *, callback_status: int = 302
) -> tuple[httpx.Client, httpx.Response]:
    """Log in through the real redirects with one cookie jar for the app and one for the
    IdP; returns the app's client and the page the flow ends on (or the callback's answer
    when it is not the expected redirect)."""
    app = httpx.Client(timeout=10)
    idp = httpx.Client(timeout=10)
    response = app.get(f"{stack.app_url}/login")
    assert response.status_code == 302
    authorize = response.headers["location"]
    assert authorize.startswith(f"{stack.idp.issuer}/authorize?")
    assert "code_challenge_method=S256" in authorize
    assert "nonce=" in authorize
    response = idp.get(authorize)
    assert response.status_code == 302  # not logged in at the IdP yet: its login form
    form_page = idp.get(urljoin(stack.idp.issuer, response.headers["location"]))
    next_url = re.search(r'name="next" value="([^"]*)"', form_page.text)
    assert next_url is not None
    response = idp.post(
        f"{stack.idp.issuer}/login",
        data={
            "username": username,
            "password": password,
            "next": next_url.group(1).replace("&amp;", "&"),
        },
    )
    assert response.status_code == 302, response.text
    response = idp.get(urljoin(stack.idp.issuer, response.headers["location"]))
    assert response.status_code == 302, response.text
    callback = response.headers["location"]
    assert callback.startswith(f"{stack.app_url}/callback?code=")
    response = app.get(callback)
    idp.close()
    assert response.status_code == callback_status, response.text
    if callback_status != 302:
        return app, response
    page = app.get(urljoin(stack.app_url, response.headers["location"]))
    return app, page


def page_token(html: str) -> dict[str, Any] | None:
    """The payload of the injected ``#embedgate-token`` block (None if absent or null)."""
    match = TOKEN_BLOCK.search(html)
    if match is None:
        return None
    data: dict[str, Any] | None = without_binding(json.loads(match.group(1)))
    return data


def token_claims(token: str) -> dict[str, Any]:
    """The claims of an embed token, verified with the app's key."""
    return verify(
        token,
        KeySet([SigningKey.hmac(EMBED_SECRET)]),
        audience="embedgate",
        issuer="embedgate",
    )
