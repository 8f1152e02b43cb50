"""Starlette (and FastAPI): template globals, dependencies and logout for apps running
:class:`~embedgate.asgi.EmbedgateMiddleware`.

::

    app.add_middleware(EmbedgateMiddleware)   # settings from EMBEDGATE_* variables
    install_templates(templates)  # embed_token(), embed_snippet(), embed_script(), embed_binding()

Who is logged in: an authenticated ``scope["user"]`` (Starlette's AuthenticationMiddleware,
added after embedgate's so it runs first), or ``request.state.embedgate_user`` set by the
app's auth dependency (dependencies run after the middleware saw the request; it reads the
state when the response starts), or the middleware's ``user_resolver(scope)``. The token
endpoint the browser script refreshes from answers before any route runs, so with
dependency-based auth it needs a ``user_resolver`` (which then also serves pages).

The middleware puts itself in ``scope["embedgate"]``; everything here finds the engine
there. Per-request state (the :class:`~embedgate.web.templating.PageHelpers`) lives in
``scope["embedgate.page"]``, the request's session decision in ``scope["embedgate.session"]``.

Jinja renders synchronously. In a sync view (run in a worker thread) the helpers use the
token service's sync face; in an async view (on the event loop) they render placeholders
that the middleware fills in through the async service once the response is complete, so
a remote mint never blocks the loop.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, MutableMapping
from typing import Any

from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from ..asgi import PAGE_KEY, SCOPE_KEY, SESSION_KEY, EmbedgateMiddleware
from ..engine import Engine
from ..errors import IssuerError, PrincipalError
from ..token import EmbedToken
from ..web.headers import Headers
from ..web.templating import PageHelpers, on_event_loop, trusted_markup
from ..web.values import SessionDecision
from ._scope import logout_scope, middleware_for, page_helpers_for, token_for

__all__ = [
    "EmbedgateMiddleware",
    "embed_token",
    "finish_response",
    "install_templates",
    "logout",
    "middleware_for",
    "optional_embed_token",
    "page_helpers",
]

log = logging.getLogger("embedgate")

Scope = MutableMapping[str, Any]


def engine_for(request: Request) -> Engine:
    """The engine of the middleware serving ``request``."""
    return middleware_for(request.scope).engine


def page_helpers(request: Request) -> PageHelpers:
    """This request's template helpers (created on first use)."""

    def nonce() -> str | None:
        value = getattr(request.state, "csp_nonce", None)
        return value if isinstance(value, str) else None

    return page_helpers_for(request.scope, nonce)


async def optional_embed_token(request: Request) -> EmbedToken | None:
    """Dependency: the current user's token, or None when nobody is logged in.

    Raises :class:`~embedgate.EmbedgateError` when issuance fails, and
    :class:`~embedgate.ConfigurationError` when the provider has no session token (every
    token bound to the resource it embeds). Declare your auth dependency (the one setting
    ``request.state.embedgate_user``) before this one.
    """
    return await token_for(request.scope, page_helpers(request))


async def embed_token(request: Request) -> EmbedToken:
    """Dependency: the current user's token; 401 when nobody is logged in, 403 when the
    attribute policy refuses the user, 503 (with ``Retry-After``) when the provider fails."""
    try:
        token = await optional_embed_token(request)
    except PrincipalError as error:
        raise HTTPException(403, f"embed token refused: {error}") from None
    except IssuerError as error:
        retry = str(max(1, int(error.retry_after)))
        raise HTTPException(
            503, "the analytics provider is unavailable", headers={"Retry-After": retry}
        ) from None
    if token is None:
        raise HTTPException(401, "log in first")
    return token


async def logout(request: Request) -> int:
    """Purge the current session's tokens; call it from your logout route."""
    return await logout_scope(request.scope, request.headers.get("cookie"))


def finish_response(request: Request, response: Response) -> Response:
    """Give a response whose body a template helper put a token into what such a page
    needs: ``Cache-Control: private, no-store``, ``Vary: Cookie`` and, for a new session,
    embedgate's cookie. :func:`install_templates` does it for ``TemplateResponse``."""
    page = request.scope.get(PAGE_KEY)
    body = getattr(response, "body", None)
    if not isinstance(page, PageHelpers) or not isinstance(body, bytes):
        return response
    headers = page.page_headers(Headers(response.raw_headers), len(body), injected=False)
    if headers is None:
        return response
    response.raw_headers = headers.raw
    if page.decision is not None:
        # The cookie left with this response: the injection must not set it again.
        request.scope[SESSION_KEY] = SessionDecision(page.decision.session_id)
    return response


def _request(context: Context, helper: str) -> Request | None:
    request = context.get("request")
    if not isinstance(request, Request) or SCOPE_KEY not in request.scope:
        log.warning("embedgate: %s needs the request and EmbedgateMiddleware", helper)
        return None
    return request


def _deferring(request: Request) -> bool:
    """Whether this template renders on the event loop (an async view) with the middleware
    finishing the page: the helpers then leave placeholders that the middleware fills in
    through the async token service, so a remote mint never blocks the loop."""
    return on_event_loop() and middleware_for(request.scope).gate.config.inject


@pass_context
def _embed_token(context: Context) -> str:
    request = _request(context, "embed_token()")
    if request is None:
        return ""
    page = page_helpers(request)
    if _deferring(request):
        return page.deferred.add(page.aembed_token)
    return page.embed_token()


@pass_context
def _embed_snippet(
    context: Context, kind: str, resource: str | None = None, **options: Any
) -> Markup:
    request = _request(context, "embed_snippet()")
    if request is None:
        return Markup("")
    page = page_helpers(request)
    if _deferring(request):
        return trusted_markup(
            page.deferred.add(lambda: page.aembed_snippet(kind, resource, **options))
        )
    return trusted_markup(page.embed_snippet(kind, resource, **options))


@pass_context
def _embed_script(context: Context) -> Markup:
    request = _request(context, "embed_script()")
    if request is None:
        return Markup("")
    page = page_helpers(request)
    if _deferring(request):
        return trusted_markup(page.deferred.add(page.aembed_script))
    return trusted_markup(page.embed_script())


@pass_context
def _embed_binding(context: Context) -> Markup:
    request = _request(context, "embed_binding()")
    if request is None:
        return Markup("")
    return trusted_markup(page_helpers(request).embed_binding())


def install_templates(templates: Jinja2Templates) -> Jinja2Templates:
    """Add ``embed_token()``, ``embed_snippet(kind, resource=None, **options)`` and
    ``embed_script()`` to the templates' globals, and make ``templates.TemplateResponse``
    finish pages that carry a token (see :func:`finish_response`). The CSP nonce is read
    from ``request.state.csp_nonce``."""
    templates.env.globals.update(
        embed_token=_embed_token,
        embed_snippet=_embed_snippet,
        embed_script=_embed_script,
        embed_binding=_embed_binding,
    )
    render: Callable[..., Response] = templates.TemplateResponse
    if getattr(render, "_embedgate", False):
        return templates

    @functools.wraps(render)
    def template_response(*args: Any, **kwargs: Any) -> Response:
        response = render(*args, **kwargs)
        request = getattr(response, "context", {}).get("request")
        return finish_response(request, response) if isinstance(request, Request) else response

    template_response._embedgate = True  # type: ignore[attr-defined]
    templates.TemplateResponse = template_response  # type: ignore[method-assign,assignment]
    return templates
