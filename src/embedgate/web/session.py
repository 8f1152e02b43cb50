"""embedgate's own session cookie: parsing (stdlib ``http.cookies``) and issuing."""

from __future__ import annotations

import re
import secrets
from http.cookies import CookieError, SimpleCookie

SESSION_ID_BYTES = 24  # 192 random bits, above the 128 the OWASP session cheat sheet asks
_VALID_ID = re.compile(r"^[A-Za-z0-9_-]{32,128}$")


def new_session_id() -> str:
    return secrets.token_urlsafe(SESSION_ID_BYTES)


def read_session_cookie(cookie_header: str | None, name: str) -> str | None:
    """The session id in a ``Cookie`` header, if present and well-formed."""
    if not cookie_header:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(cookie_header)
    except CookieError:
        return _scan(cookie_header, name)
    morsel = jar.get(name)
    value = morsel.value if morsel is not None else _scan(cookie_header, name)
    return value if value and _VALID_ID.match(value) else None


def _scan(cookie_header: str, name: str) -> str | None:
    # SimpleCookie gives up on the whole header at the first cookie it cannot parse
    # (other apps' cookies are often not RFC 6265 clean); fall back to a plain split.
    for part in cookie_header.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return value.strip('"')
    return None


def session_cookie(name: str, value: str, *, secure: bool, path: str = "/") -> str:
    """A ``Set-Cookie`` value: HttpOnly, SameSite=Lax, Secure on https, session lifetime."""
    jar: SimpleCookie = SimpleCookie()
    jar[name] = value
    morsel = jar[name]
    morsel["path"] = path
    morsel["httponly"] = True
    morsel["samesite"] = "Lax"
    if secure:
        morsel["secure"] = True
    return morsel.OutputString()
