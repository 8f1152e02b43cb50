"""Quart: ``EmbedGate(app)``, or ``ext = EmbedGate()`` then ``ext.init_app(app)`` — the Flask
extension's shape on Quart's async request cycle.

Settings are ``EMBEDGATE_*`` keys of ``app.config``, then the environment. The user is
Quart-Auth's ``current_user`` when it is set up and authenticated, else ``g.user``, else what
the function registered with :meth:`EmbedGate.user_loader` (sync or async) returns. The
token endpoint, script and JWKS are a blueprint named ``embedgate`` under
``EMBEDGATE_PREFIX``; HTML pages get the token in an ``after_request`` function (request
context and ``current_user`` still alive), streamed bodies as they pass. Templates get the
async globals ``embed_token()``, ``embed_snippet(kind, resource=None, **options)``,
``embed_script()`` and ``embed_binding()`` (Quart renders templates asynchronously: a
remote mint never blocks the event loop).

Per-app state (engine, gate) lives in ``app.extensions["embedgate"]``; per-request state in
``g``. The rules are those every shell uses (:mod:`embedgate.web`), through their async face.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, TypeVar

from markupsafe import Markup
from quart import Blueprint, Quart, Response, current_app, g, has_request_context, request
from quart.wrappers.response import DataBody, IterableBody, ResponseBody

from .. import telemetry
from ..asgi import web_request
from ..engine import Engine
from ..errors import ConfigurationError, EmbedgateError, PrincipalError
from ..settings import Settings, Unpack
from ..web.cache_policy import private_headers
from ..web.endpoint import aanswer_token_request
from ..web.gate import WebGate
from ..web.headers import Headers
from ..web.page import injected_length
from ..web.templating import PageHelpers, fed_injector, trusted_markup
from ..web.token_block import request_binding
from ..web.token_request import MAX_BODY
from ..web.values import SessionDecision, WebResponse

__all__ = ["EXTENSION_KEY", "EmbedGate", "EmbedGateState"]

log = logging.getLogger("embedgate")

EXTENSION_KEY = "embedgate"
_PAGE = "_embedgate_page"  # the request's PageHelpers, in quart.g
_USER = "_embedgate_user"  # the request's user, looked up once (async)
_UNKNOWN: Any = object()

UserLoader = Callable[[], Any]
NonceSource = Callable[[], "str | None"]
F = TypeVar("F", bound=UserLoader)


@dataclass(frozen=True)
class EmbedGateState:
    """What one app's ``app.extensions["embedgate"]`` holds."""

    extension: EmbedGate
    engine: Engine
    gate: WebGate


def _state(app: Quart | None = None) -> EmbedGateState:
    target = app if app is not None else current_app
    state = target.extensions.get(EXTENSION_KEY)
    if not isinstance(state, EmbedGateState):
        raise ConfigurationError(
            "EmbedGate", "is not set up on this app; call EmbedGate(app) or ext.init_app(app)"
        )
    return state


class _AuthenticatedUser:
    """A Quart-Auth user known to be authenticated, as the claim mapping reads users:
    ``is_authenticated`` is a plain True (Quart-Auth's is a coroutine) and ``id`` falls back
    to ``auth_id``; everything else is the user's own."""

    is_authenticated = True

    def __init__(self, user: Any) -> None:
        self._user = user

    def __getattr__(self, name: str) -> Any:
        if name == "id":
            value = getattr(self._user, "id", None)
            return value if value is not None else self._user.auth_id
        return getattr(self._user, name)


async def _quart_auth_user() -> Any:
    if not current_app.extensions.get("QUART_AUTH"):
        return None
    try:
        from quart_auth import current_user
    except ImportError:  # pragma: no cover - quart-auth is optional
        return None
    user = current_user._get_current_object()  # type: ignore[attr-defined]
    if not await user.is_authenticated:
        return None
    return _AuthenticatedUser(user) if hasattr(user, "auth_id") else user


def _scope() -> MutableMapping[str, Any]:
    return request.scope  # type: ignore[return-value]


def _cookie_header() -> str | None:
    # Several Cookie headers (HTTP/2, Quart's test client): read them all.
    return "; ".join(request.headers.getlist("Cookie")) or None


def _raw(response: Response) -> list[tuple[bytes, bytes]]:
    return Headers.from_wsgi(list(response.headers.items())).raw


def _to_quart(response: WebResponse) -> Response:
    out = Response(response.body, status=response.status)
    out.headers.clear()
    out.headers.extend(response.headers.to_wsgi())  # not Quart's default text/html (304)
    return out


def _set_headers(response: Response, raw: list[tuple[bytes, bytes]]) -> None:
    response.headers.clear()
    response.headers.extend(Headers(raw).to_wsgi())


async def _read_body(limit: int = MAX_BODY + 1) -> bytes:
    """The request body, but no more than ``limit`` bytes (the rest is never read)."""
    body = bytearray()
    async for chunk in request.body:
        body += chunk
        if len(body) >= limit:
            break
    return bytes(body[:limit])


async def _chain(head: list[bytes], rest: AsyncIterator[Any], body: ResponseBody) -> Any:
    try:
        for chunk in head:
            if chunk:
                yield chunk
        async for chunk in rest:
            yield chunk
    finally:
        await body.__aexit__(None, None, None)  # type: ignore[arg-type]


class EmbedGate:
    """The Quart extension.

    ``settings`` are :class:`~embedgate.Config` field names overriding ``app.config`` for
    every app; ``csp_nonce()`` returns the page's CSP nonce (default: ``g.csp_nonce``).
    """

    def __init__(
        self,
        app: Quart | None = None,
        *,
        csp_nonce: NonceSource | None = None,
        **settings: Unpack[Settings],
    ) -> None:
        self._settings = settings
        self._csp_nonce = csp_nonce
        self._user_loader: UserLoader | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Quart, *, engine: Engine | None = None) -> None:
        """Validate the settings, register the routes, the hooks and the template globals."""
        if engine is None:
            engine = Engine.from_settings(app.config, **self._settings)
        gate = WebGate(engine)
        app.extensions[EXTENSION_KEY] = EmbedGateState(self, engine, gate)

        blueprint = Blueprint("embedgate", __name__)
        blueprint.add_url_rule(
            "/token", "token", _timed("token", self._token_view), methods=["GET", "POST"]
        )
        blueprint.add_url_rule("/embedgate.js", "script", _timed("script", self._script_view))
        blueprint.add_url_rule("/jwks.json", "jwks", _timed("jwks", self._jwks_view))
        app.register_blueprint(blueprint, url_prefix=engine.config.prefix or None)
        # Run after every other after_request function of the app (called in reverse order
        # of registration): headers those set cannot undo no-store.
        app.after_request_funcs.setdefault(None, []).insert(0, self._after_request)
        app.add_template_global(self._embed_token, "embed_token")
        app.add_template_global(self._embed_snippet, "embed_snippet")
        app.add_template_global(self._embed_script, "embed_script")
        app.add_template_global(self._embed_binding, "embed_binding")

    # -- public API ------------------------------------------------------------------------

    def user_loader(self, loader: F) -> F:
        """Register the function (sync or async) returning the current user (Principal or
        user object), used when neither Quart-Auth nor ``g.user`` has one."""
        self._user_loader = loader
        return loader

    @property
    def engine(self) -> Engine:
        """The current app's engine."""
        return _state().engine

    async def current_user(self) -> Any:
        """The user embed tokens are for in this request, or None (looked up once)."""
        user = g.get(_USER, _UNKNOWN)
        if user is not _UNKNOWN:
            return user
        user = await _quart_auth_user()
        if user is None:
            user = g.get("user")
        if user is None and self._user_loader is not None:
            user = self._user_loader()
            if inspect.isawaitable(user):
                user = await user
        setattr(g, _USER, user)
        return user

    def forget_user(self) -> None:
        """Look the user up again (after ``login_user``/``logout_user`` in this request)."""
        g.pop(_USER, None)
        page = g.get(_PAGE)
        if isinstance(page, PageHelpers):
            g.pop(_PAGE)

    async def helpers(self) -> PageHelpers:
        """This request's template helpers (created on first use, the user resolved)."""
        page = g.get(_PAGE)
        if isinstance(page, PageHelpers):
            return page
        state = _state()
        scope = _scope()
        page = PageHelpers(
            state.gate,
            web_request(scope),
            principal=lambda: None,
            nonce=self._nonce,
            binding=lambda: request_binding(scope),
        )
        try:
            page.set_principal(state.gate.principal_for(await self.current_user()))
        except PrincipalError as error:
            log.warning("embedgate: no token for this user, principal refused (%s)", error.field)
            page.set_principal(None)
        setattr(g, _PAGE, page)
        return page

    async def token(self, resource: str | None = None) -> Any:
        """The current user's token for this session (None when anonymous); raises
        :class:`~embedgate.EmbedgateError` when issuance fails."""
        state = _state()
        if resource is None:
            state.gate.check_session_tokens()
        principal = state.gate.principal_for(await self.current_user())
        if principal is None:
            return None
        page = await self.helpers()
        token = await state.engine.aget_token(
            principal,
            page.session().session_id,
            resource,
            deadline=state.engine.config.page_deadline,
        )
        page.remember(resource, token)
        return token

    async def logout(self) -> int:
        """Purge the current session's tokens; call it from your logout view (next to
        Quart-Auth's ``logout_user()``). Returns how many went."""
        state = _state()
        page = g.pop(_PAGE, None)
        g.pop(_USER, None)
        decided = page.decision if isinstance(page, PageHelpers) else None
        return await state.gate.alogout(_cookie_header(), decided.session_id if decided else None)

    # -- views -----------------------------------------------------------------------------

    async def _token_view(self) -> Response:
        state = _state()
        gate = state.gate
        web = web_request(_scope())
        body = await _read_body() if request.method == "POST" else b""

        async def session() -> SessionDecision:
            return gate.session(web)

        user = await self.current_user()
        return _to_quart(await aanswer_token_request(gate, web, body, user, session))

    async def _script_view(self) -> Response:
        return _to_quart(_state().gate.script_response(web_request(_scope())))

    async def _jwks_view(self) -> Response:
        return _to_quart(_state().gate.jwks_response(web_request(_scope())))

    # -- pages -----------------------------------------------------------------------------

    async def _check_user(self, state: EmbedGateState, principal: Any = _UNKNOWN) -> None:
        """Purge the session's tokens when the user they were minted for has changed or
        logged out: no logout call to remember."""
        session_id = state.gate.read_session_id(_cookie_header())
        page = g.get(_PAGE)
        if isinstance(page, PageHelpers) and page.decision is not None:
            session_id = page.decision.session_id
        if not state.gate.watches(session_id):
            return
        if principal is _UNKNOWN:
            try:
                principal = state.gate.principal_for(await self.current_user())
            except EmbedgateError:
                return
        await state.gate.asettle_user(session_id, principal)

    async def _logged_in(self) -> bool:
        try:
            return _state().gate.principal_for(await self.current_user()) is not None
        except EmbedgateError:
            return True

    async def _after_request(self, response: Response) -> Response:
        if request.blueprint == "embedgate":
            return response
        state = _state()
        if 300 <= response.status_code < 400 or response.mimetype == "text/html":
            await self._check_user(state)
        page = g.get(_PAGE)
        carries = isinstance(page, PageHelpers) and page.carries_token
        headers = Headers(_raw(response))
        if not isinstance(response.response, DataBody):  # a stream or a file
            return await self._streamed(response, headers)
        injector = None
        if not (isinstance(page, PageHelpers) and page.script_rendered):
            plan = state.gate.page_plan(request.method, response.status_code, headers.raw)
            if plan is not None:
                injector = fed_injector(plan, await response.get_data(as_text=False))
        if injector is not None:
            page = await self.helpers()
            body = injector.finish(await page.apage_snippet(headers))
            if injector.injected:
                response.set_data(body)
                new = page.page_headers(Headers(_raw(response)), len(body), injected=True)
                if new is not None:
                    _set_headers(response, new.raw)
                return response
        await self._finish_untouched(response, headers, carries)
        return response

    async def _streamed(self, response: Response, headers: Headers) -> Response:
        """A streamed page (an async generator, ``stream_template``, a file): read up to its
        insertion point (or its end, or the buffer limit), injected there, the rest
        forwarded as it comes."""
        state = _state()
        page = g.get(_PAGE)
        carries = isinstance(page, PageHelpers) and page.carries_token
        rendered = isinstance(page, PageHelpers) and page.script_rendered
        plan = (
            None
            if rendered
            else state.gate.page_plan(request.method, response.status_code, headers.raw)
        )
        if plan is None:
            await self._finish_untouched(response, headers, carries)
            return response
        body = response.response
        rest = (await body.__aenter__()).__aiter__()
        injector = plan.injector
        head: list[bytes] = []
        ended = False
        while not (injector.ready or injector.passthrough):
            try:
                chunk = await rest.__anext__()
            except StopAsyncIteration:
                ended = True
                break
            head.append(injector.feed(chunk.encode() if isinstance(chunk, str) else chunk))
        snippet: str | None = None
        helpers: PageHelpers | None = None
        if injector.passthrough:
            telemetry.injection(False, "too_large" if injector.overflowed else "no_insertion_point")
        elif injector.insertion_point() is not None:
            helpers = await self.helpers()
            snippet = await helpers.apage_snippet(headers)
        if injector.passthrough:
            tail: list[bytes] = []
        elif ended:
            tail = [injector.finish(snippet)]
        else:
            tail = [injector.release(snippet)]
        parts = [*head, *tail]
        response.response = IterableBody(_chain(parts, _empty() if ended else rest, body))
        if helpers is not None and snippet is not None and injector.injected:
            if ended:
                length: int | None = sum(len(part) for part in parts)
            else:
                length = injected_length(headers.raw, injector.added(snippet))
            new = helpers.page_headers(headers, length, injected=True)
            if new is not None:
                _set_headers(response, new.raw)
        else:
            await self._finish_untouched(response, headers, carries)
        return response

    async def _finish_untouched(self, response: Response, headers: Headers, carries: bool) -> None:
        """Headers of a response left as the app made it: private when a template helper
        put a token in it, or when it answers a HEAD whose GET would carry one."""
        if carries:
            _set_headers(response, self._token_page_headers(headers.raw))
        elif request.method == "HEAD" and await self._head_of_page(response, headers):
            _set_headers(response, private_headers(headers.raw))

    def _token_page_headers(self, raw: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """A page a template helper put a token in: private, with the session cookie when
        the helper started the session."""
        page = g.get(_PAGE)
        cookie = None
        if isinstance(page, PageHelpers) and page.decision and not page.cookie_delivered:
            cookie = page.decision.set_cookie
            page.cookie_delivered = True
        return private_headers(raw, set_cookie=cookie)

    async def _head_of_page(self, response: Response, headers: Headers) -> bool:
        """A HEAD whose GET would carry a token (an injectable page, a user logged in)."""
        if _state().gate.page_plan("GET", response.status_code, headers.raw) is None:
            return False
        return await self._logged_in()

    def _nonce(self) -> str | None:
        if self._csp_nonce is not None:
            return self._csp_nonce()
        nonce = g.get("csp_nonce")
        return nonce if isinstance(nonce, str) else None

    # -- template globals (async: Quart renders templates asynchronously) -------------------

    async def _embed_token(self) -> str:
        if not has_request_context():
            log.debug("embedgate: embed_token() outside a request renders nothing")
            return ""
        page = await self.helpers()
        await page.aget_token(None, "embed_token()")
        return page.embed_token()

    async def _embed_snippet(
        self, kind: str, resource: str | None = None, **options: Any
    ) -> Markup:
        if not has_request_context():
            log.debug("embedgate: embed_snippet() outside a request renders nothing")
            return Markup("")
        page = await self.helpers()
        return trusted_markup(await page.aembed_snippet(kind, resource, **options))

    async def _embed_script(self) -> Markup:
        if not has_request_context():
            log.debug("embedgate: embed_script() outside a request renders nothing")
            return Markup("")
        page = await self.helpers()
        return trusted_markup(await page.aembed_script())

    async def _embed_binding(self) -> Markup:
        if not has_request_context():
            return Markup("")
        return trusted_markup((await self.helpers()).embed_binding())


async def _empty() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover - makes this an async generator


def _timed(
    route: str, view: Callable[[], Awaitable[Response]]
) -> Callable[[], Awaitable[Response]]:
    """``view``, counted and timed as one of embedgate's routes."""

    async def timed() -> Response:
        started = telemetry.start()
        response = await view()
        telemetry.endpoint_answered(route, response.status_code, started)
        return response

    return timed
