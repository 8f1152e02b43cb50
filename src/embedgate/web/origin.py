"""Request checks for the JSON token endpoint: same-origin only, plus a custom header.

Decision order of :func:`is_same_origin`:

1. ``Sec-Fetch-Site`` present (every current browser sends it): ``same-origin`` and ``none``
   (a user-initiated navigation) are allowed; ``same-site``, ``cross-site`` and anything
   unknown are refused. A sibling subdomain is ``same-site`` and is refused on purpose.
2. Else ``Origin`` present: allowed only if it equals the request's own origin
   (``scheme://host[:port]``, case and default ports normalised). ``null`` (sandboxed frames,
   ``file:``, some redirects) is refused, as is a malformed or repeated value.
3. Neither header: allowed. Browsers send ``Origin`` on every ``POST``, so only non-browser
   clients (scripts, test clients with a cookie jar) land here. A cross-site page cannot forge
   a browser request without these headers that also carries ``X-Embedgate: 1``: a custom
   header needs a CORS preflight, which the endpoint never grants (:func:`has_csrf_header`).

``scheme`` and ``host`` must be what the browser sees. Behind a TLS-terminating proxy, the
shell must pass the forwarded scheme/host (from a proxy-fix it trusts), or same-origin requests
will be refused.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from .headers import Headers, HeadersLike

__all__ = ["has_csrf_header", "is_same_origin", "normalize_origin", "request_origin"]

CSRF_HEADER = "X-Embedgate"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_ALLOWED_FETCH_SITES = frozenset({b"same-origin", b"none"})


def _serialise(scheme: str, hostname: str | None, port: int | None) -> str | None:
    if scheme not in _DEFAULT_PORTS or not hostname:
        return None
    host = f"[{hostname}]" if ":" in hostname else hostname
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def request_origin(scheme: str, host: str) -> str | None:
    """The request's own origin from its scheme and ``Host`` (``None`` if unusable).

    Only ``http``/``https``; the default port is dropped, so ``https`` + ``x:443`` gives
    ``https://x``.
    """
    if not host or any(c in host for c in "/?#@\\ "):
        return None
    try:
        parts = urlsplit(f"//{host}")
        return _serialise(scheme.lower(), parts.hostname, parts.port)
    except ValueError:  # bad port or bracket syntax
        return None


def normalize_origin(origin: str) -> str | None:
    """An ``Origin`` header value in canonical form, or ``None`` if it is not a tuple origin.

    ``null``, paths, queries, fragments, credentials and non-http(s) schemes all give ``None``.
    """
    origin = origin.strip()
    if not origin or origin == "null" or any(c in origin for c in "?#@\\ "):
        return None
    try:
        parts = urlsplit(origin)
        if parts.path or not parts.netloc:
            return None
        return _serialise(parts.scheme.lower(), parts.hostname, parts.port)
    except ValueError:
        return None


def is_same_origin(headers: HeadersLike, scheme: str, host: str) -> bool:
    """Whether a token-endpoint request comes from a page of this origin (see module doc)."""
    h = Headers.coerce(headers)
    site = h.get_all(b"sec-fetch-site")
    if site:
        return len(site) == 1 and site[0].strip().lower() in _ALLOWED_FETCH_SITES
    origins = h.get_all(b"origin")
    if not origins:
        return True
    if len(origins) != 1:
        return False
    own = request_origin(scheme, host)
    claimed = normalize_origin(origins[0].decode("latin-1"))
    return own is not None and claimed == own


def has_csrf_header(headers: HeadersLike) -> bool:
    """Whether the request carries ``X-Embedgate: 1`` (which forces a CORS preflight)."""
    values = Headers.coerce(headers).get_all(CSRF_HEADER)
    return len(values) == 1 and values[0].strip() == b"1"
