"""WSGI middleware (PEP 3333): serves embedgate's routes and injects the token into HTML
pages. It only translates WSGI calls; the rules live in :mod:`embedgate.web.gate`.

It honours lazy ``start_response`` calls, ``exc_info``, the ``write()`` callable, and
always calls ``close()`` on the app's iterable. Responses it does not touch are returned
as the app made them (``wsgi.file_wrapper`` included).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any

from .engine import Engine
from .errors import EmbedgateError, PrincipalError
from .web.gate import SessionDecision, WebGate, WebRequest, WebResponse
from .web.headers import Headers
from .web.injection import HtmlInjector

log = logging.getLogger("embedgate")

Environ = dict[str, Any]
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
StartResponse = Callable[..., Callable[[bytes], object]]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]
Resolver = Callable[[Environ], Any]

USER_KEY = "embedgate.user"


def environ_user(environ: Environ) -> Any:
    """``environ["embedgate.user"]`` (a Principal or user object), else ``REMOTE_USER``."""
    user = environ.get(USER_KEY)
    if user is not None:
        return user
    remote = environ.get("REMOTE_USER")
    return {"sub": remote} if remote else None


def web_request(environ: Environ) -> WebRequest:
    headers = Headers(
        (key[5:].replace("_", "-").lower().encode("latin-1"), str(value).encode("latin-1"))
        for key, value in environ.items()
        if key.startswith("HTTP_")
    )
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers.add(key.replace("_", "-").lower(), str(environ[key]))
    scheme = environ.get("wsgi.url_scheme", "http")
    host = environ.get("HTTP_HOST")
    if not host:
        port = environ.get("SERVER_PORT", "")
        default = {"http": "80", "https": "443"}.get(scheme)
        host = environ.get("SERVER_NAME", "localhost") + (
            "" if port in ("", default) else f":{port}"
        )
    return WebRequest(
        method=environ.get("REQUEST_METHOD", "GET"),
        path=environ.get("PATH_INFO", "") or "/",
        scheme=scheme,
        host=host,
        headers=headers,
        root=environ.get("SCRIPT_NAME", "").rstrip("/"),
    )


def _status_line(status: int) -> str:
    from http import HTTPStatus

    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


class EmbedgateWSGIMiddleware:
    """Add embed tokens to any WSGI app (Flask, Django, Werkzeug).

    ``user_resolver(environ)`` and ``session_resolver(environ)`` override where the user
    and the session id come from; by default the user is ``environ["embedgate.user"]`` or
    ``REMOTE_USER``, read after the app has run, and the session is embedgate's cookie.
    """

    def __init__(
        self,
        app: WSGIApp,
        engine: Engine | None = None,
        *,
        user_resolver: Resolver | None = None,
        session_resolver: Resolver | None = None,
        **settings: Any,
    ) -> None:
        self.app = app
        self.engine = engine if engine is not None else Engine.from_settings(**settings)
        self.gate = WebGate(self.engine)
        self.user_resolver = user_resolver
        self.session_resolver = session_resolver

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        request = web_request(environ)
        route = self.gate.route(request)
        if route is not None:
            response = self._serve(route, request, environ)
            start_response(_status_line(response.status), response.headers.to_wsgi())
            return [response.body]
        if not self.gate.config.inject:
            return self.app(environ, start_response)
        return _PageResponse(self, environ, request, start_response).run()

    def user(self, environ: Environ) -> Any:
        if self.user_resolver is not None:
            return self.user_resolver(environ)
        return environ_user(environ)

    def session(self, environ: Environ, request: WebRequest) -> SessionDecision:
        app_session = self.session_resolver(environ) if self.session_resolver else None
        return self.gate.session(request, app_session)

    def _serve(self, route: str, request: WebRequest, environ: Environ) -> WebResponse:
        if route == "script":
            return self.gate.script_response(request)
        if route == "jwks":
            return self.gate.jwks_response(request)
        early = self.gate.check_token_request(request)
        if early is not None:
            return early
        principal = self.engine.principal_for(self.user(environ))
        if principal is None:
            return self.gate.unauthenticated()
        decision = self.session(environ, request)
        early = self.gate.throttle(decision)
        if early is not None:
            return early
        try:
            token = self.engine.service.get_token(principal, decision.session_id)
        except EmbedgateError as error:
            return self.gate.failure(error, decision)
        return self.gate.token_response(token, decision)

    def snippet(
        self, environ: Environ, request: WebRequest, headers: Headers, injector: HtmlInjector
    ) -> tuple[str | None, SessionDecision | None]:
        """The snippet for a finished page and its session, or (None, None)."""
        if injector.insertion_point() is None:
            return None, None
        principal = self.engine.principal_for(self.user(environ))
        if principal is None:
            return None, None
        decision = self.session(environ, request)
        try:
            token = self.engine.service.get_token(principal, decision.session_id)
        except PrincipalError as error:
            log.warning("embedgate: no token injected, principal refused (%s)", error.field)
            return None, None
        except EmbedgateError as error:
            log.warning("embedgate: no token injected, issuance failed (%s)", type(error).__name__)
            token = None
        return self.gate.page_snippet(request, headers, token), decision


class _PageResponse:
    """One response of the wrapped app: passed through, or buffered and injected."""

    def __init__(
        self,
        middleware: EmbedgateWSGIMiddleware,
        environ: Environ,
        request: WebRequest,
        start_response: StartResponse,
    ) -> None:
        self.mw = middleware
        self.environ = environ
        self.request = request
        self.start_response = start_response
        self.status: str | None = None
        self.headers = Headers()
        self.exc_info: ExcInfo | None = None
        self.injector: HtmlInjector | None = None
        self.started = False  # the server's start_response has been called
        self.server_write: Callable[[bytes], object] | None = None

    # -- what the app sees -------------------------------------------------------------

    def app_start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
    ) -> Callable[[bytes], object]:
        if exc_info is not None and self.started:
            raise exc_info[1].with_traceback(exc_info[2])  # PEP 3333: too late, re-raise
        self.status, self.exc_info = status, exc_info
        self.headers = Headers.from_wsgi(headers)
        code = int(status.split(" ", 1)[0])
        if self.mw.gate.wants_injection(self.request.method, code, self.headers):
            self.injector = self.mw.gate.injector(self.headers)
        else:
            self.injector = None
            self._start(self.headers)
        return self.app_write

    def app_write(self, data: bytes) -> None:
        """The legacy ``write()`` callable."""
        for chunk in self._feed(data):
            self._server_write(chunk)

    # -- driving ----------------------------------------------------------------------

    def _start(self, headers: Headers) -> None:
        assert self.status is not None
        self.server_write = self.start_response(self.status, headers.to_wsgi(), self.exc_info)
        self.started = True

    def _server_write(self, data: bytes) -> None:
        if data:
            assert self.server_write is not None
            self.server_write(data)

    def _feed(self, chunk: bytes) -> list[bytes]:
        if self.injector is None:
            return [chunk]
        out = self.injector.feed(chunk)
        if self.injector.passthrough:
            self.injector = None
            self._start(self.headers)
        return [out] if out else []

    def _finish(self) -> bytes:
        injector = self.injector
        if injector is None:
            return b""
        self.injector = None
        snippet, decision = self.mw.snippet(self.environ, self.request, self.headers, injector)
        body = injector.finish(snippet)
        headers = self.headers
        if injector.injected and decision is not None:
            headers = self.mw.gate.page_headers(self.headers, len(body), decision)
        self._start(headers)
        return body

    def run(self) -> Iterable[bytes]:
        app_iter = self.mw.app(self.environ, self.app_start_response)
        if self.started and self.injector is None:
            return app_iter  # untouched: keep file_wrapper, len() and close() as they are
        return self._iterate(app_iter)

    def _iterate(self, app_iter: Iterable[bytes]) -> Iterator[bytes]:
        try:
            for chunk in app_iter:
                if self.status is None:
                    raise RuntimeError("WSGI app yielded body data before start_response")
                yield from self._feed(chunk)
            if self.status is None:
                raise RuntimeError("WSGI app returned without calling start_response")
            tail = self._finish()
            if not self.started:
                self._start(self.headers)
            if tail:
                yield tail
        except BaseException:
            if not self.started and self.status is not None:
                self.exc_info = sys.exc_info()  # type: ignore[assignment]
            raise
        finally:
            close = getattr(app_iter, "close", None)
            if close is not None:
                close()
