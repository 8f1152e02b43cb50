"""embedgate's own session cookie: reading it from a ``Cookie`` header and issuing it.

Read on every page and token request, so parsing is a plain split rather than
:class:`http.cookies.SimpleCookie` (ten times slower, and it gives up on a whole header at
the first cookie of another app that is not RFC 6265 clean). Only well-formed ids count.

Ids are issued by embedgate and carry a MAC (:class:`SessionIds`): a client that invents
ids gets none of them accepted, so it cannot open fresh rate-limit windows or cache entries
at will (each replaced id is a new session counted against its user).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from typing import Final

from ..cache import SESSION_ID_BYTES
from ..errors import ConfigurationError

_VALID_ID = re.compile(r"[A-Za-z0-9_-]{32,128}")
_RANDOM_CHARS: Final = 32  # base64url of SESSION_ID_BYTES
_MAC_BYTES: Final = 16
_MAC_CHARS: Final = 22  # base64url of _MAC_BYTES, unpadded
_VERIFIED_MAX: Final = 8192


class SessionIds:
    """Issues and verifies embedgate's session ids: 32 random characters then a 128-bit
    HMAC-SHA256 of them under ``key``, all base64url (54 characters, a valid cookie value).
    Verification is constant-time."""

    __slots__ = ("_key", "_verified")

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("a session key needs at least 32 bytes")
        self._key = key
        # Ids verified lately: a live session's cookie is checked once, not on every request.
        self._verified: dict[str, None] = {}

    def _mac(self, random_part: str) -> str:
        digest = hmac.new(self._key, random_part.encode("ascii"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:_MAC_BYTES]).rstrip(b"=").decode("ascii")

    def issue(self) -> str:
        random_part = secrets.token_urlsafe(SESSION_ID_BYTES)
        return random_part + self._mac(random_part)

    def verify(self, session_id: str) -> bool:
        """Whether embedgate issued ``session_id`` (under this key)."""
        if session_id in self._verified:
            return True
        if len(session_id) != _RANDOM_CHARS + _MAC_CHARS or not session_id.isascii():
            return False
        random_part, mac = session_id[:_RANDOM_CHARS], session_id[_RANDOM_CHARS:]
        if not hmac.compare_digest(mac, self._mac(random_part)):
            return False
        if len(self._verified) >= _VERIFIED_MAX:
            self._verified.clear()
        self._verified[session_id] = None
        return True

    def __repr__(self) -> str:
        return "SessionIds(key=<derived>)"


# RFC 6265 cookie-name: an RFC 9110 token.
_COOKIE_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_PATH_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f;]")


def read_session_cookie(
    cookie_header: str | None, name: str, ids: SessionIds | None = None
) -> str | None:
    """The session id in a ``Cookie`` header, if present, well-formed and (with ``ids``)
    issued by embedgate.

    The first such value wins: browsers list the cookie of the most specific path first
    (RFC 6265 section 5.4), and a malformed or forged value is ignored, not trusted.
    """
    if not cookie_header:
        return None
    at = cookie_header.find(name)
    if at < 0:
        return None
    if cookie_header.find(name, at + 1) < 0:
        # The usual case, the name once: read that one pair, not every cookie.
        value = _pair_value(cookie_header, name, at)
        if value is None:
            return None
        if len(value) > 1 and value[0] == value[-1] == '"':
            value = value[1:-1]
        if _VALID_ID.fullmatch(value) and (ids is None or ids.verify(value)):
            return value
        return None
    for part in cookie_header.split(";"):
        key, sep, value = part.partition("=")
        if sep and key.strip() == name:
            value = value.strip()
            if len(value) > 1 and value[0] == value[-1] == '"':
                value = value[1:-1]
            if _VALID_ID.fullmatch(value) and (ids is None or ids.verify(value)):
                return value
    return None


def _pair_value(header: str, name: str, at: int) -> str | None:
    """The value of the cookie-pair whose name is at ``at``, or None when the name there
    is not a pair's whole name (the split-and-strip rules of the loop above)."""
    start = header.rfind(";", 0, at) + 1
    if header[start:at].strip():
        return None  # part of another name or value
    end = header.find(";", at)
    segment = header[at + len(name) : end if end >= 0 else len(header)]
    key_rest, sep, value = segment.partition("=")
    if not sep or key_rest.strip():
        return None
    return value.strip()


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
