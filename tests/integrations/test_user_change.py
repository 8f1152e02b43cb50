"""Flask and Starlette: a session's cached tokens are purged by embedgate itself when the
user they were minted for changes or logs out, with no logout call the host has to remember
(the session is simply emptied, or another user logs in over it). Django is covered on its
real servers in test_django.py; the raw shells in tests/middleware/test_user_change.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import redirect, session
from flask.testing import FlaskClient
from jinja2 import DictLoader, Environment
from starlette.applications import Starlette
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates
from starlette.testclient import TestClient

from embedgate import Engine, Principal
from embedgate.asgi import EmbedgateMiddleware
from embedgate.integrations.starlette import install_templates
from tests.conftest import TEST_SECRET
from tests.integrations.helpers import page_token
from tests.integrations.test_flask import make_app

# -- Flask -------------------------------------------------------------------------------------


@pytest.fixture
def flask_client() -> Iterator[FlaskClient]:
    app, _ = make_app()

    @app.post("/clear")
    def clear() -> Any:
        session.clear()  # Flask-Login's logout_user() is never called: no signal
        return redirect("/")

    with app.test_client() as client:
        yield client


def flask_page(client: FlaskClient) -> str | None:
    return page_token(client.get("/").get_data(as_text=True))


def test_flask_session_emptied_without_logout_user(flask_client: FlaskClient) -> None:
    flask_client.post("/login/alice")
    before = flask_page(flask_client)
    assert before is not None
    assert flask_page(flask_client) == before  # cached
    flask_client.post("/clear")
    flask_client.post("/login/alice")
    assert flask_page(flask_client) not in (None, before)


def test_flask_another_user_logging_in_over_the_session(flask_client: FlaskClient) -> None:
    flask_client.post("/login/alice")
    before = flask_page(flask_client)
    flask_client.post("/login/bob")  # no log-out in between
    flask_client.post("/login/alice")
    assert flask_page(flask_client) not in (None, before)


# -- Starlette ---------------------------------------------------------------------------------

PAGE = "<html><head>{{ embed_script() }}</head><body>dashboard</body></html>"


def starlette_app() -> Starlette:
    templates = install_templates(
        Jinja2Templates(env=Environment(loader=DictLoader({"page.html": PAGE}), autoescape=True))
    )

    def user(scope: Any) -> Principal | None:
        name = scope.get("session", {}).get("user")
        return Principal(subject=name) if name else None

    def page(request: Request) -> Response:
        return templates.TemplateResponse(request, "page.html")

    def login(request: Request) -> Response:
        request.session["user"] = request.path_params["name"]
        return RedirectResponse("/", 303)

    def clear(request: Request) -> Response:
        request.session.clear()  # embedgate's logout() is never called
        return RedirectResponse("/", 303)

    app = Starlette(
        routes=[
            Route("/", page),
            Route("/login/{name}", login, methods=["POST"]),
            Route("/clear", clear, methods=["POST"]),
        ]
    )
    engine = Engine.from_settings(environ={}, secret=TEST_SECRET)
    app.add_middleware(EmbedgateMiddleware, engine=engine, user_resolver=user)
    app.add_middleware(SessionMiddleware, secret_key="s" * 32)
    return app


@pytest.fixture
def starlette_client() -> Iterator[TestClient]:
    with TestClient(starlette_app(), follow_redirects=False) as client:
        yield client


def starlette_page(client: TestClient) -> str | None:
    return page_token(client.get("/").text)


def test_starlette_session_emptied_without_logout(starlette_client: TestClient) -> None:
    starlette_client.post("/login/alice")
    before = starlette_page(starlette_client)
    assert before is not None
    assert starlette_page(starlette_client) == before  # cached
    starlette_client.post("/clear")
    starlette_client.post("/login/alice")
    assert starlette_page(starlette_client) not in (None, before)


def test_starlette_another_user_logging_in_over_the_session(starlette_client: TestClient) -> None:
    starlette_client.post("/login/alice")
    before = starlette_page(starlette_client)
    starlette_client.post("/login/bob")
    starlette_client.post("/login/alice")
    assert starlette_page(starlette_client) not in (None, before)
