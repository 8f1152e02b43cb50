"""The user is read when the response starts, wherever the app put
it during the request: Starlette's ``scope["user"]``, ``request.state`` set by a view or a
FastAPI dependency, ``environ["embedgate.user"]`` or ``REMOTE_USER``, or a resolver."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import flask
import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse
from starlette.applications import Starlette
from starlette.authentication import AuthCredentials, AuthenticationBackend, SimpleUser
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.routing import Route

from embedgate import Engine, Principal
from embedgate.asgi import EmbedgateMiddleware
from embedgate.wsgi import EmbedgateWSGIMiddleware
from tests.middleware.cases import PAGE, make_engine
from tests.middleware.checks import claims_of, find_snippets
from tests.middleware.drivers import Result, asgi_direct, wsgi_direct
from tests.middleware.shells import SAME_ORIGIN


@pytest.fixture(scope="module")
def engine() -> Engine:
    return make_engine()


def token_claims(engine: Engine, result: Result) -> dict[str, Any] | None:
    """The claims of the token injected into a page, or None if nothing was injected."""
    assert result.status == 200
    snippets = find_snippets(result.body)
    if not snippets:
        assert result.body == PAGE
        return None
    assert len(snippets) == 1
    assert snippets[0].payload is not None
    return claims_of(engine, snippets[0].payload["token"])


# -- ASGI --------------------------------------------------------------------------------------


class HeaderAuth(AuthenticationBackend):
    """Authenticates ``X-Login: <name>``, as a session or token backend would."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, SimpleUser] | None:
        name = conn.headers.get("x-login")
        return (AuthCredentials(["authenticated"]), SimpleUser(name)) if name else None


async def page(request: Any) -> Response:
    return Response(PAGE, media_type="text/html")


def starlette_app(*, embedgate_outermost: bool, engine: Engine) -> Starlette:
    auth = Middleware(AuthenticationMiddleware, backend=HeaderAuth())
    gate = Middleware(EmbedgateMiddleware, engine=engine)
    stack = [gate, auth] if embedgate_outermost else [auth, gate]
    return Starlette(routes=[Route("/", page)], middleware=stack)


@pytest.mark.parametrize("outermost", [True, False], ids=["embedgate-outside", "auth-outside"])
def test_starlette_authentication_middleware_user(engine: Engine, outermost: bool) -> None:
    app = starlette_app(embedgate_outermost=outermost, engine=engine)
    claims = token_claims(engine, asgi_direct(app, "GET", "/", [("X-Login", "carol")]))
    assert claims is not None
    assert claims["sub"] == "carol"
    assert token_claims(engine, asgi_direct(app, "GET", "/")) is None  # UnauthenticatedUser


def test_the_endpoint_sees_scope_user_when_auth_runs_outside(engine: Engine) -> None:
    app = starlette_app(embedgate_outermost=False, engine=engine)
    result = asgi_direct(app, "POST", "/_embedgate/token", [("X-Login", "carol"), *SAME_ORIGIN])
    assert result.status == 200
    assert claims_of(engine, result.json()["token"])["sub"] == "carol"


def test_a_starlette_view_setting_request_state(engine: Engine) -> None:
    async def view(request: Any) -> Response:
        request.state.embedgate_user = {"sub": "dave", "email": "dave@example.com"}
        return Response(PAGE, media_type="text/html")

    app = EmbedgateMiddleware(Starlette(routes=[Route("/", view)]), engine)
    claims = token_claims(engine, asgi_direct(app, "GET", "/"))
    assert claims is not None
    assert (claims["sub"], claims["email"]) == ("dave", "dave@example.com")


def test_a_fastapi_dependency_setting_request_state_principal(engine: Engine) -> None:
    async def current_user(request: Request) -> str:
        # Runs after the middleware saw the request, before the response starts.
        request.state.embedgate_principal = Principal(subject="erin", roles=("analyst",))
        return "erin"

    api = FastAPI()

    @api.get("/", response_class=HTMLResponse)
    async def home(user: str = Depends(current_user)) -> str:
        return PAGE.decode()

    app = EmbedgateMiddleware(api, engine)
    claims = token_claims(engine, asgi_direct(app, "GET", "/"))
    assert claims is not None
    assert (claims["sub"], claims["roles"]) == ("erin", ["analyst"])
    # A route without the dependency: nobody logged in, nothing injected.
    api.add_api_route("/open", lambda: HTMLResponse(PAGE.decode()))
    assert token_claims(engine, asgi_direct(app, "GET", "/open")) is None


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_an_asgi_resolver_runs_at_response_time(engine: Engine, kind: str) -> None:
    async def view(request: Any) -> Response:
        request.state.account = "frank"  # the app's own name for it
        return Response(PAGE, media_type="text/html")

    def sync_resolver(scope: Any) -> Principal | None:
        account = scope.get("state", {}).get("account")
        return Principal(subject=account) if account else None

    async def async_resolver(scope: Any) -> Principal | None:
        return sync_resolver(scope)

    resolver = sync_resolver if kind == "sync" else async_resolver
    app = EmbedgateMiddleware(Starlette(routes=[Route("/", view)]), engine, user_resolver=resolver)
    claims = token_claims(engine, asgi_direct(app, "GET", "/"))
    assert claims is not None
    assert claims["sub"] == "frank"


# -- WSGI --------------------------------------------------------------------------------------


def test_a_flask_view_setting_environ_user(engine: Engine) -> None:
    app = flask.Flask(__name__)

    @app.get("/")
    def home() -> flask.Response:
        flask.request.environ["embedgate.user"] = {"sub": "gina"}
        return flask.Response(PAGE, mimetype="text/html")

    @app.get("/open")
    def open_page() -> flask.Response:
        return flask.Response(PAGE, mimetype="text/html")

    app.wsgi_app = EmbedgateWSGIMiddleware(app.wsgi_app, engine)  # type: ignore[method-assign]
    claims = token_claims(engine, wsgi_direct(app, "GET", "/"))
    assert claims is not None
    assert claims["sub"] == "gina"
    assert token_claims(engine, wsgi_direct(app, "GET", "/open")) is None


def plain_page(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/html"), ("Content-Length", str(len(PAGE)))])
    return [PAGE]


def test_remote_user_from_the_server_or_an_outer_auth_layer(engine: Engine) -> None:
    app = EmbedgateWSGIMiddleware(plain_page, engine)
    claims = token_claims(engine, wsgi_direct(app, "GET", "/", extra={"REMOTE_USER": "hank"}))
    assert claims is not None
    assert claims["sub"] == "hank"
    assert token_claims(engine, wsgi_direct(app, "GET", "/", extra={"REMOTE_USER": ""})) is None


def test_a_wsgi_resolver_runs_after_the_app(engine: Engine) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        environ["myapp.account"] = "ivy"
        return plain_page(environ, start_response)

    def resolver(environ: dict[str, Any]) -> dict[str, str] | None:
        account = environ.get("myapp.account")
        return {"sub": account} if account else None

    claims = token_claims(
        engine,
        wsgi_direct(EmbedgateWSGIMiddleware(app, engine, user_resolver=resolver), "GET", "/"),
    )
    assert claims is not None
    assert claims["sub"] == "ivy"


# -- a user the mapping cannot read ------------------------------------------------------------


def test_a_user_without_an_id_leaves_the_page_alone_instead_of_failing_it(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    def nameless(_: Any) -> dict[str, str]:
        return {"email": "nobody@example.com"}  # no "sub" claim

    async def asgi_page(scope: Any, receive: Any, send: Any) -> None:
        await Response(PAGE, media_type="text/html")(scope, receive, send)

    asgi = EmbedgateMiddleware(asgi_page, engine, user_resolver=nameless)
    wsgi = EmbedgateWSGIMiddleware(plain_page, engine, user_resolver=nameless)
    for result in (asgi_direct(asgi, "GET", "/"), wsgi_direct(wsgi, "GET", "/")):
        assert result.status == 200
        assert result.body == PAGE
    assert "principal refused (subject)" in caplog.text
