"""The Litestar plugin: the user from Litestar's authentication middleware
(``request.user``), the routes it registers, the ``embed_token`` dependency and the template
callables of Litestar's Jinja engine, on a real Litestar app."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar, MediaType, Request, get, post
from litestar.connection import ASGIConnection
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.middleware.base import DefineMiddleware
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.template.config import TemplateConfig
from litestar.testing import TestClient

from embedgate.integrations.litestar import EmbedGatePlugin, logout
from embedgate.token import EmbedToken
from tests.conftest import TEST_SECRET
from tests.integrations.helpers import blocks, claims, page_token

SAME_ORIGIN = {"X-Embedgate": "1", "Sec-Fetch-Site": "same-origin"}
TEMPLATES = {
    "script.html": "<html><head>{{ embed_script() }}</head><body>s</body></html>",
    "token.html": '<html><head></head><body><p id="t">{{ embed_token() }}</p></body></html>',
}


@dataclass
class User:
    username: str
    roles: tuple[str, ...] = ()


class HeaderAuth(AbstractAuthenticationMiddleware):
    """The app's auth: an ``x-user`` header; anonymous requests get no user."""

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> Any:
        name = connection.headers.get("x-user")
        return AuthenticationResult(user=User(name) if name else None, auth=None)


@get("/page", media_type=MediaType.HTML, sync_to_thread=False)
def page() -> str:
    return "<html><head><title>p</title></head><body>hello</body></html>"


@get("/script", sync_to_thread=False)
def script_page() -> Template:
    return Template(template_name="script.html")


@get("/token-page", sync_to_thread=False)
def token_page() -> Template:
    return Template(template_name="token.html")


@get("/api/token", sync_to_thread=False)
def api_token(embed_token: EmbedToken) -> dict[str, Any]:
    return {"token": embed_token.token}


@get("/api/maybe", sync_to_thread=False)
def api_maybe(optional_embed_token: EmbedToken | None) -> dict[str, Any]:
    return {"token": None if optional_embed_token is None else optional_embed_token.token}


@post("/logout")
async def do_logout(request: Request[Any, Any, Any]) -> dict[str, int]:
    return {"purged": await logout(request)}


@pytest.fixture(scope="module")
def template_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("litestar-templates")
    for name, text in TEMPLATES.items():
        (root / name).write_text(text)
    return root


@pytest.fixture
def client(template_dir: Path) -> Iterator[TestClient[Litestar]]:
    app = Litestar(
        [page, script_page, token_page, api_token, api_maybe, do_logout],
        middleware=[DefineMiddleware(HeaderAuth)],
        plugins=[EmbedGatePlugin(secret=TEST_SECRET, environ={})],
        template_config=TemplateConfig(directory=template_dir, engine=JinjaTemplateEngine),
    )
    with TestClient(app, base_url="http://127.0.0.1") as test_client:
        yield test_client


def test_page_injected_for_request_user(client: TestClient[Litestar]) -> None:
    response = client.get("/page", headers={"x-user": "alice"})
    assert response.status_code == 200
    token = page_token(response.text)
    assert token is not None
    assert claims(token)["sub"] == "alice"
    assert response.headers["cache-control"] == "private, no-store"
    assert response.cookies.get("embedgate_session")


def test_anonymous_page_untouched(client: TestClient[Litestar]) -> None:
    response = client.get("/page")
    assert blocks(response.text) == []
    assert "set-cookie" not in response.headers


def test_token_endpoint_is_routed_and_sees_request_user(client: TestClient[Litestar]) -> None:
    answer = client.post("/_embedgate/token", headers={**SAME_ORIGIN, "x-user": "bob"})
    assert answer.status_code == 200, answer.text
    assert claims(answer.json()["token"])["sub"] == "bob"
    anonymous = client.post("/_embedgate/token", headers=SAME_ORIGIN)
    assert anonymous.status_code == 401
    script = client.get("/_embedgate/embedgate.js")
    assert script.status_code == 200
    assert "embedgate" in script.text
    assert client.get("/_embedgate/jwks.json").status_code in (200, 404)


def test_cross_site_token_request_refused(client: TestClient[Litestar]) -> None:
    answer = client.post(
        "/_embedgate/token",
        headers={"x-user": "bob", "Sec-Fetch-Site": "cross-site", "X-Embedgate": "1"},
    )
    assert answer.status_code == 403


def test_template_callables(client: TestClient[Litestar]) -> None:
    response = client.get("/script", headers={"x-user": "alice"})
    (block,) = blocks(response.text)
    assert claims(block["token"])["sub"] == "alice"
    assert response.headers["cache-control"] == "private, no-store"
    session = response.cookies.get("embedgate_session")
    assert session
    # The same session's endpoint answers with the token the page carried.
    again = client.post("/_embedgate/token", headers={**SAME_ORIGIN, "x-user": "alice"})
    assert again.json()["token"] == block["token"]
    client.cookies.clear()  # a new visitor: the helper starts the session
    bare = client.get("/token-page", headers={"x-user": "carol"})
    assert bare.headers["cache-control"] == "private, no-store"
    assert bare.headers.get("set-cookie", "").startswith("embedgate_session=")
    # embed_token() in the body, no block written by the template: the injection adds one.
    token = bare.text.split('<p id="t">')[1].split("</p>")[0]
    assert claims(token)["sub"] == "carol"


def test_dependency(client: TestClient[Litestar]) -> None:
    assert client.get("/api/token").status_code == 401
    answer = client.get("/api/token", headers={"x-user": "alice"})
    assert claims(answer.json()["token"])["sub"] == "alice"
    assert client.get("/api/maybe").json() == {"token": None}


def test_logout_purges(client: TestClient[Litestar]) -> None:
    first = client.post("/_embedgate/token", headers={**SAME_ORIGIN, "x-user": "alice"})
    assert first.status_code == 200
    purged = client.post("/logout", headers={"x-user": "alice"})
    assert purged.json()["purged"] >= 1
    second = client.post("/_embedgate/token", headers={**SAME_ORIGIN, "x-user": "alice"})
    assert second.json()["token"] != first.json()["token"]
