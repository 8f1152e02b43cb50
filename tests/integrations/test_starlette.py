"""The Starlette/FastAPI adapter: template globals, dependencies, logout, on real apps
driven through httpx's ASGI transport."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse
from jinja2 import DictLoader, Environment
from starlette.applications import Starlette
from starlette.authentication import AuthCredentials, AuthenticationBackend, SimpleUser
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from embedgate import ConfigurationError, Principal
from embedgate.asgi import EmbedgateMiddleware
from embedgate.integrations.fastapi import (
    EmbedTokenDep,
    install_templates,
    logout,
    middleware_for,
)
from tests.integrations.helpers import blocks, claims, iframe_token, page_token
from tests.support.net import free_port

pytestmark = pytest.mark.anyio

TOKEN = {"X-Embedgate": "1"}
TEMPLATES = {
    "page.html": (
        "<html><head><title>t</title></head><body>"
        '<p id="t">{{ embed_token() }}</p>'
        "{{ embed_snippet('iframe', 'sales', url='/embedded#token={token}') }}"
        "</body></html>"
    ),
    "script.html": "<html><head>{{ embed_script() }}</head><body>s</body></html>",
}
USERS = {"alice": Principal(subject="alice", tenant="acme"), "bob": Principal(subject="bob")}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # Starlette and FastAPI run on asyncio here


def templates() -> Jinja2Templates:
    env = Environment(loader=DictLoader(TEMPLATES), autoescape=True)
    return install_templates(Jinja2Templates(env=env))


def current_user(request: Request) -> Principal | None:
    """The app's auth: an ``x-user`` header; it hands the user over in request.state."""
    user = USERS.get(request.headers.get("x-user", ""))
    request.state.embedgate_user = user
    return user


user_dep = Annotated[Principal | None, Depends(current_user)]


def fastapi_app(**settings: Any) -> FastAPI:
    app = FastAPI()
    app.add_middleware(EmbedgateMiddleware, **settings)
    pages = templates()

    @app.get("/", response_class=HTMLResponse)
    def page(request: Request, user: user_dep) -> Response:
        request.state.csp_nonce = "n-123"
        return pages.TemplateResponse(request, "page.html")

    @app.get("/script", response_class=HTMLResponse)
    def script(request: Request, user: user_dep) -> Response:
        request.state.csp_nonce = "n-123"
        return pages.TemplateResponse(request, "script.html")

    @app.get("/api/token")
    async def api(user: user_dep, token: EmbedTokenDep) -> dict[str, str]:
        return {"token": token.token}

    @app.get("/both", response_class=HTMLResponse)
    def both(request: Request, user: user_dep, token: EmbedTokenDep) -> Response:
        return pages.TemplateResponse(request, "page.html", {"dep": token.token})

    @app.post("/logout")
    async def logout_route(request: Request) -> dict[str, int]:
        return {"purged": await logout(request)}

    return app


def client(app: Any, user: str | None = None) -> httpx.AsyncClient:
    headers = {"x-user": user} if user else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver", headers=headers
    )


async def test_helpers_and_injection_share_one_session_and_one_cookie() -> None:
    async with client(fastapi_app(), "alice") as c:
        response = await c.get("/")
    html = response.text
    token = page_token(html)
    assert token is not None
    assert claims(token)["sub"] == "alice"
    assert f'<p id="t">{token}</p>' in html  # the helper's token is the injected one
    assert iframe_token(html) == token  # one token per session serves every embed
    assert len(response.headers.get_list("set-cookie")) == 1
    assert response.headers["cache-control"] == "private, no-store"


def header_user(scope: Any) -> Principal | None:
    """A user_resolver: what embedgate's own endpoint (which no route serves) needs."""
    headers = dict(scope["headers"])
    return USERS.get(headers.get(b"x-user", b"").decode())


async def test_embed_script_page_gets_one_block_the_nonce_and_its_headers() -> None:
    async with client(fastapi_app(user_resolver=header_user), "alice") as c:
        response = await c.get("/script")
        answer = await c.post("/_embedgate/token", headers=TOKEN)
    (block,) = blocks(response.text)
    assert claims(block["token"])["sub"] == "alice"
    assert 'nonce="n-123"' in response.text
    assert response.headers["cache-control"] == "private, no-store"
    assert len(response.headers.get_list("set-cookie")) == 1
    assert answer.json()["token"] == block["token"]  # the cookie carried the session


async def test_the_dependency_answers_401_then_the_users_token() -> None:
    app = fastapi_app()
    async with client(app) as c:
        assert (await c.get("/api/token")).status_code == 401
    async with client(app, "bob") as c:
        page = page_token((await c.get("/")).text)
        token = (await c.get("/api/token")).json()["token"]
    assert claims(token)["sub"] == "bob"
    assert token == page


async def test_templates_reuse_the_token_the_dependency_fetched() -> None:
    async with client(fastapi_app(), "alice") as c:
        response = await c.get("/both")
    assert page_token(response.text) is not None
    assert f'<p id="t">{page_token(response.text)}</p>' in response.text
    assert len(response.headers.get_list("set-cookie")) == 1


async def test_logout_purges_the_sessions_tokens() -> None:
    app = fastapi_app()
    async with client(app, "alice") as c:
        before = page_token((await c.get("/")).text)
        assert page_token((await c.get("/")).text) == before
        assert (await c.post("/logout")).json() == {"purged": 1}
        after = page_token((await c.get("/")).text)
    assert after is not None
    assert after != before


async def test_a_failing_provider_gives_503_to_the_dependency_and_a_page_anyway(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = fastapi_app(
        provider="toucan", provider_url=f"http://127.0.0.1:{free_port()}", api_key="tc-k-1234"
    )
    with caplog.at_level(logging.WARNING, logger="embedgate"):
        async with client(app, "alice") as c:
            api = await c.get("/api/token")
            page = await c.get("/script")
    assert api.status_code == 503
    assert "retry-after" in api.headers
    assert page.status_code == 200
    assert blocks(page.text) == [None]
    assert "tc-k-1234" not in caplog.text


async def test_an_async_user_resolver_cannot_run_in_a_template_but_injection_works(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def resolver(scope: Any) -> Principal:
        return USERS["alice"]

    app = fastapi_app(user_resolver=resolver)
    with caplog.at_level(logging.WARNING, logger="embedgate"):
        async with client(app) as c:
            html = (await c.get("/")).text
    assert '<p id="t"></p>' in html
    token = page_token(html)
    assert token is not None
    assert claims(token)["sub"] == "alice"
    assert "async user_resolver" in caplog.text


async def test_plain_starlette_with_authentication_middleware() -> None:
    class HeaderAuth(AuthenticationBackend):
        async def authenticate(
            self, conn: HTTPConnection
        ) -> tuple[AuthCredentials, SimpleUser] | None:
            name = conn.headers.get("x-user")
            return (AuthCredentials(["authenticated"]), SimpleUser(name)) if name else None

    pages = templates()

    async def page(request: Request) -> Response:
        return pages.TemplateResponse(request, "script.html")

    app = Starlette(
        routes=[Route("/", page)],
        middleware=[  # authentication outside: embedgate's endpoint sees scope["user"]
            Middleware(AuthenticationMiddleware, backend=HeaderAuth()),
            Middleware(EmbedgateMiddleware),
        ],
    )
    async with client(app, "carol") as c:
        html = (await c.get("/")).text
        answer = await c.post("/_embedgate/token", headers=TOKEN)
    (block,) = blocks(html)
    assert claims(block["token"])["sub"] == "carol"
    assert answer.json()["token"] == block["token"]


async def test_without_the_middleware_helpers_render_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pages = templates()

    async def page(request: Request) -> Response:
        return pages.TemplateResponse(request, "page.html")

    app = Starlette(routes=[Route("/", page)])
    with caplog.at_level(logging.WARNING, logger="embedgate"):
        async with client(app) as c:
            html = (await c.get("/")).text
    assert '<p id="t"></p>' in html
    assert "needs the request and EmbedgateMiddleware" in caplog.text
    with pytest.raises(ConfigurationError, match="EmbedgateMiddleware"):
        middleware_for({"type": "http"})


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
def test_install_templates_wraps_template_response_once(anyio_backend: str) -> None:
    pages = templates()
    wrapped = pages.TemplateResponse
    assert install_templates(pages).TemplateResponse is wrapped
