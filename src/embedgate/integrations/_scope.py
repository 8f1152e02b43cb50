"""What the adapters over :class:`~embedgate.asgi.EmbedgateMiddleware` (Starlette, FastAPI,
Litestar) share: everything is found from the ASGI ``scope``, so no framework is imported.

The middleware puts itself in ``scope["embedgate"]``; the request's template helpers live in
``scope["embedgate.page"]``, its session decision in ``scope["embedgate.session"]``.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, MutableMapping
from typing import Any

from ..asgi import PAGE_KEY, SCOPE_KEY, SESSION_KEY, EmbedgateMiddleware, scope_user, web_request
from ..errors import ConfigurationError
from ..token import EmbedToken
from ..web.templating import PageHelpers
from ..web.token_block import request_binding
from ..web.values import SessionDecision

log = logging.getLogger("embedgate")

Scope = MutableMapping[str, Any]
NonceSource = Callable[[], "str | None"]


def middleware_for(scope: Scope) -> EmbedgateMiddleware:
    """The :class:`EmbedgateMiddleware` serving this request."""
    middleware = scope.get(SCOPE_KEY)
    if not isinstance(middleware, EmbedgateMiddleware):
        raise ConfigurationError(
            "EmbedgateMiddleware", "is not installed; call app.add_middleware(EmbedgateMiddleware)"
        )
    return middleware


def _resolved(value: Any, what: str) -> Any:
    if inspect.isawaitable(value):
        if inspect.iscoroutine(value):
            value.close()
        log.warning(
            "embedgate: the async %s cannot run inside a template; "
            "fetch the token with the embed_token dependency first",
            what,
        )
        return None
    return value


def sync_user(middleware: EmbedgateMiddleware, scope: Scope) -> Any:
    if middleware.user_resolver is not None:
        return _resolved(middleware.user_resolver(scope), "user_resolver")
    return scope_user(scope)


def sync_session(middleware: EmbedgateMiddleware, scope: Scope) -> SessionDecision:
    known = scope.get(SESSION_KEY)
    if isinstance(known, SessionDecision):
        return known
    app_session = None
    if middleware.session_resolver is not None:
        app_session = _resolved(middleware.session_resolver(scope), "session_resolver")
    decision = scope[SESSION_KEY] = middleware.gate.session(web_request(scope), app_session)
    return decision


def scope_nonce(scope: Scope) -> str | None:
    """``request.state.csp_nonce`` as the ASGI scope holds it."""
    state = scope.get("state")
    value = state.get("csp_nonce") if isinstance(state, MutableMapping) else None
    return value if isinstance(value, str) else None


def page_helpers_for(scope: Scope, nonce: NonceSource | None = None) -> PageHelpers:
    """This request's template helpers (created on first use)."""
    page = scope.get(PAGE_KEY)
    if isinstance(page, PageHelpers):
        return page
    middleware = middleware_for(scope)
    page = PageHelpers(
        middleware.gate,
        web_request(scope),
        principal=lambda: middleware.engine.principal_for(sync_user(middleware, scope)),
        session=lambda: sync_session(middleware, scope),
        nonce=nonce if nonce is not None else lambda: scope_nonce(scope),
        binding=lambda: request_binding(scope),
    )
    scope[PAGE_KEY] = page
    return page


async def token_for(scope: Scope, page: PageHelpers) -> EmbedToken | None:
    """The current user's session token, or None when nobody is logged in (async)."""
    middleware = middleware_for(scope)
    middleware.gate.check_session_tokens()
    principal = middleware.engine.principal_for(await middleware.user(scope))
    page.set_principal(principal)
    if principal is None:
        return None
    decision = await middleware.session(scope, web_request(scope))
    page.use_session(decision)
    token = await middleware.engine.aget_token(
        principal, decision.session_id, deadline=middleware.engine.config.page_deadline
    )
    page.remember(None, token)
    return token


async def _maybe(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def logout_scope(scope: Scope, cookie_header: str | None) -> int:
    """Purge the session's tokens of the request ``scope`` describes."""
    middleware = middleware_for(scope)
    scope.pop(PAGE_KEY, None)
    known = scope.get(SESSION_KEY)
    decided = known.session_id if isinstance(known, SessionDecision) else None
    if middleware.session_resolver is not None:
        app_session = await _maybe(middleware.session_resolver(scope))
        return await middleware.gate.alogout(None, app_session, decided)
    return await middleware.gate.alogout(cookie_header, decided)
