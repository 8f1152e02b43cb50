"""The web rules, sans I/O: routing, the token endpoint's answers, sessions, and pages (which
responses take the snippet, the snippet itself, the headers of a page holding a token). The
ASGI and WSGI shells translate messages to and from these plain values.

Pages are the hot path: every decision a response needs is taken in one pass over its raw
headers, repeated decisions come from small caches, and the snippet is assembled from
markup rendered once per mount point.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Final, Literal

from ..canonical import canonical_json
from ..engine import Engine
from ..errors import ConfigurationError, EmbedgateError, IssuerError, PrincipalError
from ..principal import Principal
from ..token import EmbedToken
from .headers import Headers, parse_content_type
from .injection import STALE_HEADERS, HtmlInjector, content_type_charset, should_inject
from .origin import has_csrf_header, is_same_origin
from .ratelimit import RateLimiter
from .session import check_cookie_name, new_session_id, read_session_cookie, session_cookie
from .snippet import extract_csp_nonce, json_for_html, render_token_snippet

log = logging.getLogger("embedgate")

Route = Literal["token", "script", "jwks"]
RawHeaders = list[tuple[bytes, bytes]]
TOKEN_PATH: Final = "/token"
SCRIPT_PATH: Final = "/embedgate.js"
JWKS_PATH: Final = "/jwks.json"
_NO_STORE: Final = ((b"cache-control", b"no-store"), (b"pragma", b"no-cache"))

# What decides whether a response takes the snippet (see injection.should_inject).
_DECISIVE = frozenset(
    {
        b"content-type",
        b"content-encoding",
        b"content-length",
        b"content-range",
        b"cache-control",
        b"content-disposition",
    }
)
_CSP = b"content-security-policy"
# Replaced or dropped once the body carries a token (see
# injection.response_headers_after_injection): validators and digests of the original body.
_REWRITTEN = frozenset({b"content-length", b"cache-control", b"vary", *STALE_HEADERS})
_PRIVATE = b"private, no-store"
# JWTs and most opaque tokens: the same characters in JSON and in HTML, no escaping needed.
_PLAIN_TOKEN = re.compile(r"[A-Za-z0-9._~+/=-]*")
_PLAIN_NONCE = re.compile(r"[A-Za-z0-9+/_=-]+")
_PARTS_CACHE = 64  # mount points remembered by the snippet cache
_PRINCIPALS_CACHE = 512  # claim sets remembered by WebGate.principal_for
MAX_BODY: Final = 1024  # bytes of a token request body; shells read at most one more
MAX_RESOURCE: Final = 256  # characters of a resource name
_RESOURCE_RULE: Final = f"must be a non-empty string of at most {MAX_RESOURCE} printable characters"


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


def _invalid(field: str, problem: str) -> WebResponse:
    return _json_response(
        400, {"error": "invalid_request", "field": field, "message": f"{field}: {problem}"}
    )


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError("duplicate key")
        out[key] = value
    return out


def _declared_length(headers: Headers) -> int | None:
    value = headers.get(b"content-length")
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def parse_token_body(headers: Headers, body: bytes) -> TokenAsk | WebResponse:
    """What a token request asks for, from its headers and body (read bounded by the shell:
    at most ``MAX_BODY + 1`` bytes), or the error to answer.

    No body: the session's token. Else ``Content-Type: application/json`` and a JSON object
    ``{"resource": "<name>"}`` of at most ``MAX_BODY`` bytes; 413 when larger, 415 for
    another type, 400 naming the field for anything else.
    """
    declared = _declared_length(headers)
    if len(body) > MAX_BODY or (declared is not None and declared > MAX_BODY):
        return _error(413, "body_too_large", f"the body may hold at most {MAX_BODY} bytes")
    if not body:
        return SESSION_TOKEN
    media_type, params = parse_content_type(headers.get(b"content-type"))
    if media_type != "application/json" or params.get("charset", "utf-8").lower() != "utf-8":
        return _error(415, "unsupported_media_type", "Content-Type: send application/json")
    try:
        data = json.loads(body.decode("utf-8"), object_pairs_hook=_unique_keys)
    except ValueError:  # UnicodeDecodeError and JSONDecodeError alike
        return _invalid("body", "expected a JSON object (UTF-8, no duplicate keys)")
    if not isinstance(data, dict):
        return _invalid("body", "expected a JSON object")
    if set(data) - {"resource"}:
        return _invalid("body", "only the field 'resource' is accepted")
    if "resource" not in data:
        return _invalid("resource", "is required in a non-empty body")
    resource = data["resource"]
    if (
        not isinstance(resource, str)
        or not 0 < len(resource) <= MAX_RESOURCE
        or not resource.isprintable()
    ):
        return _invalid("resource", _RESOURCE_RULE)
    return TokenAsk(resource)


def _with_cookie(response: WebResponse, decision: SessionDecision | None) -> WebResponse:
    if decision is not None and decision.set_cookie is not None:
        response.headers.add(b"set-cookie", decision.set_cookie)
    return response


def _load_script() -> bytes:
    return resources.files("embedgate").joinpath("static/embedgate.js").read_bytes()


def _etag_matches(if_none_match: bytes | None, etag: bytes) -> bool:
    """RFC 9110 section 13.1.2: weak comparison against a list of tags, or ``*``."""
    if if_none_match is None:
        return False
    for part in if_none_match.split(b","):
        tag = part.strip()
        if tag == b"*" or tag.removeprefix(b"W/") == etag:
            return True
    return False


def _merge_vary(values: list[bytes]) -> bytes:
    """``Vary`` with ``Cookie`` added once (names compare case-insensitively; ``*`` stays)."""
    tokens: list[bytes] = []
    seen: set[bytes] = set()
    for token in (t.strip() for v in values for t in v.split(b",")):
        if token and token.lower() not in seen:
            seen.add(token.lower())
            tokens.append(token)
    if b"*" not in seen and b"cookie" not in seen:
        tokens.append(b"Cookie")
    return b", ".join(tokens)


def headers_after_injection(
    raw: Iterable[tuple[bytes, bytes]], body_length: int, set_cookie: bytes | None = None
) -> RawHeaders:
    """The app's headers fit for its body once it carries a token, in one pass.

    The same rules as :func:`~embedgate.web.injection.response_headers_after_injection`:
    Content-Length recomputed; ETag, Last-Modified, digests and Accept-Ranges dropped;
    ``Cache-Control: private, no-store``; ``Cookie`` merged into ``Vary``. Plus the new
    session's cookie, if any.
    """
    out: RawHeaders = []
    vary: list[bytes] = []
    for pair in raw:
        name = pair[0].lower()
        if name in _REWRITTEN:
            if name == b"vary":
                vary.append(pair[1])
            continue
        out.append(pair)
    out.append((b"content-length", str(body_length).encode("ascii")))
    out.append((b"cache-control", _PRIVATE))
    out.append((b"vary", _merge_vary(vary) if vary else b"Cookie"))
    if set_cookie is not None:
        out.append((b"set-cookie", set_cookie))
    return out


def client_timing(token: EmbedToken, now: float) -> tuple[int, int]:
    """``(expires_in, refresh_in)`` for the browser, in whole seconds.

    ``refresh_in`` rounds up: the script adds its own jitter on top, so it never comes back
    before the cache would hand out a fresh token (rounding down sent half of all refreshes
    early, to get the same token again and retry).
    """
    refresh_at = token.refresh_at or token.expires_at
    return max(0, int(token.expires_at - now)), max(1, math.ceil(refresh_at - now))


@functools.lru_cache(maxsize=256)
def _charset(content_type: bytes | None) -> str | None:
    return parse_content_type(content_type)[1].get("charset") or None


class WebGate:
    """Rules shared by both shells. Holds configuration and caches; no per-request state."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.config = engine.config
        self.prefix = engine.config.prefix
        self.cookie_name = check_cookie_name(engine.config.cookie_name)
        self.limiter = RateLimiter(engine.config.rate_limit, clock=engine.clock)
        self._script = _load_script()
        self._script_etag = b'"' + hashlib.sha256(self._script).hexdigest()[:20].encode() + b'"'
        self._routes: dict[str, Route] = {
            self.prefix + TOKEN_PATH: "token",
            self.prefix + SCRIPT_PATH: "script",
            self.prefix + JWKS_PATH: "jwks",
        }
        # False when every token is bound to the resource it embeds (Metabase static
        # embedding, Looker, per-dashboard Superset): no page or endpoint mints a session token.
        self.session_tokens = bool(getattr(engine.profile, "session_tokens", True))
        self._snippet_parts: dict[str, tuple[str, str, str, str]] = {}
        self._decide = functools.lru_cache(maxsize=512)(self._should_inject)
        self._principals: dict[str, Principal] = {}

    # -- users -----------------------------------------------------------------------------

    def principal_for(self, user: Any) -> Principal | None:
        """:meth:`Engine.principal_for <embedgate.Engine.principal_for>`, remembering the
        principals of the claim sets (plain dicts) it has already mapped.

        A dict's canonical JSON is everything the claim mapping reads (types included:
        ``1``, ``1.0`` and ``true`` differ), so an equal key means an equal principal; the
        mapping is not run again on every request. Other users are mapped each time.
        """
        if type(user) is not dict:
            return self.engine.principal_for(user)
        try:
            key = canonical_json(user)
        except (TypeError, ValueError):  # not JSON (objects, NaN, non-string keys)
            return self.engine.principal_for(user)
        known = self._principals.get(key)
        if known is None:
            known = self.engine.principal_for(user)
            if known is None:
                return None
            if len(self._principals) >= _PRINCIPALS_CACHE:
                self._principals.clear()
            self._principals[key] = known
        return known

    # -- routing ---------------------------------------------------------------------------

    def route_path(self, path: str) -> Route | None:
        """The embedgate route at ``path`` (relative to the mount point), or None."""
        return self._routes.get(path)

    def route(self, request: WebRequest) -> Route | None:
        return self._routes.get(request.path)

    def endpoint_url(self, request: WebRequest) -> str:
        return request.root + self.prefix + TOKEN_PATH

    def script_url(self, request: WebRequest) -> str:
        return self._script_url(request.root)

    def _script_url(self, root: str) -> str:
        version = self._script_etag.strip(b'"').decode()[:10]
        return f"{root}{self.prefix}{SCRIPT_PATH}?v={version}"

    # -- sessions --------------------------------------------------------------------------

    def session(self, request: WebRequest, app_session_id: str | None = None) -> SessionDecision:
        """The app's session id if it gave one, else embedgate's cookie (set when new)."""
        cookies = request.headers.get_all(b"cookie")
        header = b"; ".join(cookies).decode("latin-1") if cookies else None
        return self.session_for(header, request.scheme, request.root, app_session_id)

    def session_for(
        self,
        cookie_header: str | None,
        scheme: str,
        root: str = "",
        app_session_id: str | None = None,
    ) -> SessionDecision:
        """:meth:`session` from the request's ``Cookie`` header (all of them, joined)."""
        if app_session_id:
            return SessionDecision(app_session_id)
        existing = read_session_cookie(cookie_header, self.cookie_name)
        if existing is not None:
            return SessionDecision(existing)
        secure = self.config.cookie_secure
        if secure is None:
            secure = scheme == "https"
        session_id = new_session_id()
        cookie = session_cookie(self.cookie_name, session_id, secure=secure, path=root or "/")
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

    def token_ask(self, request: WebRequest, body: bytes) -> TokenAsk | WebResponse:
        """:func:`parse_token_body` for this request (a GET asks for the session's token).

        A session-token request to a provider without session tokens is answered 404 here,
        before the user is looked up: no user has one (see :meth:`no_session_token`).
        """
        if request.method.upper() != "POST":
            ask: TokenAsk | WebResponse = SESSION_TOKEN
        else:
            ask = parse_token_body(request.headers, body)
        if isinstance(ask, TokenAsk) and ask.resource is None and not self.session_tokens:
            return self.no_session_token()
        return ask

    def no_session_token(self) -> WebResponse:
        """404 ``no_session_token``: every token of this provider is bound to the resource
        it embeds; the page's elements ask with ``{"resource": ...}``. Pages of such a
        provider say ``"session": false`` and ``embedgate.js`` never asks; the answer is for
        anything else that does (no retry helps, so nothing is logged above debug)."""
        log.debug("embedgate: refused a session token: %s has none", self.engine.profile.name)
        return _error(
            404,
            "no_session_token",
            "this provider's tokens are each bound to the resource they embed; "
            'send {"resource": ...}',
        )

    def check_session_tokens(self) -> None:
        """Raise :class:`~embedgate.ConfigurationError` when this provider has no session
        token: for the APIs that hand one to the app (Flask's ``EmbedGate.token()``, the
        Starlette/FastAPI ``embed_token`` dependencies)."""
        if not self.session_tokens:
            raise ConfigurationError(
                "EMBEDGATE_PROVIDER",
                f"{self.engine.profile.name} has no session token with this configuration: "
                "each token is bound to the resource it embeds (use embed_snippet, or ask "
                "for the resource's token)",
            )

    def needs_session_token(self, principal: Principal) -> bool:
        """Whether a page for ``principal`` gets the session's token minted. Without session
        tokens it does not, but the principal still meets the attribute policy minting would
        apply (raising :class:`~embedgate.PrincipalError` the same way), so a refused user's
        page is left alone whichever the provider."""
        if self.session_tokens:
            return True
        self.engine.service.policy.apply(principal)
        return False

    def not_granted(self, decision: SessionDecision) -> WebResponse:
        """403 for a resource this session holds no token for: the endpoint refreshes only
        what a page already embedded for the session (through ``embed_snippet``)."""
        log.info("embedgate: refused a token for a resource the session does not hold")
        return _with_cookie(
            _error(
                403,
                "resource_not_granted",
                "this session holds no token for that resource; load the page embedding it",
            ),
            decision,
        )

    def throttle(
        self, decision: SessionDecision, principal: Principal | None = None
    ) -> WebResponse | None:
        """429 past the per-session rate limit; None to go on and mint.

        A request that starts a session (no cookie sent back: a script, not a browser)
        also counts against its user, so dropping the cookie does not lift the limit.
        """
        retry_after = self.limiter.hit(decision.session_id)
        if retry_after is None and decision.set_cookie is not None and principal is not None:
            retry_after = self.limiter.hit("\x00new-sessions\x00" + principal.subject)
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

    def token_response(
        self, token: EmbedToken, decision: SessionDecision, resource: str | None = None
    ) -> WebResponse:
        """200 with the token's JSON payload (shaped by the profile; ``"resource"`` added
        for a resource-bound token)."""
        now = self.engine.clock.now()
        payload = token.payload(now)
        payload["expires_in"], payload["refresh_in"] = client_timing(token, now)
        if resource is not None:
            payload["resource"] = resource
        extend = getattr(self.engine.profile, "endpoint_payload", None)
        if callable(extend):
            payload = extend(token, payload)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("embedgate: token endpoint served jti=%s exp=%d", token.jti, token.expires_at)
        return _with_cookie(_json_response(200, payload), decision)

    def failure(
        self, error: EmbedgateError, decision: SessionDecision | None = None
    ) -> WebResponse:
        """403 when the principal is refused (unreadable, or against the attribute policy),
        503 with ``Retry-After`` when the issuer failed, 500 ``not_configured`` when the
        configuration cannot issue this token (the script stops asking); anything else is
        raised again."""
        if isinstance(error, ConfigurationError):
            # The message names a setting (never a secret) but stays in the server's log.
            log.error("embedgate: the token endpoint cannot issue this token: %s", error)
            response = _error(
                500, "not_configured", "embedgate cannot issue this token; see the server log"
            )
        elif isinstance(error, PrincipalError):
            log.warning("embedgate: principal refused (%s)", error.field)
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
        method = request.method.upper()
        if method not in ("GET", "HEAD"):
            return _error(405, "method_not_allowed", "use GET", (b"allow", b"GET, HEAD"))
        headers = Headers(
            [
                (b"etag", self._script_etag),
                (b"cache-control", b"public, max-age=3600"),
                (b"x-content-type-options", b"nosniff"),
            ]
        )
        if _etag_matches(request.headers.get(b"if-none-match"), self._script_etag):
            return WebResponse(304, headers)
        headers.add(b"content-type", b"text/javascript; charset=utf-8")
        headers.add(b"content-length", str(len(self._script)).encode())
        return WebResponse(200, headers, b"" if method == "HEAD" else self._script)

    def jwks_response(self, request: WebRequest) -> WebResponse:
        method = request.method.upper()
        if method not in ("GET", "HEAD"):
            return _error(405, "method_not_allowed", "use GET", (b"allow", b"GET, HEAD"))
        jwks = self.engine.jwks()
        if jwks is None:
            return _error(404, "no_public_keys", "HMAC keys are secret and never published")
        body = json.dumps(jwks).encode()
        headers = Headers(
            [
                (b"content-type", b"application/jwk-set+json"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"public, max-age=300"),
                (b"x-content-type-options", b"nosniff"),
            ]
        )
        return WebResponse(200, headers, b"" if method == "HEAD" else body)

    # -- pages -----------------------------------------------------------------------------

    def page_plan(self, method: str, status: int, raw: RawHeaders) -> PagePlan | None:
        """A plan to inject into this response, or None to pass it through untouched.

        One pass over the headers; the verdict of :func:`~embedgate.web.injection.
        should_inject` is cached per combination of the headers it looks at.
        """
        if not self.config.inject or not 200 <= status < 300:
            return None
        decisive: list[tuple[bytes, bytes]] = []
        csp: list[bytes] = []
        content_type: bytes | None = None
        length_seen = False
        for name, value in raw:
            key = name.lower()
            if key in _DECISIVE:
                if key == b"content-length":
                    if length_seen:
                        continue
                    length_seen = True
                    decisive.append((key, self._length_class(value)))
                    continue
                if key == b"content-type" and content_type is None:
                    content_type = value
                decisive.append((key, value))
            elif key == _CSP:
                csp.append(value)
        if not self._decide(method.upper() == "HEAD", status, tuple(decisive)):
            return None
        injector = HtmlInjector(charset=_charset(content_type), limit=self.config.max_inject_bytes)
        return PagePlan(raw, injector, csp)

    def _length_class(self, value: bytes) -> bytes:
        # All should_inject asks of Content-Length: is it a number within the limit?
        try:
            return b"0" if int(value) <= self.config.max_inject_bytes else b"over"
        except ValueError:
            return b"over"

    def _should_inject(
        self, head: bool, status: int, decisive: tuple[tuple[bytes, bytes], ...]
    ) -> bool:
        return should_inject(
            "HEAD" if head else "GET", status, Headers(decisive), limit=self.config.max_inject_bytes
        )

    def wants_injection(self, method: str, status: int, headers: Headers) -> bool:
        return self.page_plan(method, status, headers.raw) is not None

    def injector(self, headers: Headers) -> HtmlInjector:
        return HtmlInjector(
            charset=content_type_charset(headers), limit=self.config.max_inject_bytes
        )

    def snippet(self, root: str, token: EmbedToken | None, nonce: str | None = None) -> str:
        """The data block + loader script for a page under mount point ``root``.

        ``token=None`` when issuance failed: the block holds ``null`` and the script fetches
        a token itself (and reports the failure as an event). Without session tokens the
        block is ``{"token": null, "session": false, "endpoint": ...}`` whatever ``token``
        is: the script then only refreshes the page's resource-bound tokens. The markup is
        :func:`~embedgate.web.snippet.render_token_snippet`'s, rendered once per mount point;
        only the token data and the nonce change per page.
        """
        parts = self._snippet_parts.get(root)
        if parts is None:
            parts = self._render_parts(root)
        opening, endpoint_json, script, closing = parts
        data = "null"
        if not self.session_tokens:
            data = f'{{"token":null,"session":false,"endpoint":{endpoint_json}}}'
        elif token is not None:
            now = self.engine.clock.now()
            _, refresh_in = client_timing(token, now)
            value = token.token
            quoted = f'"{value}"' if _PLAIN_TOKEN.fullmatch(value) else json_for_html(value)
            data = (
                f'{{"token":{quoted},"expires_at":{int(token.expires_at)},'
                f'"refresh_in":{refresh_in},"server_time":{int(now)},"endpoint":{endpoint_json}}}'
            )
        if not nonce:
            return f"{opening}{data}{script}{closing}"
        if _PLAIN_NONCE.fullmatch(nonce):  # what CSP allows a nonce to be: nothing to escape
            return f'{opening}{data}{script} nonce="{nonce}"{closing}'
        return render_token_snippet(
            None if data == "null" else json.loads(data),
            self._script_url(root),
            nonce,
            endpoint=root + self.prefix + TOKEN_PATH,
        )

    def _render_parts(self, root: str) -> tuple[str, str, str, str]:
        # Split render_token_snippet's own markup where the data and the nonce go. Attribute
        # values never hold a bare '"' (they are escaped), so the nonce attribute of a
        # rendering with one is found exactly, whatever the mount point.
        endpoint = root + self.prefix + TOKEN_PATH
        script_url = self._script_url(root)
        bare = render_token_snippet(None, script_url, None, endpoint=endpoint)
        with_nonce = render_token_snippet(None, script_url, "0", endpoint=endpoint)
        data_at = bare.index(">null</script>") + 1
        nonce_at = with_nonce.index(' nonce="0"')
        parts = (
            bare[:data_at],
            json_for_html(endpoint),
            bare[data_at + len("null") : nonce_at],
            bare[nonce_at:],
        )
        if len(self._snippet_parts) < _PARTS_CACHE:
            self._snippet_parts[root] = parts
        return parts

    def plan_snippet(self, root: str, plan: PagePlan, token: EmbedToken | None) -> bytes:
        """The snippet for a planned page, with the nonce its CSP allows scripts."""
        nonce = extract_csp_nonce([(_CSP, v) for v in plan.csp]) if plan.csp else None
        return self.snippet(root, token, nonce).encode("ascii")

    def page_snippet(
        self, request: WebRequest, response_headers: Headers, token: EmbedToken | None
    ) -> str:
        """The data block + loader script for a page of ``request``."""
        return self.snippet(request.root, token, extract_csp_nonce(response_headers))

    def page_headers(
        self, headers: Headers, body_length: int, decision: SessionDecision
    ) -> Headers:
        return Headers(headers_after_injection(headers.raw, body_length, decision.set_cookie))

    def page_failure(self, error: EmbedgateError) -> bool:
        """Log why a page goes out without a token; True if it should still carry the
        loader (with no token: the script fetches one), False to leave the page alone."""
        if isinstance(error, PrincipalError):
            log.warning("embedgate: no token injected, principal refused (%s)", error.field)
            return False
        code = error.code if isinstance(error, IssuerError) else type(error).__name__
        log.warning("embedgate: no token injected, issuance failed (%s)", code)
        return True
