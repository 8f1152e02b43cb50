"""embedgate's own session cookie: reading it from a ``Cookie`` header and issuing it.

Read on every page and token request, so parsing is a plain split rather than
:class:`http.cookies.SimpleCookie` (ten times slower, and it gives up on a whole header at
the first cookie of another app that is not RFC 6265 clean). Only well-formed ids count.
"""

from __future__ import annotations

import re
import secrets

from ..errors import ConfigurationError

SESSION_ID_BYTES = 24  # 192 random bits, above the 128 the OWASP session cheat sheet asks
_VALID_ID = re.compile(r"[A-Za-z0-9_-]{32,128}")
# RFC 6265 cookie-name: an RFC 9110 token.
_COOKIE_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_PATH_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f;]")


def new_session_id() -> str:
    return secrets.token_urlsafe(SESSION_ID_BYTES)


def read_session_cookie(cookie_header: str | None, name: str) -> str | None:
    """The session id in a ``Cookie`` header, if present and well-formed.

    The first well-formed value wins: browsers list the cookie of the most specific path
    first (RFC 6265 section 5.4), and a malformed value is ignored, not trusted.
    """
    if not cookie_header or name not in cookie_header:
        return None
    for part in cookie_header.split(";"):
        key, sep, value = part.partition("=")
        if sep and key.strip() == name:
            value = value.strip()
            if len(value) > 1 and value[0] == value[-1] == '"':
                value = value[1:-1]
            if _VALID_ID.fullmatch(value):
                return value
    return None


def check_cookie_name(name: str) -> str:
    """``name`` if it can be a cookie name, else :class:`ConfigurationError` at start-up."""
    if not _COOKIE_NAME.fullmatch(name):
        raise ConfigurationError(
            "EMBEDGATE_COOKIE_NAME", f"expected a cookie name (letters, digits, -_.), got {name!r}"
        )
    return name


def session_cookie(name: str, value: str, *, secure: bool, path: str = "/") -> str:
    """A ``Set-Cookie`` value: HttpOnly, SameSite=Lax, Secure on https, session lifetime
    (no Expires/Max-Age: it ends with the browser session)."""
    check_cookie_name(name)
    if not _VALID_ID.fullmatch(value):
        raise ValueError("not a session id")
    if not path.startswith("/") or _PATH_FORBIDDEN.search(path):
        path = "/"
    return f"{name}={value}; HttpOnly; Path={path}; SameSite=Lax" + ("; Secure" if secure else "")
