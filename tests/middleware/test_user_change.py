"""A session's cached tokens are purged by the middleware itself when the user they were
minted for changes or logs out, through both shells: no logout call to remember."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest

from embedgate import Engine
from embedgate.cache import MemoryCache
from tests.middleware.cases import make_engine
from tests.middleware.shells import SAME_ORIGIN, Shell, cookie_value

PAGE = b"<html><head><title>t</title></head><body>hello</body></html>"
ROUTES: dict[str, tuple[int, list[tuple[str, str]], bytes]] = {
    "/page": (200, [("Content-Type", "text/html; charset=utf-8")], PAGE),
    "/logout": (303, [("Location", "/"), ("Content-Length", "0")], b""),
    "/api": (200, [("Content-Type", "application/json")], b"{}"),
}


async def asgi_app(scope: Any, receive: Callable[[], Any], send: Callable[[Any], Any]) -> None:
    status, headers, body = ROUTES[scope["path"]]
    raw = [(n.lower().encode(), v.encode()) for n, v in headers]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    status, headers, body = ROUTES[environ["PATH_INFO"]]
    start_response(f"{status} X", headers)
    return [body]


def cached(engine: Engine) -> int:
    cache = engine.service.cache
    assert isinstance(cache, MemoryCache)
    return len(cache)


@pytest.fixture
def site(shell: Shell) -> tuple[Shell, Engine, Any]:
    engine = make_engine()
    return shell, engine, shell.wrap(engine, app=asgi_app if shell.kind == "asgi" else wsgi_app)


def login_alice(shell: Shell, app: Any, engine: Engine) -> list[tuple[str, str]]:
    first = shell.call(app, "GET", "/page", user="alice")
    assert b"embedgate-token" in first.body
    assert cached(engine) == 1
    return [("Cookie", f"embedgate_session={cookie_value(first)}")]


@pytest.mark.parametrize("path", ["/logout", "/page"])
def test_a_log_out_purges_the_sessions_tokens(site: Any, path: str) -> None:
    shell, engine, app = site
    cookie = login_alice(shell, app, engine)
    shell.call(app, "GET", path, cookie, user=None)  # the app cleared its session
    assert cached(engine) == 0


def test_the_endpoint_called_by_nobody_purges_too(site: Any) -> None:
    shell, engine, app = site
    cookie = login_alice(shell, app, engine)
    result = shell.token(app, user=None, headers=[*SAME_ORIGIN, *cookie])
    assert result.status == 401
    assert cached(engine) == 0


@pytest.mark.parametrize("path", ["/logout", "/page"])
def test_another_user_logging_in_on_the_same_browser_purges(site: Any, path: str) -> None:
    shell, engine, app = site
    cookie = login_alice(shell, app, engine)
    shell.call(app, "GET", path, cookie, user="bob")
    assert cached(engine) == (1 if path == "/page" else 0)  # bob's own token only
    token = shell.token(app, headers=[*SAME_ORIGIN, *cookie], user="bob")
    assert token.status == 200
    assert cached(engine) == 1


def test_the_same_user_keeps_the_tokens(site: Any) -> None:
    shell, engine, app = site
    cookie = login_alice(shell, app, engine)
    for path in ("/logout", "/page", "/api"):
        shell.call(app, "GET", path, cookie, user="alice")
    assert cached(engine) == 1


def test_a_request_that_says_nothing_about_the_user_purges_nothing(site: Any) -> None:
    shell, engine, app = site
    cookie = login_alice(shell, app, engine)
    shell.call(app, "GET", "/api", cookie, user=None)  # not a page, not a redirect
    assert cached(engine) == 1
