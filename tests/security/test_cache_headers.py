"""Shared caches must never keep a response that carries a token.

Every path a token leaves by is attacked with an app that sets every caching directive a
CDN or reverse proxy might obey (tests/security/headers.py HOSTILE), before and after
embedgate sees the response: injection, the template helpers, headers set after the
template response, after_request hooks, Flask's stream_template, HEAD, error pages and
the token endpoint, through the real Flask and Starlette/FastAPI adapters and the plain
ASGI/WSGI shells. Django is attacked over real servers in test_cache_headers_django.py.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from flask import Flask, Response, render_template_string, stream_template_string
from jinja2 import DictLoader, Environment
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route
from starlette.templating import Jinja2Templates
from werkzeug.test import Client

from embedgate import Principal
from embedgate.asgi import EmbedgateMiddleware
from embedgate.integrations.flask import EmbedGate
from embedgate.integrations.starlette import install_templates
from embedgate.wsgi import EmbedgateWSGIMiddleware
from tests.conftest import TEST_SECRET
from tests.integrations.helpers import blocks, iframe_token, page_token
from tests.security.headers import HOSTILE, assert_private

TOKEN = {"X-Embedgate": "1"}
PAGE = "<!doctype html><html><head><title>p</title></head><body>hello</body></html>"
SNIPPET_PAGE = (
    "<html><head><title>t</title></head><body>"
    "{{ embed_snippet('iframe', 'sales', url='/embedded#token={token}') }}"
    "<p>{{ embed_token() }}</p></body></html>"
)
ALICE = Principal(subject="alice", tenant="acme")


# -- Flask ---------------------------------------------------------------------------------


def flask_app() -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="flask-security-test", TESTING=True)

    @app.after_request
    def cdn_hints(response: Response) -> Response:  # registered before embedgate's
        if "hostile" in response.headers.get("X-Test", ""):
            response.headers["Surrogate-Control"] = "max-age=3600"
            response.headers["CDN-Cache-Control"] = "max-age=3600"
        return response

    ext = EmbedGate(app, secret=TEST_SECRET)

    @ext.user_loader
    def user() -> Principal | None:
        from flask import request

        return ALICE if request.headers.get("X-User") == "alice" else None

    def hostile(response: Response) -> Response:
        for name, value in HOSTILE:
            response.headers[name] = value
        response.headers["X-Test"] = "hostile"
        return response

    @app.route("/injected", methods=["GET", "HEAD"])
    def injected() -> Response:
        return hostile(Response(PAGE, mimetype="text/html"))

    @app.route("/helpers", methods=["GET", "HEAD"])
    def helpers() -> Response:
        # headers set by the app after the template response
        return hostile(Response(render_template_string(SNIPPET_PAGE)))

    @app.get("/stream")
    def stream() -> Response:
        return hostile(Response(stream_template_string(SNIPPET_PAGE)))

    @app.get("/json")
    def json_view() -> Response:
        # a token handed out in JSON by the app (template helper outside a page)
        return hostile(Response(render_template_string('{"t": "{{ embed_token() }}"}')))

    @app.errorhandler(404)
    def not_found(error: Exception) -> Response:
        return hostile(Response(render_template_string(SNIPPET_PAGE), status=404))

    return app


def _flask_get(path: str, method: str = "GET", **headers: str) -> Any:
    client = flask_app().test_client()
    return client.open(path, method=method, headers={"X-User": "alice", **headers})


@pytest.mark.parametrize("path", ["/injected", "/helpers", "/stream", "/json", "/missing"])
def test_flask_pages_carrying_a_token_leave_private(path: str) -> None:
    response = _flask_get(path)
    body = response.get_data(as_text=True)
    assert page_token(body) or iframe_token(body) or '"t": "ey' in body, path
    assert_private(response.headers.to_wsgi_list(), path)


@pytest.mark.parametrize("path", ["/injected", "/helpers"])
def test_flask_head_answers_with_the_headers_of_its_get(path: str) -> None:
    response = _flask_get(path, method="HEAD")
    assert response.get_data() == b""
    assert_private(response.headers.to_wsgi_list(), path)


def test_flask_token_endpoint_is_private_and_anonymous_pages_keep_their_caching() -> None:
    client = flask_app().test_client()
    answer = client.post("/_embedgate/token", headers={**TOKEN, "X-User": "alice"})
    assert answer.status_code == 200
    assert_private(answer.headers.to_wsgi_list())
    response = client.get("/injected")  # anonymous: no token, the app's caching stands
    assert blocks(response.get_data(as_text=True)) == []
    assert response.headers["Surrogate-Control"] == "max-age=3600"


# -- Starlette / FastAPI and the ASGI shell -------------------------------------------------


def starlette_app() -> Any:
    env = Environment(loader=DictLoader({"page.html": SNIPPET_PAGE}), autoescape=True)
    pages = install_templates(Jinja2Templates(env=env))

    def hostile(response: Any) -> Any:
        for name, value in HOSTILE:
            response.headers[name] = value
        return response

    async def injected(request: Request) -> HTMLResponse:
        return hostile(HTMLResponse(PAGE))

    def helpers(request: Request) -> Any:
        return hostile(pages.TemplateResponse(request, "page.html"))

    def failing(request: Request) -> Any:
        raise HTTPException(418)

    async def error_page(request: Request, exc: Exception) -> Any:
        return hostile(pages.TemplateResponse(request, "page.html", status_code=418))

    def user(scope: Any) -> Principal | None:
        headers = dict(scope.get("headers") or [])
        return ALICE if headers.get(b"x-user") == b"alice" else None

    app = Starlette(
        routes=[
            Route("/injected", injected, methods=["GET", "HEAD"]),
            Route("/helpers", helpers, methods=["GET", "HEAD"]),
            Route("/failing", failing),
        ],
        exception_handlers={418: error_page},
    )
    return EmbedgateMiddleware(app, secret=TEST_SECRET, user_resolver=user)


async def _asgi(method: str, path: str, **headers: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=starlette_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        return await c.request(method, path, headers={"x-user": "alice", **headers})


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/injected", "/helpers", "/failing"])
async def test_starlette_pages_carrying_a_token_leave_private(path: str) -> None:
    response = await _asgi("GET", path)
    assert page_token(response.text) or iframe_token(response.text), path
    assert_private(response.headers.multi_items(), path)


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/injected", "/helpers"])
async def test_asgi_head_answers_with_the_headers_of_its_get(path: str) -> None:
    response = await _asgi("HEAD", path)
    assert_private(response.headers.multi_items(), path)


@pytest.mark.anyio
async def test_asgi_token_endpoint_is_private() -> None:
    response = await _asgi("POST", "/_embedgate/token", **TOKEN)
    assert response.status_code == 200
    assert_private(response.headers.multi_items())


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# -- the WSGI shell ---------------------------------------------------------------------------


def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = PAGE.encode()
    start_response(
        "200 OK",
        [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(body))),
            *HOSTILE,
        ],
    )
    return [body] if environ["REQUEST_METHOD"] != "HEAD" else []


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_wsgi_shell_pages_leave_private(method: str) -> None:
    app = EmbedgateWSGIMiddleware(wsgi_app, secret=TEST_SECRET, user_resolver=lambda environ: ALICE)
    response = Client(app).open("/", method=method)
    if method == "GET":
        assert page_token(response.get_data(as_text=True))
    assert_private(response.headers.to_wsgi_list(), method)
    endpoint = Client(app).post("/_embedgate/token", headers=TOKEN)
    assert endpoint.status_code == 200
    assert_private(endpoint.headers.to_wsgi_list())
