"""Flask: ``EmbedGate(app)``, or ``ext = EmbedGate()`` then ``ext.init_app(app)``.

Settings are ``EMBEDGATE_*`` keys of ``app.config``, then the environment. The user is
Flask-Login's ``current_user`` when installed and authenticated, else ``g.user``, else what
the function registered with :meth:`EmbedGate.user_loader` returns (a Principal or a user
object). The token is injected into HTML pages in ``after_request`` (request context and
``current_user`` still alive); the token endpoint, script and JWKS are a blueprint named
``embedgate`` under ``EMBEDGATE_PREFIX``. Templates get ``embed_token()``,
``embed_snippet(kind, resource=None, **options)``, ``embed_script()`` and ``embed_binding()``.

Per-app state (engine, gate) lives in ``app.extensions["embedgate"]``; per-request state in
``g``. The extension object holds only app-independent choices, so one can serve many apps.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Blueprint, Flask, Response, current_app, g, has_request_context, request
from markupsafe import Markup

from .. import telemetry
from ..engine import Engine
from ..errors import ConfigurationError, PrincipalError
from ..settings import Settings, Unpack
from ..token import EmbedToken
from ..web.cache_policy import private_headers
from ..web.endpoint import answer_token_request
from ..web.gate import WebGate
from ..web.headers import Headers
from ..web.injection import HtmlInjector
from ..web.templating import PageHelpers, page_injector, trusted_markup
from ..web.token_block import request_binding
from ..web.token_request import MAX_BODY
from ..web.values import WebResponse
from ..wsgi import web_request

__all__ = ["EXTENSION_KEY", "EmbedGate", "EmbedGateState"]

log = logging.getLogger("embedgate")

EXTENSION_KEY = "embedgate"
_PAGE = "_embedgate_page"  # the request's PageHelpers, in flask.g
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


def _state(app: Flask | None = None) -> EmbedGateState:
    target = app if app is not None else current_app
    state = target.extensions.get(EXTENSION_KEY)
    if not isinstance(state, EmbedGateState):
        raise ConfigurationError(
            "EmbedGate", "is not set up on this app; call EmbedGate(app) or ext.init_app(app)"
        )
    return state


def _flask_login_user() -> Any:
    if not hasattr(current_app, "login_manager"):
        return None
    try:
        from flask_login import current_user
    except ImportError:  # pragma: no cover - flask-login is optional
        return None
    user = current_user._get_current_object()
    return user if getattr(user, "is_authenticated", False) else None


def _raw(response: Response) -> list[tuple[bytes, bytes]]:
    return Headers.from_wsgi(response.headers.to_wsgi_list()).raw


def _to_flask(response: WebResponse) -> Response:
    out = Response(response.body, status=response.status, headers=response.headers.to_wsgi())
    if b"content-type" not in response.headers:
        del out.headers["Content-Type"]  # Werkzeug's default text/html would lie (304)
    return out


def _purge_on_logout(sender: Any, **extra: Any) -> None:
    """Flask-Login's ``user_logged_out`` signal: purge the session's tokens."""
    state = getattr(sender, "extensions", {}).get(EXTENSION_KEY)
    if isinstance(state, EmbedGateState):
        state.extension.logout()


def _exempt_from_csrf(app: Flask, blueprint: Blueprint) -> None:
    csrf = app.extensions.get("csrf")
    exempt = getattr(csrf, "exempt", None)
    if callable(exempt) and blueprint.name not in getattr(csrf, "_exempt_blueprints", ()):
        exempt(blueprint)


def _inject_stream(
    body: Iterable[bytes | str], injector: HtmlInjector, snippet: str
) -> Iterator[bytes]:
    try:
        for chunk in body:
            out = injector.feed(chunk.encode("utf-8") if isinstance(chunk, str) else chunk)
            if injector.ready:
                out = injector.release(snippet)
            if out:
                yield out
        tail = injector.finish(snippet)
        if tail:
            yield tail
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()


class EmbedGate:
    """The Flask extension.

    ``settings`` are :class:`~embedgate.Config` field names overriding ``app.config`` for
    every app; ``csp_nonce()`` returns the page's CSP nonce (default: ``g.csp_nonce``).
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        csp_nonce: NonceSource | None = None,
        **settings: Unpack[Settings],
    ) -> None:
        self._settings = settings
        self._csp_nonce = csp_nonce
        self._user_loader: UserLoader | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask, *, engine: Engine | None = None) -> None:
        """Validate the settings, register the routes, the hooks and the template globals."""
        if engine is None:
            engine = Engine.from_settings(app.config, **self._settings)
        gate = WebGate(engine)
        app.extensions[EXTENSION_KEY] = EmbedGateState(self, engine, gate)

        blueprint = Blueprint("embedgate", __name__)
        token_view = _timed("token", self._token_view)
        blueprint.add_url_rule("/token", "token", token_view, methods=["GET", "POST"])
        blueprint.add_url_rule("/embedgate.js", "script", _timed("script", self._script_view))
        blueprint.add_url_rule("/jwks.json", "jwks", _timed("jwks", self._jwks_view))
        app.register_blueprint(blueprint, url_prefix=engine.config.prefix)
        # The endpoint has its own CSRF defence (same-origin check + X-Embedgate header):
        # exempt it from Flask-WTF's CSRFProtect, whichever of the two is set up first.
        _exempt_from_csrf(app, blueprint)
        app.before_request(lambda: _exempt_from_csrf(app, blueprint))

        # Run after every other after_request function of the app (Flask calls them in
        # reverse order of registration): headers those set cannot undo no-store.
        app.after_request_funcs.setdefault(None, []).insert(0, self._after_request)
        app.add_template_global(self._embed_token, "embed_token")
        app.add_template_global(self._embed_snippet, "embed_snippet")
        app.add_template_global(self._embed_script, "embed_script")
        app.add_template_global(self._embed_binding, "embed_binding")
        try:
            from flask_login import user_logged_out
        except ImportError:  # pragma: no cover - flask-login is optional
            pass
        else:
            user_logged_out.connect(_purge_on_logout, weak=False)

    # -- public API ------------------------------------------------------------------------

    def user_loader(self, loader: F) -> F:
        """Register the function returning the current user (Principal or user object),
        used when neither Flask-Login nor ``g.user`` has one."""
        self._user_loader = loader
        return loader

    @property
    def engine(self) -> Engine:
        """The current app's engine."""
        return _state().engine

    def current_user(self) -> Any:
        """The user embed tokens are for in this request, or None."""
        user = _flask_login_user()
        if user is None:
            user = g.get("user")
        if user is None and self._user_loader is not None:
            user = self._user_loader()
        return user

    def helpers(self) -> PageHelpers:
        """This request's template helpers (created on first use)."""
        page = g.get(_PAGE)
        if not isinstance(page, PageHelpers):
            state = _state()
            page = PageHelpers(
                state.gate,
                web_request(request.environ),
                principal=lambda: state.engine.principal_for(self.current_user()),
                nonce=self._nonce,
                binding=lambda: request_binding(request.environ),
            )
            setattr(g, _PAGE, page)
        return page

    def token(self, resource: str | None = None) -> EmbedToken | None:
        """The current user's token for this session (None when anonymous); raises
        :class:`~embedgate.EmbedgateError` when issuance fails (a
        :class:`~embedgate.ConfigurationError` for the session's token of a provider that
        has none)."""
        state = _state()
        if resource is None:
            state.gate.check_session_tokens()
        principal = state.engine.principal_for(self.current_user())
        if principal is None:
            return None
        page = self.helpers()
        token = state.engine.get_token(
            principal,
            page.session().session_id,
            resource,
            deadline=state.engine.config.page_deadline,
        )
        page.remember(resource, token)
        return token

    def logout(self) -> int:
        """Purge the current session's tokens; call it from a logout view when Flask-Login
        (whose ``user_logged_out`` signal does it) is not used. Returns how many went."""
        state = _state()
        page = g.pop(_PAGE, None)
        decided = page.decision if isinstance(page, PageHelpers) else None
        return state.gate.logout(
            request.headers.get("Cookie"), decided.session_id if decided else None
        )

    # -- views -----------------------------------------------------------------------------

    def _token_view(self) -> Response:
        state = _state()
        gate = state.gate
        web = web_request(request.environ)
        # Werkzeug's stream stops at Content-Length (and is empty without one): bounded.
        body = request.stream.read(MAX_BODY + 1) if request.method == "POST" else b""
        user = self.current_user()
        return _to_flask(answer_token_request(gate, web, body, user, lambda: gate.session(web)))

    def _script_view(self) -> Response:
        return _to_flask(_state().gate.script_response(web_request(request.environ)))

    def _jwks_view(self) -> Response:
        return _to_flask(_state().gate.jwks_response(web_request(request.environ)))

    # -- pages -----------------------------------------------------------------------------

    def _check_user(self, state: EmbedGateState, principal: Any = _UNKNOWN) -> None:
        """Purge the session's tokens when the user they were minted for has changed or
        logged out: no logout call to remember."""
        session_id = state.gate.read_session_id(request.headers.get("Cookie"))
        page = g.get(_PAGE)
        if isinstance(page, PageHelpers) and page.decision is not None:
            session_id = page.decision.session_id
        if not state.gate.watches(session_id):
            return
        if principal is _UNKNOWN:
            try:
                principal = state.engine.principal_for(self.current_user())
            except PrincipalError:
                return
        state.gate.settle_user(session_id, principal)

    def _after_request(self, response: Response) -> Response:
        if request.blueprint == "embedgate":
            return response
        if 300 <= response.status_code < 400 or response.mimetype == "text/html":
            self._check_user(_state())
        page = g.get(_PAGE)
        if response.direct_passthrough:  # a file: no template rendered into it
            if isinstance(page, PageHelpers) and page.carries_token:
                self._set_headers(response, Headers(private_headers(_raw(response))))
            return response
        if response.is_streamed:
            response = self._streamed(response)
            # Rendered as it is sent (stream_template): a page that carries, or may yet
            # carry, a token leaves private even where nothing was injected.
            if self._may_stream_token(response, g.get(_PAGE)):
                self._set_headers(response, Headers(private_headers(_raw(response))))
            return response
        headers = Headers(_raw(response))
        injector = page_injector(
            _state().gate, request.method, response.status_code, headers, response.get_data
        )
        injected = False
        if injector is not None and isinstance(page, PageHelpers) and page.script_rendered:
            injector = None  # the template wrote the block, maybe after </head>
        if injector is not None:
            page = self.helpers()
            body = injector.finish(page.page_snippet(headers))
            if injector.injected:
                response.set_data(body)
                injected = True
        if isinstance(page, PageHelpers):
            new = page.page_headers(
                Headers(_raw(response)), len(response.get_data()), injected=injected
            )
            if new is not None:
                self._set_headers(response, new)
        elif request.method == "HEAD" and self._head_of_page(response):
            self._set_headers(response, Headers(private_headers(_raw(response))))
        return response

    def _streamed(self, response: Response) -> Response:
        """A streamed page (a generator, ``stream_template``): injected as it passes, the
        rest forwarded as it comes once the insertion point is behind. The headers go first,
        so they are those of a page holding a token whether or not one finds its place."""
        state = _state()
        headers = Headers.from_wsgi(response.headers.to_wsgi_list())
        plan = state.gate.page_plan(request.method, response.status_code, headers.raw)
        if plan is None:
            return response
        page = self.helpers()
        snippet = page.page_snippet(headers)
        if snippet is None:
            return response
        injector = plan.injector
        new = page.page_headers(headers, None, injected=True)
        if new is not None:
            response.headers.clear()
            response.headers.extend(new.to_wsgi())
        response.response = _inject_stream(response.response, injector, snippet)
        return response

    def _may_stream_token(self, response: Response, page: Any) -> bool:
        if isinstance(page, PageHelpers) and page.carries_token:
            return True
        # A generator body is rendered as it is sent (stream_template, stream_with_context).
        lazy = inspect.isgenerator(response.response) and not response.direct_passthrough
        if not lazy or response.mimetype not in ("text/html", "application/xhtml+xml"):
            return False
        return self._logged_in()

    def _head_of_page(self, response: Response) -> bool:
        """A HEAD whose GET would carry a token (an injectable page, a user logged in)."""
        gate = _state().gate
        if gate.page_plan("GET", response.status_code, _raw(response)) is None:
            return False
        return self._logged_in()

    def _logged_in(self) -> bool:
        try:
            return _state().engine.principal_for(self.current_user()) is not None
        except PrincipalError:
            return True

    @staticmethod
    def _set_headers(response: Response, headers: Headers) -> None:
        response.headers.clear()
        response.headers.extend(headers.to_wsgi())

    def _nonce(self) -> str | None:
        if self._csp_nonce is not None:
            return self._csp_nonce()
        nonce = g.get("csp_nonce")
        return nonce if isinstance(nonce, str) else None

    # -- template globals ------------------------------------------------------------------

    def _embed_token(self) -> str:
        if not has_request_context():
            log.debug("embedgate: embed_token() outside a request renders nothing")
            return ""
        return self.helpers().embed_token()

    def _embed_snippet(self, kind: str, resource: str | None = None, **options: Any) -> Markup:
        if not has_request_context():
            log.debug("embedgate: embed_snippet() outside a request renders nothing")
            return Markup("")
        return trusted_markup(self.helpers().embed_snippet(kind, resource, **options))

    def _embed_script(self) -> Markup:
        if not has_request_context():
            log.debug("embedgate: embed_script() outside a request renders nothing")
            return Markup("")
        return trusted_markup(self.helpers().embed_script())

    def _embed_binding(self) -> Markup:
        if not has_request_context():
            return Markup("")
        return trusted_markup(self.helpers().embed_binding())


def _timed(route: str, view: Callable[[], Response]) -> Callable[[], Response]:
    """``view``, counted and timed as one of embedgate's routes."""

    def timed() -> Response:
        started = telemetry.start()
        response = view()
        telemetry.endpoint_answered(route, response.status_code, started)
        return response

    return timed
