"""Litestar: one plugin puts :class:`~embedgate.asgi.EmbedgateMiddleware` in front of every
route, registers embedgate's routes, a dependency and the template callables.

::

    app = Litestar(
        route_handlers=[...],
        plugins=[EmbedGatePlugin()],  # settings: EMBEDGATE_* variables or keyword arguments
        template_config=TemplateConfig(directory="templates", engine=JinjaTemplateEngine),
    )

Who is logged in: ``request.user`` (``scope["user"]``, set by Litestar's authentication
middleware: ``SessionAuth``, ``JWTCookieAuth``, an ``AbstractAuthenticationMiddleware``),
else ``request.state.embedgate_user``, else the plugin's ``user_resolver(scope)``. The
middleware is appended to the app's middleware, so it runs inside the authentication
middleware and the token endpoint sees the user.

Litestar runs middleware only for routed paths: the plugin registers the token endpoint,
the script and the JWKS under ``EMBEDGATE_PREFIX`` as routes; the middleware answers them
(their handlers never run). One middleware object serves every route: one rate limiter,
one view of each session's user.

Handlers ask for the token with the ``embed_token`` dependency (401 when anonymous, 403
when refused, 503 when the provider fails) or ``optional_embed_token`` (None when
anonymous). Templates get ``embed_token()``, ``embed_snippet(kind, resource=None,
**options)``, ``embed_script()`` and ``embed_binding()``; the CSP nonce is read from
``request.state.csp_nonce``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

from litestar import Request, Router, route
from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
)
from litestar.middleware import DefineMiddleware
from litestar.plugins import InitPluginProtocol
from litestar.types import ASGIApp, Receive, Send
from markupsafe import Markup

from ..asgi import SCOPE_KEY, EmbedgateMiddleware, scope_user
from ..engine import Engine
from ..errors import IssuerError, PrincipalError
from ..settings import Settings, Unpack
from ..token import EmbedToken
from ..web.gate import JWKS_PATH, SCRIPT_PATH, TOKEN_PATH
from ..web.templating import PageHelpers, on_event_loop, trusted_markup
from ._scope import logout_scope, page_helpers_for, token_for

__all__ = [
    "EmbedGatePlugin",
    "embed_token",
    "install_templates",
    "litestar_user",
    "logout",
    "optional_embed_token",
    "page_helpers",
]

log = logging.getLogger("embedgate")

Scope = MutableMapping[str, Any]
Resolver = Callable[[Scope], Any]
# Litestar's options on embedgate's routes: its own CSRF defence (same origin and the
# X-Embedgate header) instead of the CSRF middleware's; the script and the JWKS are public.
_TOKEN_OPT = {"exclude_from_csrf": True}
_PUBLIC_OPT = {"exclude_from_auth": True, "exclude_from_csrf": True}


def litestar_user(scope: Scope) -> Any:
    """``request.state.embedgate_principal`` / ``embedgate_user`` / ``user``, else
    ``request.user`` (``scope["user"]``: Litestar's authentication middleware sets it to
    whatever the app's retrieve-user handler returned)."""
    user = scope_user(scope)
    return user if user is not None else scope.get("user")


class _RouteMiddleware:
    """What Litestar builds for each route: the plugin's one middleware in front of it."""

    __slots__ = ("app", "core")

    def __init__(self, app: ASGIApp, core: EmbedgateMiddleware) -> None:
        self.app = app
        self.core = core

    async def __call__(self, scope: Any, receive: Receive, send: Send) -> None:
        await self.core.serve(self.app, scope, receive, send)  # type: ignore[arg-type]


class EmbedGatePlugin(InitPluginProtocol):
    """The Litestar plugin. ``settings`` are :class:`~embedgate.Config` fields (else
    ``EMBEDGATE_*`` environment variables); ``user_resolver(scope)`` and
    ``session_resolver(scope)`` (sync or async) replace where the user and the session
    come from (default: :func:`litestar_user`, embedgate's own cookie)."""

    def __init__(
        self,
        *,
        engine: Engine | None = None,
        user_resolver: Resolver | None = None,
        session_resolver: Resolver | None = None,
        **settings: Unpack[Settings],
    ) -> None:
        # Built here, not in on_app_init: a configuration error stops the app's construction.
        self.middleware = EmbedgateMiddleware(
            _unrouted,
            engine,
            user_resolver=user_resolver or litestar_user,
            session_resolver=session_resolver,
            **settings,
        )

    @property
    def engine(self) -> Engine:
        return self.middleware.engine

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        prefix = self.engine.config.prefix or "/"
        app_config.middleware.append(DefineMiddleware(_RouteMiddleware, core=self.middleware))
        token_handler = route(
            TOKEN_PATH,
            http_method=["GET", "POST"],
            opt=_TOKEN_OPT,
            sync_to_thread=False,
            include_in_schema=False,
            name="embedgate-token",
        )(_never)
        handlers = [token_handler, _public(SCRIPT_PATH, "script"), _public(JWKS_PATH, "jwks")]
        app_config.route_handlers.append(Router(path=prefix, route_handlers=handlers))
        app_config.dependencies.setdefault("embed_token", Provide(embed_token))
        app_config.dependencies.setdefault("optional_embed_token", Provide(optional_embed_token))
        template_config = app_config.template_config
        if template_config is not None:
            previous = template_config.engine_callback

            def engine_callback(engine: Any) -> None:
                if previous is not None:
                    previous(engine)
                install_templates(engine)

            template_config.engine_callback = engine_callback
        return app_config


def _never() -> None:
    raise NotFoundException()  # never runs: the middleware answers embedgate's paths


def _public(path: str, name: str) -> Any:
    return route(
        path,
        http_method=["GET"],
        opt=_PUBLIC_OPT,
        sync_to_thread=False,
        include_in_schema=False,
        name=f"embedgate-{name}",
    )(_never)


async def _unrouted(scope: Any, receive: Any, send: Any) -> None:
    raise RuntimeError("embedgate's Litestar middleware runs in front of a route")


# -- dependencies ----------------------------------------------------------------------------


def page_helpers(request: Request[Any, Any, Any]) -> PageHelpers:
    """This request's template helpers (created on first use)."""
    return page_helpers_for(request.scope)  # type: ignore[arg-type]


async def optional_embed_token(request: Request[Any, Any, Any]) -> EmbedToken | None:
    """Dependency: the current user's token, or None when nobody is logged in."""
    return await token_for(request.scope, page_helpers(request))  # type: ignore[arg-type]


async def embed_token(request: Request[Any, Any, Any]) -> EmbedToken:
    """Dependency: the current user's token; 401 when nobody is logged in, 403 when the
    attribute policy refuses the user, 503 (with ``Retry-After``) when the provider fails."""
    try:
        token = await optional_embed_token(request)
    except PrincipalError as error:
        raise PermissionDeniedException(f"embed token refused: {error}") from None
    except IssuerError as error:
        retry = str(max(1, int(error.retry_after)))
        raise HTTPException(
            status_code=503,
            detail="the analytics provider is unavailable",
            headers={"Retry-After": retry},
        ) from None
    if token is None:
        raise NotAuthorizedException("log in first")
    return token


async def logout(request: Request[Any, Any, Any]) -> int:
    """Purge the current session's tokens; call it from your logout handler."""
    return await logout_scope(request.scope, request.headers.get("cookie"))  # type: ignore[arg-type]


# -- template callables ----------------------------------------------------------------------


def _helpers(ctx: Mapping[str, Any], helper: str) -> PageHelpers | None:
    request = ctx.get("request")
    scope = getattr(request, "scope", None)
    if not isinstance(scope, MutableMapping) or SCOPE_KEY not in scope:
        log.warning("embedgate: %s needs the request and EmbedGatePlugin", helper)
        return None
    return page_helpers_for(scope)


def _deferring(page: PageHelpers) -> bool:
    """Whether the template renders on the event loop (an async handler) with the
    middleware finishing the page: the helpers then leave placeholders that the middleware
    fills in through the async token service, so a remote mint never blocks the loop."""
    return on_event_loop() and page.gate.config.inject


def _embed_token(ctx: Mapping[str, Any]) -> str:
    page = _helpers(ctx, "embed_token()")
    if page is None:
        return ""
    if _deferring(page):
        return page.deferred.add(page.aembed_token)
    return page.embed_token()


def _embed_snippet(
    ctx: Mapping[str, Any], kind: str, resource: str | None = None, **options: Any
) -> Markup:
    page = _helpers(ctx, "embed_snippet()")
    if page is None:
        return Markup("")
    if _deferring(page):
        return trusted_markup(
            page.deferred.add(lambda: page.aembed_snippet(kind, resource, **options))
        )
    return trusted_markup(page.embed_snippet(kind, resource, **options))


def _embed_script(ctx: Mapping[str, Any]) -> Markup:
    page = _helpers(ctx, "embed_script()")
    if page is None:
        return Markup("")
    if _deferring(page):
        return trusted_markup(page.deferred.add(page.aembed_script))
    return trusted_markup(page.embed_script())


def _embed_binding(ctx: Mapping[str, Any]) -> Markup:
    page = _helpers(ctx, "embed_binding()")
    return Markup("") if page is None else trusted_markup(page.embed_binding())


def install_templates(engine: Any) -> Any:
    """Register ``embed_token()``, ``embed_snippet()``, ``embed_script()`` and
    ``embed_binding()`` as template callables of a Litestar template engine (the plugin
    does it for the app's ``template_config``). Pages that carry a token leave with
    ``Cache-Control: private, no-store``, ``Vary: Cookie`` and, for a new session,
    embedgate's cookie (the middleware sees to it)."""
    engine.register_template_callable("embed_token", _embed_token)
    engine.register_template_callable("embed_snippet", _embed_snippet)
    engine.register_template_callable("embed_script", _embed_script)
    engine.register_template_callable("embed_binding", _embed_binding)
    return engine
