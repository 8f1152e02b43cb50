"""Both shells behind one face, so a test of the web rules runs through ASGI and WSGI alike.

The user comes from the request header ``X-Test-User`` through a ``user_resolver`` (the
token endpoint answers before the app runs, so it needs a resolver or an outer auth
middleware); pages are the tiny apps of :mod:`tests.middleware.cases`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from embedgate import Engine
from embedgate.asgi import EmbedgateMiddleware
from embedgate.wsgi import EmbedgateWSGIMiddleware
from tests.middleware.cases import WSGICaseApp, asgi_app
from tests.middleware.drivers import HeaderPairs, Result, asgi_direct, wsgi_direct

USER_HEADER = "X-Test-User"
SAME_ORIGIN = (("X-Embedgate", "1"), ("Sec-Fetch-Site", "same-origin"))


def _asgi_user(scope: Any) -> dict[str, str] | None:
    for name, value in scope["headers"]:
        if name == b"x-test-user":
            return {"sub": value.decode()}
    return None


def _wsgi_user(environ: Any) -> dict[str, str] | None:
    user = environ.get("HTTP_X_TEST_USER")
    return {"sub": user} if user else None


@dataclass(frozen=True)
class Shell:
    kind: str  # "asgi" or "wsgi"

    def wrap(
        self,
        engine: Engine,
        *,
        app: Any = None,
        session_resolver: Callable[[Any], Any] | None = None,
        user_resolver: Callable[[Any], Any] | None = None,
    ) -> Any:
        """The tiny app (or ``app``) behind this shell's middleware."""
        if self.kind == "asgi":
            return EmbedgateMiddleware(
                asgi_app if app is None else app,
                engine,
                user_resolver=user_resolver or _asgi_user,
                session_resolver=session_resolver,
            )
        return EmbedgateWSGIMiddleware(
            WSGICaseApp() if app is None else app,
            engine,
            user_resolver=user_resolver or _wsgi_user,
            session_resolver=session_resolver,
        )

    def call(
        self,
        app: Any,
        method: str,
        target: str,
        headers: HeaderPairs = (),
        *,
        user: str | None = None,
        **kw: Any,
    ) -> Result:
        pairs = list(headers) + ([(USER_HEADER, user)] if user else [])
        if self.kind == "asgi":
            return asgi_direct(app, method, target, pairs, **kw)
        return wsgi_direct(app, method, target, pairs, **kw)

    def token(self, app: Any, *, user: str | None = "alice", **kw: Any) -> Result:
        """POST the token endpoint the way embedgate.js does."""
        headers = list(kw.pop("headers", SAME_ORIGIN))
        return self.call(app, "POST", "/_embedgate/token", headers, user=user, **kw)


SHELLS = (Shell("asgi"), Shell("wsgi"))


def cookie_value(result: Result, name: str = "embedgate_session") -> str:
    """The session id a response set."""
    (cookie,) = result.all("set-cookie")
    first = cookie.split(";")[0]
    key, _, value = first.partition("=")
    assert key == name
    return value
