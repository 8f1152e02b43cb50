"""What every response carrying a token must look like to caches, for the tests here."""

from __future__ import annotations

from collections.abc import Iterable

# What an app (or a framework, a CDN integration) may set on a page before embedgate sees
# it; a shared cache obeying any of these could keep one user's token for everyone.
HOSTILE: tuple[tuple[str, str], ...] = (
    ("Cache-Control", "public, max-age=600, s-maxage=3600"),
    ("Surrogate-Control", "max-age=3600"),
    ("CDN-Cache-Control", "max-age=3600"),
    ("Cloudflare-CDN-Cache-Control", "max-age=3600"),
    ("Vercel-CDN-Cache-Control", "max-age=3600"),
    ("X-Accel-Expires", "3600"),
    ("Edge-Control", "cache-maxage=3600"),
    ("Expires", "Thu, 01 Dec 2099 16:00:00 GMT"),
    ("Pragma", "cache"),
    ("Age", "12"),
    ("ETag", '"v1"'),
    ("Last-Modified", "Wed, 21 Oct 2015 07:28:00 GMT"),
    ("Vary", "Accept-Encoding"),
)
SHARED_CACHE_NAMES = frozenset(
    name.lower() for name, _ in HOSTILE if name.lower() not in ("cache-control", "vary")
)


def assert_private(headers: Iterable[tuple[str, str]], where: str = "") -> None:
    """``Cache-Control: private, no-store`` (one value), ``Cookie`` in ``Vary``, and no
    header a shared cache could keep the response by."""
    pairs = [(n.lower(), v) for n, v in headers]
    controls = [v for n, v in pairs if n == "cache-control"]
    assert controls == ["private, no-store"], (where, controls)
    vary = {t.strip().lower() for n, v in pairs if n == "vary" for t in v.split(",")}
    assert "cookie" in vary, (where, vary)
    left = sorted({n for n, _ in pairs} & SHARED_CACHE_NAMES)
    assert not left, (where, left)
    assert not any(n.endswith("cdn-cache-control") for n, _ in pairs), where


def as_str(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(n.decode("latin-1"), v.decode("latin-1")) for n, v in headers]
