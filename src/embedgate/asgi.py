"""Pure ASGI middleware (no ``BaseHTTPMiddleware``): serves embedgate's routes and injects
the token into HTML pages. It only translates ASGI messages; the rules live in
:mod:`embedgate.web.gate`. Per-request state lives in the call, never on the instance."""

from __future__ import annotations

import asyncio
import inspect
import logging
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from . import telemetry
from .engine import Engine
from .errors import ConfigurationError, EmbedgateError, PrincipalError
from .settings import Settings, Unpack
from .web.cache_policy import private_headers
from .web.endpoint import aanswer_token_request
from .web.gate import MiddlewareBase
from .web.headers import Headers
from .web.page import headers_after_injection, injected_length
from .web.templating import PageHelpers
from .web.token_block import request_binding
from .web.token_request import MAX_BODY
from .web.values import PagePlan, SessionDecision, WebRequest, WebResponse

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Resolver = Callable[[Scope], Any]

log = logging.getLogger("embedgate")

STATE_KEYS = ("embedgate_principal", "embedgate_user")
SCOPE_KEY = "embedgate"  # the middleware, for dependencies and template helpers
PAGE_KEY = "embedgate.page"  # the request's template helpers (integrations.starlette)
SESSION_KEY = "embedgate.session"  # this request's SessionDecision, shared with template helpers


def _in_event_loop() -> bool:
    """Whether this runs inside an event loop: Starlette and FastAPI build their middleware
    lazily, on the first ASGI call (the lifespan's), where raising would only make the
    server report "lifespan unsupported" and answer 500 to every request."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        return True
    trio = sys.modules.get("trio")
    if trio is None:
        return False
    try:
        trio.lowlevel.current_root_task()
    except RuntimeError:
        return False
    return True


_UNKNOWN: Any = object()


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


def _root(scope: Scope) -> str:
    return str(scope.get("root_path", "") or "").rstrip("/")


def _relative_path(scope: Scope) -> str:
    root = scope.get("root_path", "") or ""
    path: str = scope.get("path", "/")
    if root and path.startswith(root):
        path = path[len(root) :] or "/"
    return path


def web_request(scope: Scope) -> WebRequest:
    headers = Headers(scope.get("headers") or [])
    host = headers.get_str("host")
    if not host:
        server = scope.get("server") or ("localhost", None)
        host = server[0] if server[1] is None else f"{server[0]}:{server[1]}"
    return WebRequest(
        method=scope.get("method", "GET"),
        path=_relative_path(scope),
        scheme=scope.get("scheme", "http"),
        host=host,
        headers=headers,
        root=_root(scope),
    )


def _cookie_header(scope: Scope) -> str | None:
    # HTTP/2 servers may pass the cookies as several headers: read them all.
    values = [value for name, value in scope.get("headers") or () if name == b"cookie"]
    return b"; ".join(values).decode("latin-1") if values else None


async def read_body(receive: Receive, limit: int = MAX_BODY + 1) -> bytes:
    """The request body, but no more than ``limit`` bytes (the rest is never read)."""
    body = bytearray()
    while len(body) < limit:
        message = await receive()
        if message.get("type") != "http.request":
            break  # http.disconnect
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    return bytes(body[:limit])


async def send_response(send: Send, response: WebResponse) -> None:
    await send(
        {"type": "http.response.start", "status": response.status, "headers": response.headers.raw}
    )
    await send({"type": "http.response.body", "body": response.body})


class EmbedgateMiddleware(MiddlewareBase[ASGIApp]):
    """Add embed tokens to any ASGI app (Starlette, FastAPI, Quart, Django ASGI).

    ``user_resolver(scope)`` and ``session_resolver(scope)`` (sync or async) override
    where the user and the session id come from; by default the user is read from
    ``request.state`` / ``scope["user"]`` at response time and the session is embedgate's
    own cookie. Settings are :class:`~embedgate.Config` fields as keyword arguments,
    else ``EMBEDGATE_*`` environment variables.

    The token endpoint answers before the app runs: there the user must come from an
    authentication middleware placed outside this one, or from ``user_resolver``.

    A configuration error raises here, when the app is built; when a framework builds its
    middleware on its first ASGI call (Starlette's ``add_middleware``), it fails the
    lifespan start-up instead, so the server refuses to start with the setting named.
    """

    startup_error: ConfigurationError | None = None
    _order_reported = False  # the middleware-order error is logged once

    def __init__(
        self,
        app: ASGIApp,
        engine: Engine | None = None,
        *,
        user_resolver: Resolver | None = None,
        session_resolver: Resolver | None = None,
        **settings: Unpack[Settings],
    ) -> None:
        try:
            super().__init__(
                app,
                engine,
                user_resolver=user_resolver,
                session_resolver=session_resolver,
                **settings,
            )
        except ConfigurationError as error:
            if not _in_event_loop():
                raise
            self.app, self.startup_error = app, error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.serve(self.app, scope, receive, send)

    async def serve(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call in front of ``app``: frameworks that build a middleware stack
        per route (Litestar) share one instance, and with it one gate, across their routes."""
        if self.startup_error is not None:
            await self._refuse(scope, receive, send, self.startup_error)
            return
        if scope["type"] != "http":
            await app(scope, receive, send)  # lifespan and websockets pass through
            return
        scope[SCOPE_KEY] = self
        headers = scope.get("headers")
        if type(headers) is not list and headers is not None:
            # Any iterable is allowed (ASGI): read once here, for us and for the app.
            scope["headers"] = list(headers)
        route = self.gate.route_path(_relative_path(scope))
        if route is not None:
            started = telemetry.start()
            response = await self._serve(route, web_request(scope), scope, receive)
            telemetry.endpoint_answered(route, response.status, started)
            await send_response(send, response)
            return
        # What the app's own middleware adds to the scope, seen from outside it.
        before = None if self._order_reported else ("session" in scope, "user" in scope)
        if self.gate.config.inject:
            await app(scope, receive, _PageSend(self, scope, send))
        else:
            await app(scope, receive, send)
        if before is not None:
            self._check_order(scope, before)

    def _check_order(self, scope: Scope, before: tuple[bool, bool]) -> None:
        """Log once, at ERROR, when a session or authentication middleware runs inside this
        one: the token endpoint answers before it runs, so it never sees who is logged in."""
        session = "session" in scope and not before[0]
        user = "user" in scope and not before[1] and self.user_resolver is None
        if not (session and self.user_resolver is not None) and not user:
            return
        self._order_reported = True
        needed = "SessionMiddleware" if session else "AuthenticationMiddleware"
        log.error(
            "embedgate: EmbedgateMiddleware runs outside %s, so its token endpoint cannot "
            "see who is logged in (every refresh answers 401). Starlette runs the middleware "
            "added last first: call app.add_middleware(EmbedgateMiddleware, ...) before "
            "app.add_middleware(%s, ...).",
            needed,
            needed,
        )

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, error: ConfigurationError
    ) -> None:
        """Fail the lifespan start-up with the configuration error (the server exits); a
        server running without lifespan gets the error on every request instead."""
        if scope["type"] != "lifespan":
            raise error
        message = await receive()
        if message.get("type") == "lifespan.startup":
            log.error("embedgate: cannot start: %s", error)
            await send({"type": "lifespan.startup.failed", "message": f"embedgate: {error}"})

    async def user(self, scope: Scope) -> Any:
        if self.user_resolver is not None:
            return await _maybe_await(self.user_resolver(scope))
        return scope_user(scope)

    async def session(self, scope: Scope, request: WebRequest | None = None) -> SessionDecision:
        """This request's session (decided once per request, shared with the templates)."""
        known = scope.get(SESSION_KEY)
        if isinstance(known, SessionDecision):
            return known  # decided earlier in this request (a template helper minted with it)
        app_session = None
        if self.session_resolver is not None:
            app_session = await _maybe_await(self.session_resolver(scope))
        decision = scope[SESSION_KEY] = self.gate.session_for(
            _cookie_header(scope), scope.get("scheme", "http"), _root(scope), app_session
        )
        return decision

    async def check_user(self, scope: Scope, principal: Any = _UNKNOWN) -> None:
        """Purge the session's tokens when the user they were minted for has changed or
        logged out (``principal``: who the request is for, looked up when not given)."""
        known = scope.get(SESSION_KEY)
        if isinstance(known, SessionDecision):
            session_id: str | None = known.session_id
        elif self.session_resolver is not None:
            session_id = await _maybe_await(self.session_resolver(scope))
        else:
            session_id = self.gate.known_session_id(_cookie_header(scope))
        if not self.gate.watches(session_id):
            return
        if principal is _UNKNOWN:
            try:
                principal = self.gate.principal_for(await self.user(scope))
            except EmbedgateError:
                return  # a user the mapping cannot read: the page path logs it
        await self.gate.asettle_user(session_id, principal)

    async def _serve(
        self, route: str, request: WebRequest, scope: Scope, receive: Receive
    ) -> WebResponse:
        if route == "script":
            return self.gate.script_response(request)
        if route == "jwks":
            return self.gate.jwks_response(request)
        body = await read_body(receive) if request.method.upper() == "POST" else b""
        return await aanswer_token_request(
            self.gate, request, body, await self.user(scope), lambda: self.session(scope)
        )

    async def logged_in(self, scope: Scope) -> bool:
        """Whether this request has a user tokens are minted for (errors count as yes)."""
        try:
            return self.gate.principal_for(await self.user(scope)) is not None
        except EmbedgateError:
            return True

    async def resolve_deferred(self, scope: Scope, page: PageHelpers, body: bytes) -> bytes:
        """Fill in what template helpers deferred (rendered on the event loop) through the
        async token service, for the user and session known now."""
        try:
            principal = self.gate.principal_for(await self.user(scope))
        except PrincipalError as error:
            log.warning("embedgate: no token for this user, principal refused (%s)", error.field)
            principal = None
        page.set_principal(principal)
        if principal is not None:
            page.use_session(await self.session(scope))
        return await page.deferred.aresolve(body)

    async def page_snippet(self, scope: Scope, plan: PagePlan) -> tuple[bytes | None, bytes | None]:
        """The snippet for a finished page and the cookie to set with it; (None, None)
        to leave the page alone (anonymous, refused, nowhere to put it)."""
        if plan.injector.insertion_point() is None:
            telemetry.injection(False, "no_insertion_point")
            return None, None
        if getattr(scope.get(PAGE_KEY), "script_rendered", False):
            return None, None  # the template wrote the block, maybe after </head>
        try:
            principal = self.gate.principal_for(await self.user(scope))
            if principal is None:
                telemetry.injection(False, "anonymous")
                await self.check_user(scope, None)
                return None, None
            decision = await self.session(scope)
            await self.gate.asettle_user(decision.session_id, principal)
            token = None
            if self.gate.needs_session_token(principal):
                token = await self.engine.aget_token(
                    principal, decision.session_id, deadline=self.engine.config.page_deadline
                )
        except EmbedgateError as error:
            if not self.gate.page_failure(error):
                return None, None
            decision, token = await self.session(scope), None
        snippet = self.gate.plan_snippet(_root(scope), plan, token, request_binding(scope))
        return snippet, decision.set_cookie


class _PageSend:
    """The ``send`` handed to the app for one request: holds back an HTML response until
    its body is complete (or over the buffer limit), then injects the token."""

    __slots__ = ("held", "middleware", "plan", "scope", "send", "start")

    def __init__(self, middleware: EmbedgateMiddleware, scope: Scope, send: Send) -> None:
        self.middleware = middleware
        self.scope = scope
        self.send = send
        self.start: Message | None = None
        self.plan: PagePlan | None = None
        self.held: bytearray | None = None  # the body, while deferred helpers wait for it

    async def __call__(self, message: Message) -> None:
        plan = self.plan
        if plan is None and self.start is not None:  # held for deferred helpers only
            await self._fill_deferred(message)
            return
        if plan is None:
            if message["type"] == "http.response.start":
                headers = message.get("headers")
                if type(headers) is not list:
                    # Any iterable is allowed (ASGI): read it once, send the copy.
                    headers = [] if headers is None else list(headers)
                    message = {**message, "headers": headers}
                raw = headers
                method = self.scope.get("method", "GET")
                self.plan = self.middleware.gate.page_plan(method, message["status"], raw)
                if self.plan is not None:
                    self.start = message
                    return
                if self._defers():
                    # Not a page to inject into (an error page, say), but template helpers
                    # rendered into it: hold it until their tokens are filled in.
                    self.start = message
                    return
                if 300 <= message["status"] < 400:  # after a log-in or a log-out, typically
                    await self.middleware.check_user(self.scope)
                if self._carries_token():
                    message = {**message, "headers": self._token_page_headers(raw)}
                elif await self._private_head(method, message):
                    message = {**message, "headers": private_headers(raw)}
            await self.send(message)
        elif message["type"] == "http.response.body":
            await self._body(plan, message)
        else:
            # A file (http.response.pathsend) or another extension: give up injecting.
            await self._release(plan.injector.finish(None), more_body=True)
            await self.send(message)

    async def _resolve(self, page: PageHelpers, message: Message) -> Message | None:
        """Hold the body until complete, fill in the deferred helpers, and fit the held
        start to the new body; None while more is to come."""
        if self.held is None:
            self.held = bytearray()
        self.held += message.get("body", b"")
        if message.get("more_body", False):
            return None
        body = await self.middleware.resolve_deferred(self.scope, page, bytes(self.held))
        self.held = None
        if self.start is not None:
            raw = [
                (n, v) for n, v in self.start.get("headers") or [] if n.lower() != b"content-length"
            ]
            headers = Headers([*raw, (b"content-length", str(len(body)).encode())])
            fitted = page.page_headers(headers, len(body), injected=False)
            self.start = {**self.start, "headers": (fitted or headers).raw}
        return {"type": "http.response.body", "body": body, "more_body": False}

    def _defers(self) -> bool:
        page = self.scope.get(PAGE_KEY)
        return isinstance(page, PageHelpers) and page.deferred.pending

    async def _fill_deferred(self, message: Message) -> None:
        """A response that is not injected into, held only so the template helpers'
        deferred tokens are filled in before it leaves."""
        page = self.scope.get(PAGE_KEY)
        if message["type"] == "http.response.body" and isinstance(page, PageHelpers):
            resolved = await self._resolve(page, message)
            if resolved is None:
                return
            message = resolved
        await self._send_start()
        await self.send(message)

    def _carries_token(self) -> bool:
        """Whether a template helper put a token in this response (see PageHelpers)."""
        page = self.scope.get(PAGE_KEY)
        return bool(getattr(page, "carries_token", False))

    def _token_page_headers(self, raw: Any) -> list[tuple[bytes, bytes]]:
        """Headers of a page a template helper put a token in: private, and with the
        session cookie when the helper started the session (unless already delivered)."""
        page: Any = self.scope.get(PAGE_KEY)
        decision = getattr(page, "decision", None)
        cookie = None
        if isinstance(decision, SessionDecision) and not page.cookie_delivered:
            cookie = decision.set_cookie
            page.cookie_delivered = True
        return private_headers(raw, set_cookie=cookie)

    async def _private_head(self, method: str, start: Message) -> bool:
        """A HEAD whose GET would carry a token answers with the same headers."""
        if method.upper() != "HEAD":
            return False
        gate = self.middleware.gate
        if gate.page_plan("GET", start["status"], start.get("headers") or []) is None:
            return False
        return await self.middleware.logged_in(self.scope)

    async def _send_start(self, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        """Send the held start once: as the app made it, or with ``headers``. A page a
        template helper put a token in leaves private whatever the app set."""
        start, self.start = self.start, None
        if start is None:
            return
        if headers is None and self._carries_token():
            headers = self._token_page_headers(start.get("headers") or [])
        await self.send(start if headers is None else {**start, "headers": headers})

    async def _release(self, body: bytes, *, more_body: bool) -> None:
        """Send the held start as the app made it, then ``body``; stop injecting."""
        self.plan = None
        await self._send_start()
        if body or not more_body:
            await self.send({"type": "http.response.body", "body": body, "more_body": more_body})

    async def _release_early(self, plan: PagePlan, more_body: bool) -> None:
        snippet, cookie = await self.middleware.page_snippet(self.scope, plan)
        injector = plan.injector
        body = injector.release(snippet)
        self.plan = None  # what follows goes straight to the server
        if not injector.injected or snippet is None:
            await self._send_start()
        else:
            length = (
                injected_length(plan.headers, injector.added(snippet)) if more_body else len(body)
            )
            await self._send_start(headers_after_injection(plan.headers, length, cookie))
        if body or not more_body:
            await self.send({"type": "http.response.body", "body": body, "more_body": more_body})

    async def _body(self, plan: PagePlan, message: Message) -> None:
        page = self.scope.get(PAGE_KEY)
        if isinstance(page, PageHelpers) and page.deferred.pending:
            resolved = await self._resolve(page, message)
            if resolved is None:
                return
            message = resolved
        more_body = message.get("more_body", False)
        out = plan.injector.feed(message.get("body", b""))
        if plan.injector.passthrough:  # over the buffer limit (or a data block): as it comes
            telemetry.injection(
                False, "too_large" if plan.injector.overflowed else "no_insertion_point"
            )
            await self._send_start()
            if out or not more_body:
                await self.send({"type": "http.response.body", "body": out, "more_body": more_body})
            if not more_body:
                self.plan = None
            return
        if plan.injector.ready:  # the point is known: stream the rest as it comes
            await self._release_early(plan, more_body)
            return
        if more_body:
            return
        snippet, cookie = await self.middleware.page_snippet(self.scope, plan)
        body = plan.injector.finish(snippet)
        if not plan.injector.injected:
            await self._release(body, more_body=False)
            return
        self.plan = None
        await self._send_start(headers_after_injection(plan.headers, len(body), cookie))
        await self.send({"type": "http.response.body", "body": body, "more_body": False})
