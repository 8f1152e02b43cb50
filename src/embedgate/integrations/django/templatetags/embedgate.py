"""``{% load embedgate %}``: ``{% embed_token %}``, ``{% embed_snippet kind resource key=value %}``
and ``{% embed_script %}``. They need the request in the context (the ``request`` context
processor) and embedgate's middleware; they render "" rather than break a page."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django import template
from django.core.exceptions import SynchronousOnlyOperation
from django.utils.safestring import mark_safe

from ....web.templating import PageHelpers, on_event_loop
from ..runtime import page_of

log = logging.getLogger("embedgate")

register = template.Library()


def _page(context: Any, tag: str) -> PageHelpers | None:
    page = page_of(context.get("request"))
    if page is None:
        log.warning(
            "embedgate: {%% %s %%} rendered nothing: it needs the request context processor "
            "and embedgate's middleware",
            tag,
        )
    return page


def _render(context: Any, tag: str, render: Callable[[PageHelpers], str]) -> str:
    page = _page(context, tag)
    if page is None:
        return ""
    try:
        return render(page)
    except SynchronousOnlyOperation:
        log.warning(
            "embedgate: {%% %s %%} rendered nothing: an async view cannot look the user up "
            "while rendering; the middleware still injects the token",
            tag,
        )
        return ""


def _trusted(html: str) -> str:
    # profile.snippet and render_token_block escape every value they render.
    safe: str = mark_safe(html)  # noqa: S308
    return safe


def _deferred(context: Any, tag: str, call: Callable[[PageHelpers], Any]) -> str | None:
    """In an async view the template renders on the event loop, where the user cannot be
    looked up nor a token minted without blocking it: leave a placeholder that embedgate's
    middleware fills in through the async token service once the view has returned."""
    page = page_of(context.get("request"))
    if page is None or not page.deferred.enabled or not on_event_loop():
        return None
    return page.deferred.add(lambda: call(page))


def embed_token(context: Any) -> str:
    """The current user's embed token ("" when anonymous)."""
    deferred = _deferred(context, "embed_token", lambda page: page.aembed_token())
    if deferred is not None:
        return deferred
    return _render(context, "embed_token", lambda page: page.embed_token())


def embed_snippet(context: Any, kind: str, resource: str | None = None, **options: Any) -> str:
    """The provider's markup embedding ``resource`` as ``kind``."""
    deferred = _deferred(
        context, "embed_snippet", lambda page: page.aembed_snippet(kind, resource, **options)
    )
    if deferred is not None:
        return _trusted(deferred)
    return _trusted(
        _render(
            context, "embed_snippet", lambda page: page.embed_snippet(kind, resource, **options)
        )
    )


def embed_script(context: Any) -> str:
    """The token data block and the embedgate.js loader tag (with the CSP nonce)."""
    deferred = _deferred(context, "embed_script", lambda page: page.aembed_script())
    if deferred is not None:
        return _trusted(deferred)
    return _trusted(_render(context, "embed_script", lambda page: page.embed_script()))


def embed_binding(context: Any) -> str:
    """``data-embedgate-bind="…"`` for an element the template writes by hand."""
    return _trusted(_render(context, "embed_binding", lambda page: page.embed_binding()))


for _tag in (embed_token, embed_snippet, embed_script, embed_binding):
    register.simple_tag(_tag, takes_context=True)
