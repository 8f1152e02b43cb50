"""URL and path checks by the WHATWG URL Standard, the rules browsers (and ``embedgate.js``,
through ``new URL()``) apply, parsed with ada-url (the parser Node.js uses).

Hand-written prefix checks disagree with browsers on inputs such as ``/\\evil.example/``
(a backslash is a slash in http(s) URLs), ``\\t`` or ``\\n`` inside a scheme (stripped), or
``%2e%2e`` path segments (a ``..``). Every check here parses the way the browser will.
"""

from __future__ import annotations

from typing import Final

import ada_url

from .errors import ConfigurationError

__all__ = [
    "PAGE_ORIGIN",
    "check_path_id",
    "check_url_template",
    "origin_of",
    "resolve",
    "same_site_path",
    "url_class",
]

PAGE_ORIGIN: Final = "self"
"""In a list of origins: the page's own origin (what a path such as ``/embed`` resolves to)."""

# A page is served over http or https: a relative URL is same-site only if it stays on the
# page's origin under both (``https:evil.example`` is a path on an https page, a host on an
# http one). ``.invalid`` names can never be real hosts.
_PAGE_BASES: Final = ("https://page.embedgate.invalid/a/b", "http://page.embedgate.invalid/a/b")
_PLACEHOLDERS: Final = {"{token}": "t0k", "{resource}": "r0s"}


def resolve(url: str, base: str | None = None) -> str | None:
    """``url`` (relative to ``base``) as the browser's ``new URL(url, base).href``, or None
    where the browser throws."""
    try:
        return str(ada_url.URL(url, base).href) if base is not None else str(ada_url.URL(url).href)
    except ValueError:
        return None


def origin_of(url: str, base: str | None = None) -> str | None:
    """The serialised origin (``https://host[:port]``) of an http(s) URL, else None
    (unparseable, or an opaque origin: ``javascript:``, ``data:``, ``blob:``...)."""
    try:
        parsed = ada_url.URL(url, base) if base is not None else ada_url.URL(url)
    except ValueError:
        return None
    if parsed.protocol not in ("http:", "https:"):
        return None
    return str(parsed.origin)


def same_site_path(url: str) -> bool:
    """Whether ``url`` resolves, on any http(s) page, to that page's own origin."""
    return all(origin_of(url, base) == origin_of(base) for base in _PAGE_BASES)


def url_class(url: str) -> str | None:
    """:data:`PAGE_ORIGIN` for a reference that stays on the page's origin whatever the page
    (a path, query or fragment: never ``//host``, ``/\\host`` or ``https:host``), the origin
    of an absolute http(s) URL that no base changes, else None (``javascript:``, ``data:``,
    ambiguous, unparseable). ``embedgate.js`` classifies with the same rules (``urlClass``).
    """
    if same_site_path(url):
        return PAGE_ORIGIN
    origin = origin_of(url)
    return origin if origin is not None and origin_of(url, _PAGE_BASES[0]) == origin else None


def check_url_template(setting: str, template: str, origins: tuple[str, ...] = ()) -> str:
    """A URL template the browser resolves to one of ``origins`` (serialised origins, or
    :data:`PAGE_ORIGIN` for the page's own), placeholders filled in. With no ``origins``,
    any http(s) origin or the page's own is accepted (never ``javascript:``, ``data:``...).
    """
    probe = template
    for placeholder, value in _PLACEHOLDERS.items():
        probe = probe.replace(placeholder, value)
    found = url_class(probe)
    if found is None:
        raise ConfigurationError(
            setting, "expected an absolute http(s) URL or a path on the page's own site"
        )
    if origins and found not in origins:
        where = "a path on the page's own site" if found == PAGE_ORIGIN else found
        raise ConfigurationError(
            setting, f"resolves to {where}, not to the provider's origin ({', '.join(origins)})"
        )
    return template


def check_path_id(setting: str, ident: str, *, segments: int = 1) -> str:
    """An id placed into a URL path as at most ``segments`` segments: the browser must read
    back exactly the path written (no ``.``/``..``/``%2e`` segment, no backslash, no
    ``?``/``#``, no tab or newline, nothing percent-encoded or normalised), else refused."""
    parts = ident.split("/")
    bad = (
        not ident
        or len(parts) > segments
        or any(not part or part.strip(".") == "" for part in parts)
        or any(c in ident for c in "%\\?#")
        or not ident.isprintable()
        or not ident.isascii()
    )
    if not bad:
        path = "/p/" + ident
        try:
            bad = ada_url.URL(path, _PAGE_BASES[0]).pathname != path
        except ValueError:
            bad = True
    if bad:
        raise ConfigurationError(setting, f"{ident!r} is not a plain path id")
    return ident
