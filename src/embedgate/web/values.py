"""The plain values the web rules and their shells pass each other (requests, responses,
session decisions, page plans, token asks), and the builders of JSON and error responses."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final

from .cache_policy import private_headers
from .headers import Headers
from .injection import HtmlInjector

RawHeaders = list[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class WebRequest:
    """What the rules need to know of a request."""

    method: str
    path: str  # relative to the app's mount point (ASGI root_path / WSGI SCRIPT_NAME)
    scheme: str
    host: str
    headers: Headers
    root: str = ""  # the mount point, for URLs the browser will use


@dataclass(slots=True)
class WebResponse:
    """A complete response the shell sends as is."""

    status: int
    headers: Headers = field(default_factory=Headers)
    body: bytes = field(default=b"", repr=False)  # may hold a token


@dataclass(frozen=True, slots=True)
class SessionDecision:
    """The session a request belongs to, and the cookie to set if it is new. Neither is
    ever shown by ``repr`` (logs, tracebacks)."""

    session_id: str = field(repr=False)
    set_cookie: bytes | None = field(default=None, repr=False)


@dataclass(slots=True)
class PagePlan:
    """An HTML response held back for the snippet: the app's headers as sent, the
    injector buffering its body, and its CSP header values (for the loader's nonce)."""

    headers: RawHeaders = field(repr=False)  # the app's cookies, maybe
    injector: HtmlInjector = field(repr=False)
    csp: list[bytes] = field(repr=False)


@dataclass(frozen=True, slots=True)
class TokenAsk:
    """What a token request asks for: the session's token (``resource`` None), or the
    token bound to one resource (``data-embedgate-resource`` in the page)."""

    resource: str | None = None


SESSION_TOKEN: Final = TokenAsk()


def json_response(status: int, data: dict[str, Any], *extra: tuple[bytes, bytes]) -> WebResponse:
    """``data`` as a compact JSON body, never cached (the token endpoint's answers: see
    :func:`~embedgate.web.cache_policy.private_headers`), plus the ``extra`` headers."""
    body = json.dumps(data, separators=(",", ":")).encode("utf-8")
    headers = Headers(
        private_headers(
            [
                (b"content-type", b"application/json"),
                (b"x-content-type-options", b"nosniff"),
                *extra,
            ],
            body_length=len(body),
        )
    )
    return WebResponse(status, headers, body)


def error_response(
    status: int, code: str, message: str, *extra: tuple[bytes, bytes]
) -> WebResponse:
    """``{"error": code, "message": message}`` with ``status``."""
    return json_response(status, {"error": code, "message": message}, *extra)


def invalid_field(field: str, problem: str) -> WebResponse:
    """400 ``invalid_request`` naming the ``field`` at fault."""
    return json_response(
        400, {"error": "invalid_request", "field": field, "message": f"{field}: {problem}"}
    )


def with_cookie(response: WebResponse, decision: SessionDecision | None) -> WebResponse:
    """``response`` with the new session's cookie, if ``decision`` sets one."""
    if decision is not None and decision.set_cookie is not None:
        response.headers.add(b"set-cookie", decision.set_cookie)
    return response
