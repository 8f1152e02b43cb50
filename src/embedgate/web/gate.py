"""The web rules, sans I/O: routing, the token endpoint's answers, sessions, and the page
snippet. The ASGI and WSGI shells translate messages to and from these plain values."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Final, Literal

from ..engine import Engine
from ..errors import EmbedgateError, IssuerError, PrincipalError
from ..token import EmbedToken
from .headers import Headers
from .injection import HtmlInjector, content_type_charset, response_headers_after_injection
from .injection import should_inject as _should_inject
from .origin import has_csrf_header, is_same_origin
from .ratelimit import RateLimiter
from .session import new_session_id, read_session_cookie, session_cookie
from .snippet import extract_csp_nonce, render_token_snippet

log = logging.getLogger("embedgate")

Route = Literal["token", "script", "jwks"]
TOKEN_PATH: Final = "/token"
SCRIPT_PATH: Final = "/embedgate.js"
JWKS_PATH: Final = "/jwks.json"
_NO_STORE: Final = ((b"cache-control", b"no-store"), (b"pragma", b"no-cache"))


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
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class SessionDecision:
    """The session a request belongs to, and the cookie to set if it is new."""

    session_id: str
    set_cookie: bytes | None = None


def _json_response(status: int, data: dict[str, Any], *extra: tuple[bytes, bytes]) -> WebResponse:
    body = json.dumps(data, separators=(",", ":")).encode("utf-8")
    headers = Headers(
        [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode("ascii")),
            (b"x-content-type-options", b"nosniff"),
            *_NO_STORE,
            *extra,
        ]
    )
    return WebResponse(status, headers, body)


def _error(status: int, code: str, message: str, *extra: tuple[bytes, bytes]) -> WebResponse:
    return _json_response(status, {"error": code, "message": message}, *extra)


def _with_cookie(response: WebResponse, decision: SessionDecision) -> WebResponse:
    if decision.set_cookie is not None:
        response.headers.add(b"set-cookie", decision.set_cookie)
    return response


def _load_script() -> bytes:
    return resources.files("embedgate").joinpath("static/embedgate.js").read_bytes()


class WebGate:
    """Rules shared by both shells. Holds configuration only; no per-request state."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.config = engine.config
        self.prefix = engine.config.prefix
        self.limiter = RateLimiter(engine.config.rate_limit, clock=engine.clock)
        self._script = _load_script()
        self._script_etag = b'"' + hashlib.sha256(self._script).hexdigest()[:20].encode() + b'"'

    # -- routing ---------------------------------------------------------------------------

    def route(self, request: WebRequest) -> Route | None:
        path = request.path
        if not path.startswith(self.prefix):
            return None
        rest = path[len(self.prefix) :]
        if rest == TOKEN_PATH:
            return "token"
        if rest == SCRIPT_PATH:
            return "script"
        if rest == JWKS_PATH:
            return "jwks"
        return None

    def endpoint_url(self, request: WebRequest) -> str:
        return request.root + self.prefix + TOKEN_PATH

    def script_url(self, request: WebRequest) -> str:
        version = self._script_etag.strip(b'"').decode()[:10]
        return f"{request.root}{self.prefix}{SCRIPT_PATH}?v={version}"

    # -- sessions --------------------------------------------------------------------------

    def session(self, request: WebRequest, app_session_id: str | None = None) -> SessionDecision:
        """The app's session id if it gave one, else embedgate's cookie (set when new)."""
        if app_session_id:
            return SessionDecision(app_session_id)
        name = self.config.cookie_name
        existing = read_session_cookie(request.headers.get_str("cookie"), name)
        if existing is not None:
            return SessionDecision(existing)
        secure = self.config.cookie_secure
        if secure is None:
            secure = request.scheme == "https"
        session_id = new_session_id()
        cookie = session_cookie(name, session_id, secure=secure, path=request.root or "/")
        return SessionDecision(session_id, cookie.encode("latin-1"))

    # -- the token endpoint ----------------------------------------------------------------

    def check_token_request(self, request: WebRequest) -> WebResponse | None:
        """405/403 answers that need neither the user nor the session; None to go on."""
        method = request.method.upper()
        allowed = ("POST", "GET") if self.config.allow_get else ("POST",)
        if method not in allowed:
            return _error(
                405,
                "method_not_allowed",
                f"use {' or '.join(allowed)}",
                (b"allow", ", ".join(allowed).encode()),
            )
        if not is_same_origin(request.headers, request.scheme, request.host):
            return _error(403, "cross_origin", "the token endpoint is same-origin only")
        if not has_csrf_header(request.headers):
            return _error(403, "missing_header", "send the header X-Embedgate: 1")
        return None

    def unauthenticated(self) -> WebResponse:
        return _error(401, "unauthenticated", "log in first")

    def throttle(self, decision: SessionDecision) -> WebResponse | None:
        """429 past the per-session rate limit; None to go on and mint."""
        retry_after = self.limiter.hit(decision.session_id)
        if retry_after is None:
            return None
        return _with_cookie(
            _error(
                429,
                "rate_limited",
                "too many token requests",
                (b"retry-after", str(int(retry_after)).encode()),
            ),
            decision,
        )

    def token_response(self, token: EmbedToken, decision: SessionDecision) -> WebResponse:
        payload = token.payload(self.engine.clock.now())
        extend = getattr(self.engine.profile, "endpoint_payload", None)
        if callable(extend):
            payload = extend(token, payload)
        return _with_cookie(_json_response(200, payload), decision)

    def failure(self, error: EmbedgateError, decision: SessionDecision) -> WebResponse:
        """503 when the issuer failed, 403 when the principal breaks the attribute policy."""
        if isinstance(error, PrincipalError):
            log.warning("embedgate: principal refused by the attribute policy (%s)", error.field)
            response = _error(403, "principal_rejected", str(error))
        elif isinstance(error, IssuerError):
            retry = max(1, int(error.retry_after))
            log.warning(
                "embedgate: token endpoint answered 503 (%s: %s)",
                error.provider or self.engine.profile.name,
                error.code,
            )
            response = _error(
                503,
                error.code,
                "the analytics provider is unavailable; retry later",
                (b"retry-after", str(retry).encode()),
            )
        else:
            raise error
        return _with_cookie(response, decision)

    # -- static routes ---------------------------------------------------------------------

    def script_response(self, request: WebRequest) -> WebResponse:
        headers = Headers(
            [
                (b"etag", self._script_etag),
                (b"cache-control", b"public, max-age=3600"),
                (b"x-content-type-options", b"nosniff"),
            ]
        )
        if request.method.upper() not in ("GET", "HEAD"):
            return _error(405, "method_not_allowed", "use GET", (b"allow", b"GET, HEAD"))
        if request.headers.get(b"if-none-match") == self._script_etag:
            return WebResponse(304, headers)
        headers.add(b"content-type", b"text/javascript; charset=utf-8")
        headers.add(b"content-length", str(len(self._script)).encode())
        body = b"" if request.method.upper() == "HEAD" else self._script
        return WebResponse(200, headers, body)

    def jwks_response(self, request: WebRequest) -> WebResponse:
        jwks = self.engine.jwks()
        if jwks is None:
            return _error(404, "no_public_keys", "HMAC keys are secret and never published")
        body = json.dumps(jwks).encode()
        return WebResponse(
            200,
            Headers(
                [
                    (b"content-type", b"application/jwk-set+json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"cache-control", b"public, max-age=300"),
                    (b"x-content-type-options", b"nosniff"),
                ]
            ),
            body,
        )

    # -- pages -----------------------------------------------------------------------------

    def wants_injection(self, method: str, status: int, headers: Headers) -> bool:
        return self.config.inject and _should_inject(
            method, status, headers, limit=self.config.max_inject_bytes
        )

    def injector(self, headers: Headers) -> HtmlInjector:
        return HtmlInjector(
            charset=content_type_charset(headers), limit=self.config.max_inject_bytes
        )

    def page_snippet(
        self, request: WebRequest, response_headers: Headers, token: EmbedToken | None
    ) -> str:
        """The data block + loader script; ``token=None`` when issuance failed (the script
        then fetches one and reports the failure as an event)."""
        endpoint = self.endpoint_url(request)
        payload: dict[str, object] | None = None
        if token is not None:
            data = token.payload(self.engine.clock.now())
            payload = {
                "token": data["token"],
                "expires_at": data["expires_at"],
                "refresh_in": data["refresh_in"],
                "endpoint": endpoint,
            }
        return render_token_snippet(
            payload,
            self.script_url(request),
            extract_csp_nonce(response_headers),
            endpoint=endpoint,
        )

    def page_headers(
        self, headers: Headers, body_length: int, decision: SessionDecision
    ) -> Headers:
        out = response_headers_after_injection(headers, body_length)
        if decision.set_cookie is not None:
            out.add(b"set-cookie", decision.set_cookie)
        return out
