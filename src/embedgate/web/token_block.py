"""The token block injected into pages (the data block plus the loader script), and the JSON
escaping that makes it safe. "Snippet" is the provider's markup (`Profile.snippet`), not this.

The token travels in a ``<script type="application/json">`` data block, which browsers never
execute, so it needs no CSP nonce; only the external loader script carries the app's nonce.
Everything rendered here is ASCII, so it can be inserted into a page of any ASCII-compatible
charset without re-encoding.
"""

from __future__ import annotations

import html
import json
import re
import secrets
from collections.abc import Mapping, MutableMapping

from .headers import Headers, HeadersLike

__all__ = [
    "BINDING_KEY",
    "TOKEN_BLOCK_ID",
    "extract_csp_nonce",
    "json_for_html",
    "new_binding",
    "render_token_block",
    "request_binding",
]

TOKEN_BLOCK_ID = "embedgate-token"
"""The ``id`` of the JSON data block; the injector treats a page containing it as done."""

BINDING_KEY = "embedgate.binding"
"""Where a request's binding value is kept in its ASGI scope / WSGI environ."""


def new_binding() -> str:
    """A fresh binding value: random, URL-safe, unguessable (128 bits)."""
    return secrets.token_urlsafe(16)


def request_binding(state: MutableMapping[str, object]) -> str:
    """The binding value of one response, kept in the request's ``state`` (an ASGI scope,
    a WSGI environ): the data block says it, and every element a helper renders for the
    script carries it as ``data-embedgate-bind``, so markup from anywhere else (user
    content) cannot make ``embedgate.js`` write a token into it."""
    value = state.get(BINDING_KEY)
    if not isinstance(value, str):
        value = state[BINDING_KEY] = new_binding()
    return value


_HTML_UNSAFE = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def json_for_html(obj: object) -> str:
    """Serialise ``obj`` as ASCII JSON that is safe inside a ``<script>`` element.

    ``<``, ``>`` and ``&`` become ``\\u003c``-style escapes so ``</script>`` and ``<!--``
    cannot end or alter the element; U+2028/U+2029 are escaped for old JS parsers. The
    result is still valid JSON that decodes to the same value. NaN/Infinity are refused.
    """
    text = json.dumps(obj, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    # ensure_ascii already escaped U+2028/2029; the table keeps this correct regardless.
    return text.translate(_HTML_UNSAFE)


def _attr(value: str) -> str:
    # Quote-escaped and forced to ASCII with character references.
    return html.escape(value, quote=True).encode("ascii", "xmlcharrefreplace").decode("ascii")


def render_token_block(
    payload: Mapping[str, object] | None,
    script_url: str,
    nonce: str | None = None,
    *,
    endpoint: str | None = None,
) -> str:
    """Render the data block plus the loader script tag (ASCII only).

    ``payload`` is ``{token, expires_at, refresh_in, endpoint}``; ``None`` renders ``null``
    (no token at render time, e.g. the provider was down), and the script then fetches one at
    start-up from ``endpoint`` (rendered as ``data-endpoint``) or its default.
    """
    data = "null" if payload is None else json_for_html(dict(payload))
    attrs = [f'src="{_attr(script_url)}"']
    if nonce:
        attrs.append(f'nonce="{_attr(nonce)}"')
    if endpoint:
        attrs.append(f'data-endpoint="{_attr(endpoint)}"')
    return (
        f'<script type="application/json" id="{TOKEN_BLOCK_ID}">{data}</script>'
        f"<script {' '.join(attrs)} defer></script>"
    )


# CSP3 nonce-source: "'nonce-" base64-value "'", keywords matched case-insensitively.
_NONCE = re.compile(r"'nonce-([A-Za-z0-9+/_-]+={0,2})'", re.IGNORECASE)
# Directives that govern an external <script src> element, most specific first.
_SCRIPT_DIRECTIVES = ("script-src-elem", "script-src", "default-src")


def _policy_nonce(policy: str) -> str | None:
    directives: dict[str, str] = {}
    for part in policy.split(";"):
        name, _, value = part.strip().replace("\t", " ").partition(" ")
        # The first occurrence of a directive wins; later duplicates are ignored (CSP3).
        directives.setdefault(name.lower(), value)
    for name in _SCRIPT_DIRECTIVES:
        if name in directives:
            m = _NONCE.search(directives[name])
            return m.group(1) if m else None
    return None


def extract_csp_nonce(headers: HeadersLike) -> str | None:
    """The nonce the app's ``Content-Security-Policy`` allows for script elements, if any.

    Looks at ``script-src-elem``, else ``script-src``, else ``default-src`` of every enforced
    policy (repeated headers and comma-joined policies included) and returns the first nonce
    found. ``Content-Security-Policy-Report-Only`` is ignored: it blocks nothing.
    """
    for value in Headers.coerce(headers).get_all(b"content-security-policy"):
        for policy in value.decode("latin-1").split(","):
            nonce = _policy_nonce(policy)
            if nonce:
                return nonce
    return None
