"""Middleware in the wrong order (embedgate outside the session or authentication middleware
it needs) is reported once, at ERROR, with the fix; the right order is not."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.authentication import AuthCredentials, AuthenticationBackend, SimpleUser
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from embedgate.asgi import EmbedgateMiddleware
from tests.conftest import TEST_SECRET


def page(request: Request) -> HTMLResponse:
    return HTMLResponse("<html><head></head><body>hi</body></html>")


def from_session(scope: Any) -> dict[str, str] | None:
    name = scope.get("session", {}).get("user")
    return {"sub": name} if name else None


class HeaderAuth(AuthenticationBackend):
    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, SimpleUser]:
        return AuthCredentials(["authenticated"]), SimpleUser("alice")


def app_with(order: str, kind: str) -> Starlette:
    app = Starlette(routes=[Route("/", page)])
    embedgate: dict[str, Any] = {"secret": TEST_SECRET}
    if kind == "session":
        embedgate["user_resolver"] = from_session
        inner: tuple[Any, dict[str, Any]] = (SessionMiddleware, {"secret_key": "k" * 32})
    else:
        inner = (AuthenticationMiddleware, {"backend": HeaderAuth()})
    if order == "right":  # embedgate first, so the other one (added last) is outermost
        app.add_middleware(EmbedgateMiddleware, **embedgate)
        app.add_middleware(inner[0], **inner[1])
    else:
        app.add_middleware(inner[0], **inner[1])
        app.add_middleware(EmbedgateMiddleware, **embedgate)
    return app


def order_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.ERROR and "runs outside" in r.getMessage()
    ]


@pytest.mark.parametrize("kind", ["session", "user"])
def test_the_wrong_order_is_logged_once_with_the_fix(
    caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    with (
        caplog.at_level(logging.INFO, logger="embedgate"),
        TestClient(app_with("wrong", kind)) as c,
    ):
        for _ in range(3):
            assert c.get("/").status_code == 200
    (message,) = order_errors(caplog)
    needed = "SessionMiddleware" if kind == "session" else "AuthenticationMiddleware"
    assert f"outside {needed}" in message
    assert (
        f"app.add_middleware(EmbedgateMiddleware, ...) before app.add_middleware({needed}"
        in message
    )
    assert "added last" in message


@pytest.mark.parametrize("kind", ["session", "user"])
def test_the_right_order_is_quiet(caplog: pytest.LogCaptureFixture, kind: str) -> None:
    with (
        caplog.at_level(logging.INFO, logger="embedgate"),
        TestClient(app_with("right", kind)) as c,
    ):
        for _ in range(3):
            assert c.get("/").status_code == 200
    assert order_errors(caplog) == []
