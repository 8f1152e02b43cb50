"""The peers: what an app would write by hand instead of using embedgate.

Each keeps a session's token in a dict (pre-rendered as the page's snippet) and pastes it
into the page: the session cookie found with a byte search, the snippet looked up, the
page searched for ``</head>``, the snippet spliced in, ``Content-Length`` fixed and the
page made private (``Cache-Control: private, no-store``, as any page carrying a token must
be). The signing peer calls ``jwt.encode`` on every request instead of the dict. The token
endpoint applies the same header checks as embedgate's (method, same origin, the
``X-Embedgate: 1`` header, a known session) and answers the cached token as JSON.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jwt

COOKIE = "hw_session"
_NEEDLE = COOKIE.encode() + b"="
HEAD = b"</head>"
PRIVATE = (b"cache-control", b"private, no-store")


def _session(cookie: bytes | None) -> str | None:
    if not cookie:
        return None
    at = cookie.find(_NEEDLE)
    if at < 0:
        return None
    at += len(_NEEDLE)
    end = cookie.find(b";", at)
    return (cookie[at:] if end < 0 else cookie[at:end]).decode("ascii")


def _token(session_id: str, secret: str, now: float) -> str:
    claims = {"sub": session_id[:12], "iat": int(now), "exp": int(now) + 300, "aud": "analytics"}
    return jwt.encode(claims, secret, algorithm="HS256")


def _snippet(token: str, now: float) -> bytes:
    data = json.dumps({"token": token, "expires_at": int(now) + 300})
    return (
        f'<script type="application/json" id="embedgate-token">{data}</script>'
        f'<script src="/static/embed.js" defer></script>'
    ).encode()


def snippets(ids: Iterable[str], secret: str) -> dict[str, bytes]:
    """One pre-rendered snippet per session, its token signed once."""
    now = time.time()
    return {sid: _snippet(_token(sid, secret, now), now) for sid in ids}


def tokens(ids: Iterable[str], secret: str) -> dict[str, str]:
    now = time.time()
    return {sid: _token(sid, secret, now) for sid in ids}


class Signing(Mapping[str, bytes]):
    """A "dict" of snippets that signs a fresh JWT on every lookup."""

    def __init__(self, ids: Iterable[str], secret: str) -> None:
        self.ids = set(ids)
        self.secret = secret

    def __getitem__(self, session_id: str) -> bytes:
        if session_id not in self.ids:
            raise KeyError(session_id)
        now = time.time()
        return _snippet(_token(session_id, self.secret, now), now)

    def get(self, session_id: str, default: Any = None) -> Any:  # type: ignore[override]
        try:
            return self[session_id]
        except KeyError:
            return default

    def __iter__(self) -> Any:
        return iter(self.ids)

    def __len__(self) -> int:
        return len(self.ids)


def _splice(body: bytes, snippet: bytes) -> bytes | None:
    at = body.find(HEAD)
    return None if at < 0 else body[:at] + snippet + body[at:]


class AsgiInjector:
    """A minimal ASGI middleware: buffer an HTML page, splice the session's snippet."""

    def __init__(self, app: Any, snippets: Mapping[str, bytes]) -> None:
        self.app = app
        self.snippets = snippets

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cookie = None
        for name, value in scope["headers"]:
            if name == b"cookie":
                cookie = value
                break
        session_id = _session(cookie)
        snippet = self.snippets.get(session_id) if session_id else None
        if snippet is None:
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def wrapped(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = message["headers"]
                html = any(n == b"content-type" and v.startswith(b"text/html") for n, v in headers)
                if html:
                    start.update(message)
                    return
                await send(message)
            elif start:
                chunks.append(message.get("body", b""))
                if message.get("more_body"):
                    return
                body = b"".join(chunks)
                spliced = _splice(body, snippet)
                headers = [
                    (n, v) for n, v in start["headers"] if n not in (b"content-length", b"etag")
                ]
                if spliced is not None:
                    body = spliced
                    headers.append(PRIVATE)
                headers.append((b"content-length", str(len(body)).encode()))
                await send({**start, "headers": headers})
                await send({"type": "http.response.body", "body": body})
            else:
                await send(message)

        await self.app(scope, receive, wrapped)


class WsgiInjector:
    """The same for WSGI."""

    def __init__(self, app: Callable[..., Iterable[bytes]], snippets: Mapping[str, bytes]):
        self.app = app
        self.snippets = snippets

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        cookie = environ.get("HTTP_COOKIE")
        session_id = _session(cookie.encode("latin-1")) if cookie else None
        snippet = self.snippets.get(session_id) if session_id else None
        if snippet is None:
            return self.app(environ, start_response)
        held: list[Any] = []

        def hold(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            held[:] = [status, headers, exc_info]
            return lambda data: None

        result = self.app(environ, hold)
        status, headers, exc_info = held
        html = any(n.lower() == "content-type" and v.startswith("text/html") for n, v in headers)
        if not html:
            start_response(status, headers, exc_info)
            return result
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        spliced = _splice(body, snippet)
        out = [(n, v) for n, v in headers if n.lower() not in ("content-length", "etag")]
        if spliced is not None:
            body = spliced
            out.append(("Cache-Control", "private, no-store"))
        out.append(("Content-Length", str(len(body))))
        start_response(status, out, exc_info)
        return [body]


def json_app(data: object) -> Any:
    """A bare JSON route (any path): the token endpoint's baseline."""
    body = json.dumps(data).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


class TokenEndpoint:
    """A hand-written token endpoint with embedgate's header checks, the token from a dict."""

    def __init__(self, app: Any, tokens: Mapping[str, str], path: str = "/_embedgate/token"):
        self.app = app
        self.tokens = tokens
        self.path = path

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        status, answer = self._answer(scope)
        await receive()
        body = json.dumps(answer, separators=(",", ":")).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"x-content-type-options", b"nosniff"),
            PRIVATE,
            (b"vary", b"Cookie"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _answer(self, scope: Any) -> tuple[int, dict[str, Any]]:
        if scope["method"] != "POST":
            return 405, {"error": "method_not_allowed"}
        host = origin = site = csrf = cookie = None
        for name, value in scope["headers"]:
            if name == b"host":
                host = value
            elif name == b"origin":
                origin = value
            elif name == b"sec-fetch-site":
                site = value
            elif name == b"x-embedgate":
                csrf = value
            elif name == b"cookie":
                cookie = value
        if site is not None and site not in (b"same-origin", b"none"):
            return 403, {"error": "cross_origin"}
        if origin is not None and origin != b"http://" + (host or b""):
            return 403, {"error": "cross_origin"}
        if csrf != b"1":
            return 403, {"error": "missing_header"}
        session_id = _session(cookie)
        token = self.tokens.get(session_id) if session_id else None
        if token is None:
            return 401, {"error": "unauthenticated"}
        now = time.time()
        return 200, {"token": token, "expires_in": 300, "refresh_in": 240, "server_time": now}
