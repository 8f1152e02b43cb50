"""WSGI middleware (PEP 3333): serves embedgate's routes and injects the token into HTML
pages. It only translates WSGI calls; the rules live in :mod:`embedgate.web.gate`.

It honours lazy ``start_response`` calls, ``exc_info``, the ``write()`` callable, and
always calls ``close()`` on the app's iterable (even when the server drops the response
unread). Responses it does not touch are returned as the app made them
(``wsgi.file_wrapper`` included).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Iterator
from http import HTTPStatus
from types import TracebackType
from typing import Any

from . import telemetry
from .errors import EmbedgateError
from .web.cache_policy import private_headers
from .web.endpoint import answer_token_request
from .web.gate import MiddlewareBase
from .web.headers import Headers
from .web.page import headers_after_injection, injected_length
from .web.token_block import request_binding
from .web.token_request import MAX_BODY
from .web.values import PagePlan, SessionDecision, WebRequest, WebResponse

Environ = dict[str, Any]
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
StartResponse = Callable[..., Callable[[bytes], object]]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]
Resolver = Callable[[Environ], Any]

USER_KEY = "embedgate.user"
_UNKNOWN: Any = object()


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
        root=_root(environ),
    )


def read_body(environ: Environ, limit: int = MAX_BODY + 1) -> bytes:
    """The request body, but no more than ``limit`` bytes. PEP 3333: never read past
    ``CONTENT_LENGTH`` (absent means no body, unless the server says ``wsgi.input_terminated``)."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    try:
        length = int(environ.get("CONTENT_LENGTH") or -1)
    except ValueError:
        length = -1
    if length < 0:
        if not environ.get("wsgi.input_terminated"):
            return b""
        length = limit
    data: bytes = stream.read(min(length, limit)) if length else b""
    return data


def _root(environ: Environ) -> str:
    return str(environ.get("SCRIPT_NAME", "")).rstrip("/")


def _status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


def _to_wsgi(raw: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(n.decode("latin-1"), v.decode("latin-1")) for n, v in raw]


class EmbedgateWSGIMiddleware(MiddlewareBase[WSGIApp]):
    """Add embed tokens to any WSGI app (Flask, Django, Werkzeug).

    ``user_resolver(environ)`` and ``session_resolver(environ)`` override where the user
    and the session id come from; by default the user is ``environ["embedgate.user"]`` or
    ``REMOTE_USER``, read after the app has run, and the session is embedgate's cookie.
    The token endpoint answers before the app runs: there the user must come from an outer
    layer (``REMOTE_USER``) or from ``user_resolver``.
    """

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        route = self.gate.route_path(environ.get("PATH_INFO", "") or "/")
        if route is not None:
            started = telemetry.start()
            response = self._serve(route, web_request(environ), environ)
            telemetry.endpoint_answered(route, response.status, started)
            start_response(_status_line(response.status), response.headers.to_wsgi())
            return [response.body]
        if not self.gate.config.inject:
            return self.app(environ, start_response)
        return _PageResponse(self, environ, start_response).run()

    def user(self, environ: Environ) -> Any:
        if self.user_resolver is not None:
            return self.user_resolver(environ)
        return environ_user(environ)

    def session(self, environ: Environ, request: WebRequest | None = None) -> SessionDecision:
        app_session = self.session_resolver(environ) if self.session_resolver else None
        return self.gate.session_for(
            environ.get("HTTP_COOKIE"),
            environ.get("wsgi.url_scheme", "http"),
            _root(environ),
            app_session,
        )

    def check_user(self, environ: Environ, principal: Any = _UNKNOWN) -> None:
        """Purge the session's tokens when the user they were minted for has changed or
        logged out (``principal``: who the request is for, looked up when not given)."""
        if self.session_resolver is not None:
            session_id = self.session_resolver(environ)
        else:
            session_id = self.gate.known_session_id(environ.get("HTTP_COOKIE"))
        if not self.gate.watches(session_id):
            return
        if principal is _UNKNOWN:
            try:
                principal = self.gate.principal_for(self.user(environ))
            except EmbedgateError:
                return  # a user the mapping cannot read: the page path logs it
        self.gate.settle_user(session_id, principal)

    def _serve(self, route: str, request: WebRequest, environ: Environ) -> WebResponse:
        if route == "script":
            return self.gate.script_response(request)
        if route == "jwks":
            return self.gate.jwks_response(request)
        body = read_body(environ) if request.method.upper() == "POST" else b""
        return answer_token_request(
            self.gate, request, body, self.user(environ), lambda: self.session(environ)
        )

    def logged_in(self, environ: Environ) -> bool:
        """Whether this request has a user tokens are minted for (errors count as yes)."""
        try:
            return self.gate.principal_for(self.user(environ)) is not None
        except EmbedgateError:
            return True

    def page_snippet(self, environ: Environ, plan: PagePlan) -> tuple[bytes | None, bytes | None]:
        """The snippet for a finished page and the cookie to set with it; (None, None)
        to leave the page alone (anonymous, refused, nowhere to put it)."""
        if plan.injector.insertion_point() is None:
            telemetry.injection(False, "no_insertion_point")
            return None, None
        decision = None
        try:
            principal = self.gate.principal_for(self.user(environ))
            if principal is None:
                telemetry.injection(False, "anonymous")
                self.check_user(environ, None)
                return None, None
            decision = self.session(environ)
            self.gate.settle_user(decision.session_id, principal)
            token = None
            if self.gate.needs_session_token(principal):
                token = self.engine.get_token(
                    principal, decision.session_id, deadline=self.engine.config.page_deadline
                )
        except EmbedgateError as error:
            if not self.gate.page_failure(error):
                return None, None
            decision, token = decision or self.session(environ), None
        snippet = self.gate.plan_snippet(_root(environ), plan, token, request_binding(environ))
        return snippet, decision.set_cookie


class _PageResponse:
    """One response of the wrapped app: passed through, or buffered and injected. When it
    is not returned untouched, it is the iterable the server gets (with ``close()``)."""

    def __init__(
        self, middleware: EmbedgateWSGIMiddleware, environ: Environ, start_response: StartResponse
    ) -> None:
        self.mw = middleware
        self.environ = environ
        self.start_response = start_response
        self.status: str | None = None
        self.headers: list[tuple[str, str]] = []
        self.exc_info: ExcInfo | None = None
        self.plan: PagePlan | None = None
        self.started = False  # the server's start_response has been called
        self.server_write: Callable[[bytes], object] | None = None
        self.app_iter: Iterable[bytes] | None = None
        self.generator: Generator[bytes, None, None] | None = None
        self.closed = False

    # -- what the app sees -------------------------------------------------------------

    def app_start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
    ) -> Callable[[bytes], object]:
        if exc_info is not None and self.started:
            raise exc_info[1].with_traceback(exc_info[2])  # PEP 3333: too late, re-raise
        self.status, self.headers, self.exc_info = status, headers, exc_info
        raw = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in headers]
        method = self.environ.get("REQUEST_METHOD", "GET")
        code = int(status.split(" ", 1)[0])
        self.plan = self.mw.gate.page_plan(method, code, raw)
        if self.plan is None:
            if 300 <= code < 400:  # after a log-in or a log-out, typically
                self.mw.check_user(self.environ)
            head = method.upper() == "HEAD" and self.mw.gate.page_plan("GET", code, raw)
            # A HEAD whose GET would carry a token answers with the same headers.
            self._start(self._private(raw) if head and self.mw.logged_in(self.environ) else headers)
        return self.app_write

    @staticmethod
    def _private(raw: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
        return _to_wsgi(private_headers(raw))

    def app_write(self, data: bytes) -> None:
        """The legacy ``write()`` callable."""
        out = self._feed(data)
        if out:
            assert self.server_write is not None
            self.server_write(out)

    # -- driving ----------------------------------------------------------------------

    def _start(self, headers: list[tuple[str, str]]) -> None:
        assert self.status is not None
        self.server_write = self.start_response(self.status, headers, self.exc_info)
        self.started = True

    def _feed(self, chunk: bytes, *, last: bool = False) -> bytes:
        plan = self.plan
        if plan is None:
            return chunk
        injector = plan.injector
        out = injector.feed(chunk)
        if injector.passthrough:  # over the buffer limit (or a data block): as it comes
            telemetry.injection(False, "too_large" if injector.overflowed else "no_insertion_point")
            self.plan = None
            self._start(self.headers)
        elif injector.ready:  # the point is known: stream the rest as it comes
            self.plan = None
            snippet, cookie = self.mw.page_snippet(self.environ, plan)
            out = injector.release(snippet)
            if not injector.injected or snippet is None:
                self._start(self.headers)
            else:
                added = injector.added(snippet)
                length = len(out) if last else injected_length(plan.headers, added)
                self._start(_to_wsgi(headers_after_injection(plan.headers, length, cookie)))
        return out

    def _finish(self) -> bytes:
        plan = self.plan
        if plan is None:
            return b""
        self.plan = None
        snippet, cookie = self.mw.page_snippet(self.environ, plan)
        body = plan.injector.finish(snippet)
        if plan.injector.injected:
            self._start(_to_wsgi(headers_after_injection(plan.headers, len(body), cookie)))
        else:
            self._start(self.headers)
        return body

    def run(self) -> Iterable[bytes]:
        app_iter = self.mw.app(self.environ, self.app_start_response)
        if self.started and self.plan is None:
            return app_iter  # untouched: keep file_wrapper, len() and close() as they are
        self.app_iter = app_iter
        return self

    def __iter__(self) -> Iterator[bytes]:
        if self.generator is None:
            self.generator = self._iterate()
        return self.generator

    def _iterate(self) -> Generator[bytes, None, None]:
        assert self.app_iter is not None
        try:
            # A list's last chunk is known: its page gets an exact Content-Length.
            count = len(self.app_iter) if isinstance(self.app_iter, list | tuple) else -1
            for index, chunk in enumerate(self.app_iter):
                if self.status is None:
                    raise RuntimeError("WSGI app yielded body data before start_response")
                out = self._feed(chunk, last=index == count - 1)
                if out:
                    yield out
            if self.status is None:
                raise RuntimeError("WSGI app returned without calling start_response")
            tail = self._finish()
            if tail:
                yield tail
        finally:
            self._close_app()

    def close(self) -> None:
        """Called by the server, iterated or not: the app's iterable is closed once."""
        if self.generator is not None:
            self.generator.close()
        self._close_app()

    def _close_app(self) -> None:
        if self.closed:
            return
        self.closed = True
        close = getattr(self.app_iter, "close", None)
        if close is not None:
            close()
