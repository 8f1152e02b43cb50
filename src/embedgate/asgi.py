"""Pure ASGI middleware (no ``BaseHTTPMiddleware``): serves embedgate's routes and injects
the token into HTML pages. It only translates ASGI messages; the rules live in
:mod:`embedgate.web.gate`. Per-request state lives in the call, never on the instance."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .engine import Engine
from .errors import EmbedgateError, PrincipalError
from .web.gate import SessionDecision, WebGate, WebRequest, WebResponse
from .web.headers import Headers
from .web.injection import HtmlInjector

log = logging.getLogger("embedgate")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Resolver = Callable[[Scope], Any]

STATE_KEYS = ("embedgate_principal", "embedgate_user")
SCOPE_KEY = "embedgate"  # the middleware, for dependencies and template helpers
SESSION_KEY = "embedgate.session"  # this request's SessionDecision, shared with template helpers


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def scope_user(scope: Scope) -> Any:
    """The app's user as the request leaves it: ``request.state.embedgate_principal`` /
    ``embedgate_user`` / ``user``, else an authenticated ``scope["user"]``."""
    state = scope.get("state")
    if isinstance(state, MutableMapping):
        for key in (*STATE_KEYS, "user"):
            if state.get(key) is not None:
                return state[key]
    user = scope.get("user")
    if user is not None and getattr(user, "is_authenticated", False):
        return user
    return None


def web_request(scope: Scope) -> WebRequest:
    headers = Headers(scope.get("headers") or [])
    host = headers.get_str("host")
    if not host:
        server = scope.get("server") or ("localhost", None)
        host = server[0] if server[1] is None else f"{server[0]}:{server[1]}"
    root = scope.get("root_path", "") or ""
    path = scope.get("path", "/")
    if root and path.startswith(root):
        path = path[len(root) :] or "/"
    return WebRequest(
        method=scope.get("method", "GET"),
        path=path,
        scheme=scope.get("scheme", "http"),
        host=host,
        headers=headers,
        root=root.rstrip("/"),
    )


async def send_response(send: Send, response: WebResponse) -> None:
    await send(
        {"type": "http.response.start", "status": response.status, "headers": response.headers.raw}
    )
    await send({"type": "http.response.body", "body": response.body})


class EmbedgateMiddleware:
    """Add embed tokens to any ASGI app (Starlette, FastAPI, Quart, Django ASGI).

    ``user_resolver(scope)`` and ``session_resolver(scope)`` (sync or async) override
    where the user and the session id come from; by default the user is read from
    ``request.state`` / ``scope["user"]`` at response time and the session is embedgate's
    own cookie. Settings are :class:`~embedgate.Config` fields as keyword arguments,
    else ``EMBEDGATE_*`` environment variables.
    """

    def __init__(
        self,
        app: ASGIApp,
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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope[SCOPE_KEY] = self
        request = web_request(scope)
        route = self.gate.route(request)
        if route is not None:
            await send_response(send, await self._serve(route, request, scope))
            return
        if not self.gate.config.inject:
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, _PageSend(self, scope, request, send))

    async def user(self, scope: Scope) -> Any:
        if self.user_resolver is not None:
            return await _maybe_await(self.user_resolver(scope))
        return scope_user(scope)

    async def session(self, scope: Scope, request: WebRequest) -> SessionDecision:
        known = scope.get(SESSION_KEY)
        if isinstance(known, SessionDecision):
            return known  # decided earlier in this request (a template helper minted with it)
        app_session = None
        if self.session_resolver is not None:
            app_session = await _maybe_await(self.session_resolver(scope))
        decision = scope[SESSION_KEY] = self.gate.session(request, app_session)
        return decision

    async def _serve(self, route: str, request: WebRequest, scope: Scope) -> WebResponse:
        if route == "script":
            return self.gate.script_response(request)
        if route == "jwks":
            return self.gate.jwks_response(request)
        early = self.gate.check_token_request(request)
        if early is not None:
            return early
        principal = self.engine.principal_for(await self.user(scope))
        if principal is None:
            return self.gate.unauthenticated()
        decision = await self.session(scope, request)
        early = self.gate.throttle(decision)
        if early is not None:
            return early
        try:
            token = await self.engine.service.aget_token(principal, decision.session_id)
        except EmbedgateError as error:
            return self.gate.failure(error, decision)
        return self.gate.token_response(token, decision)


class _PageSend:
    """The ``send`` handed to the app for one request: holds back an HTML response until
    its body is complete (or over the buffer limit), then injects the token."""

    def __init__(
        self, middleware: EmbedgateMiddleware, scope: Scope, request: WebRequest, send: Send
    ) -> None:
        self.middleware = middleware
        self.scope = scope
        self.request = request
        self.send = send
        self.start: Message | None = None
        self.headers = Headers()
        self.injector: HtmlInjector | None = None

    async def __call__(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            headers = Headers(message.get("headers") or [])
            if self.middleware.gate.wants_injection(
                self.request.method, message["status"], headers
            ):
                self.start, self.headers = message, headers
                self.injector = self.middleware.gate.injector(headers)
                return
        elif self.injector is not None and kind == "http.response.body":
            await self._body(message)
            return
        elif self.injector is not None:
            # A file response (http.response.pathsend) or an extension: give up injecting.
            await self._flush(self.injector.finish(None), more_body=True)
        await self.send(message)

    async def _flush(self, body: bytes, *, more_body: bool) -> None:
        self.injector = None
        if self.start is not None:
            await self.send(self.start)
            self.start = None
        if body or not more_body:
            await self.send({"type": "http.response.body", "body": body, "more_body": more_body})

    async def _body(self, message: Message) -> None:
        injector = self.injector
        assert injector is not None
        more_body = bool(message.get("more_body", False))
        out = injector.feed(message.get("body", b""))
        if injector.passthrough:
            if self.start is not None:
                await self.send(self.start)
                self.start = None
            if out or not more_body:
                await self.send({"type": "http.response.body", "body": out, "more_body": more_body})
            return
        if more_body:
            return
        self.injector = None
        snippet, decision = await self._snippet(injector)
        body = injector.finish(snippet)
        assert self.start is not None
        start = dict(self.start)
        if injector.injected and decision is not None:
            start["headers"] = self.middleware.gate.page_headers(
                self.headers, len(body), decision
            ).raw
        await self.send(start)
        self.start = None
        await self.send({"type": "http.response.body", "body": body, "more_body": False})

    async def _snippet(self, injector: HtmlInjector) -> tuple[str | None, SessionDecision | None]:
        if injector.insertion_point() is None:
            return None, None
        mw = self.middleware
        principal = mw.engine.principal_for(await mw.user(self.scope))
        if principal is None:
            return None, None
        decision = await mw.session(self.scope, self.request)
        try:
            token = await mw.engine.service.aget_token(principal, decision.session_id)
        except PrincipalError as error:
            log.warning("embedgate: no token injected, principal refused (%s)", error.field)
            return None, None
        except EmbedgateError as error:
            log.warning("embedgate: no token injected, issuance failed (%s)", type(error).__name__)
            token = None
        return mw.gate.page_snippet(self.request, self.headers, token), decision
