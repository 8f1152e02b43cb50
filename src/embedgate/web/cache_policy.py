"""The one rule for the headers of a response that carries a token (:func:`private_headers`).

A page or a JSON answer holding one user's token must never be kept by a shared cache
(a CDN, a reverse proxy) and served to someone else. ``Cache-Control: private, no-store``
alone is not enough: CDNs obey their own headers over it (``Surrogate-Control`` at
Fastly/Varnish/Akamai, ``CDN-Cache-Control`` and its vendor forms at Cloudflare, Vercel,
Netlify, ``X-Accel-Expires`` at nginx, ``Edge-Control`` at Akamai), and HTTP/1.0 caches
read ``Expires``. Every path that sends a token (injection, the template helpers, the
token endpoint, HEAD, error pages, streamed pages) goes through this function.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

RawHeaders = list[tuple[bytes, bytes]]

CACHE_CONTROL: Final = b"private, no-store"
"""The ``Cache-Control`` of every response that carries a token."""

# Directives to caches other than the browser, or freshness/validation that a shared
# cache could use to keep or revalidate the response: dropped whatever their value.
SHARED_CACHE_HEADERS: Final = frozenset(
    {
        b"cache-control",
        b"surrogate-control",
        b"cdn-cache-control",
        b"edge-control",
        b"x-accel-expires",
        b"expires",
        b"pragma",
        b"age",
        b"etag",
        b"last-modified",
        b"x-cache-control",
    }
)
_CDN_SUFFIX: Final = b"-cdn-cache-control"  # Cloudflare-, Vercel-, Netlify-CDN-Cache-Control
_CACHE_SUFFIX: Final = b"-cache-control"  # Akamai-Cache-Control, X-LiteSpeed-Cache-Control

# Describe the original body; a rewritten body makes them lie.
BODY_HEADERS: Final = frozenset(
    {
        b"content-length",
        b"transfer-encoding",  # never beside Content-Length (RFC 9112 section 6.1)
        b"content-md5",
        b"digest",
        b"content-digest",
        b"repr-digest",
        b"accept-ranges",
    }
)


def is_shared_cache_header(name: bytes) -> bool:
    """Whether a header (lower-case name) lets some cache keep or revalidate a response."""
    return (
        name in SHARED_CACHE_HEADERS or name.endswith(_CDN_SUFFIX) or name.endswith(_CACHE_SUFFIX)
    )


def merge_vary(values: Iterable[bytes], add: bytes = b"Cookie") -> bytes:
    """``Vary`` with ``add`` once (names compare case-insensitively; ``*`` stays)."""
    tokens: list[bytes] = []
    seen: set[bytes] = set()
    for token in (t.strip() for v in values for t in v.split(b",")):
        if token and token.lower() not in seen:
            seen.add(token.lower())
            tokens.append(token)
    if b"*" not in seen and add.lower() not in seen:
        tokens.append(add)
    return b", ".join(tokens)


def private_headers(
    raw: Iterable[tuple[bytes, bytes]],
    *,
    body_length: int | None = None,
    rewritten: bool | None = None,
    set_cookie: bytes | None = None,
) -> RawHeaders:
    """``raw`` made fit for a response that carries a token, in one pass.

    ``Cache-Control: private, no-store`` replaces any value; ``Cookie`` is merged into
    ``Vary``; every header letting a shared cache keep or revalidate the response is
    dropped (see :func:`is_shared_cache_header`: ``Surrogate-Control``,
    ``*-CDN-Cache-Control``, ``X-Accel-Expires``, ``Edge-Control``, ``Expires``,
    ``Pragma``, ``Age``, ``ETag``, ``Last-Modified``). When the body was ``rewritten``
    (default: when ``body_length`` is given) ``Content-Length`` is set to ``body_length``
    (left out when None: a stream the server frames) and ``Transfer-Encoding``, body
    digests and ``Accept-Ranges`` are dropped. ``set_cookie`` is appended as a
    ``Set-Cookie``.
    """
    out: RawHeaders = []
    vary: list[bytes] = []
    if rewritten is None:
        rewritten = body_length is not None
    for pair in raw:
        name = pair[0].lower()
        if name == b"vary":
            vary.append(pair[1])
            continue
        if is_shared_cache_header(name) or (rewritten and name in BODY_HEADERS):
            continue
        out.append(pair)
    if body_length is not None:
        out.append((b"content-length", str(body_length).encode("ascii")))
    out.append((b"cache-control", CACHE_CONTROL))
    out.append((b"vary", merge_vary(vary)))
    if set_cookie is not None:
        out.append((b"set-cookie", set_cookie))
    return out


def is_private(raw: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether headers already satisfy :func:`private_headers` (for tests and asserts)."""
    pairs = [(n.lower(), v) for n, v in raw]
    controls = [v for n, v in pairs if n == b"cache-control"]
    if controls != [CACHE_CONTROL]:
        return False
    vary = [t.strip().lower() for n, v in pairs if n == b"vary" for t in v.split(b",")]
    if b"cookie" not in vary and b"*" not in vary:
        return False
    return not any(is_shared_cache_header(n) for n, _ in pairs if n != b"cache-control")
