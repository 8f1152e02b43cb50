"""The web rules, sans I/O: :class:`WebGate`, the facade the ASGI and WSGI shells, the template
helpers and the framework integrations call. It holds users, routing, sessions, the token
endpoint's answers and the static routes; pages are :class:`~embedgate.web.page.PageRules`'s.
The shells translate messages to and from the plain values of :mod:`embedgate.web.values`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from importlib import resources
from typing import Any, Final, Generic, Literal, TypeVar

from .. import telemetry
from ..canonical import canonical_json
from ..engine import Engine
from ..errors import ConfigurationError, EmbedgateError, IssuerError, PrincipalError
from ..principal import Principal
from ..settings import Settings, Unpack
from ..token import EmbedToken
from .headers import Headers
from .origin import has_csrf_header, is_same_origin
from .owners import SessionOwners
from .page import PageRules, client_timing, headers_after_injection
from .ratelimit import RateLimiter
from .session import SessionIds, check_cookie_name, read_session_cookie, session_cookie
from .token_request import parse_token_body
from .values import (
    SESSION_TOKEN,
    PagePlan,
    RawHeaders,
    SessionDecision,
    TokenAsk,
    WebRequest,
    WebResponse,
    error_response,
    json_response,
    with_cookie,
)

__all__ = ["JWKS_PATH", "SCRIPT_PATH", "TOKEN_PATH", "MiddlewareBase", "Route", "WebGate"]

log = logging.getLogger("embedgate")

Route = Literal["token", "script", "jwks"]
TOKEN_PATH: Final = "/token"
SCRIPT_PATH: Final = "/embedgate.js"
JWKS_PATH: Final = "/jwks.json"
_PRINCIPALS_CACHE = 512  # claim sets remembered by WebGate.principal_for


def _load_script() -> bytes:
    return resources.files("embedgate").joinpath("static/embedgate.js").read_bytes()


def _user_key(principal: Principal) -> str:
    # The tenant is part of who a user is: "alice" of two tenants are two users.
    tenant = principal.tenant or ""
    return f"{len(tenant)}:{tenant}|{principal.subject}"


def _etag_matches(if_none_match: bytes | None, etag: bytes) -> bool:
    """RFC 9110 section 13.1.2: weak comparison against a list of tags, or ``*``."""
    if if_none_match is None:
        return False
    for part in if_none_match.split(b","):
        tag = part.strip()
        if tag == b"*" or tag.removeprefix(b"W/") == etag:
            return True
    return False


class WebGate:
    """Rules shared by both shells. Holds configuration and caches; no per-request state."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.config = engine.config
        self.prefix = engine.config.prefix
        self.cookie_name = check_cookie_name(engine.config.cookie_name)
        self.limiter = RateLimiter(engine.config.rate_limit, clock=engine.clock)
        self.user_limiter = RateLimiter(engine.config.user_rate_limit, clock=engine.clock)
        self.session_ids = SessionIds(engine.derived_key("embedgate session id"))
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
        self.pages = PageRules(
            engine,
            session_tokens=self.session_tokens,
            token_path=self.prefix + TOKEN_PATH,
            script_url=self._script_url,
        )
        self._principals: dict[str, Principal] = {}
        # A session's tokens outlive neither the longest lifetime nor the refresh window.
        self.owners = SessionOwners(lifetime=2 * engine.config.max_ttl + 60)

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
        existing = self.read_session_id(cookie_header)
        if existing is not None:
            return SessionDecision(existing)
        secure = self.config.cookie_secure
        if secure is None:
            secure = scheme == "https"
        session_id = self.session_ids.issue()
        cookie = session_cookie(self.cookie_name, session_id, secure=secure, path=root or "/")
        return SessionDecision(session_id, cookie.encode("latin-1"))

    def read_session_id(self, cookie_header: str | None) -> str | None:
        """embedgate's session id in a ``Cookie`` header, only if embedgate issued it: an
        invented or altered id is ignored (the request gets a new session)."""
        return read_session_cookie(cookie_header, self.cookie_name, self.session_ids)

    def known_session_id(
        self, cookie_header: str | None, app_session_id: str | None = None
    ) -> str | None:
        """The request's session id when it has one (never starts a session)."""
        return app_session_id or self.read_session_id(cookie_header)

    # -- who a session's tokens belong to ---------------------------------------------------

    def _previous_owner(self, session_id: str | None, principal: Principal | None) -> str | None:
        if not session_id or (principal is None and not self.owners.knows(session_id)):
            return None
        subject = self.owners.settle(session_id, principal)
        if subject is not None:
            log.info(
                "embedgate: purged a session's tokens: %s",
                "its user logged out" if principal is None else "another user logged in",
            )
        return subject

    def settle_user(self, session_id: str | None, principal: Principal | None) -> int:
        """Record who ``session_id`` is for now, and purge the tokens it holds for another
        user (or for a user now gone: logged out). Call it before minting. Only the previous
        user's tokens go, so a worker that learns late of a change never purges the new
        user's token. Returns how many went."""
        subject = self._previous_owner(session_id, principal)
        if subject is None or session_id is None:
            return 0
        return self.engine.purge_user(session_id, subject)

    async def asettle_user(self, session_id: str | None, principal: Principal | None) -> int:
        """Async face of :meth:`settle_user`."""
        subject = self._previous_owner(session_id, principal)
        if subject is None or session_id is None:
            return 0
        return await self.engine.apurge_user(session_id, subject)

    def _logout_ids(self, cookie_header: str | None, known: tuple[str | None, ...]) -> set[str]:
        ids = {self.read_session_id(cookie_header), *known}
        return {session_id for session_id in ids if session_id}

    def logout(self, cookie_header: str | None, *known: str | None) -> int:
        """Purge the tokens of the session in ``cookie_header`` and of the ``known`` session
        ids (the request's decision, the app's session); returns how many went."""
        return sum(self.engine.logout(sid) for sid in self._logout_ids(cookie_header, known))

    async def alogout(self, cookie_header: str | None, *known: str | None) -> int:
        """Async face of :meth:`logout`."""
        purged = 0
        for session_id in self._logout_ids(cookie_header, known):
            purged += await self.engine.alogout(session_id)
        return purged

    def watches(self, session_id: str | None) -> bool:
        """Whether responses of ``session_id`` must be checked for a change of user."""
        return self.owners.knows(session_id)

    # -- the token endpoint ----------------------------------------------------------------

    def check_token_request(self, request: WebRequest) -> WebResponse | None:
        """405/403 answers that need neither the user nor the session; None to go on."""
        method = request.method.upper()
        allowed = ("POST", "GET") if self.config.allow_get else ("POST",)
        if method not in allowed:
            return error_response(
                405,
                "method_not_allowed",
                f"use {' or '.join(allowed)}",
                (b"allow", ", ".join(allowed).encode()),
            )
        if not is_same_origin(request.headers, request.scheme, request.host):
            return error_response(403, "cross_origin", "the token endpoint is same-origin only")
        if not has_csrf_header(request.headers):
            return error_response(403, "missing_header", "send the header X-Embedgate: 1")
        return None

    def unauthenticated(self) -> WebResponse:
        return error_response(401, "unauthenticated", "log in first")

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
        return error_response(
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
        self.engine.check_principal(principal)
        return False

    def not_granted(self, decision: SessionDecision) -> WebResponse:
        """403 for a resource this session holds no token for: the endpoint refreshes only
        what a page already embedded for the session (through ``embed_snippet``)."""
        log.info("embedgate: refused a token for a resource the session does not hold")
        return with_cookie(
            error_response(
                403,
                "resource_not_granted",
                "this session holds no token for that resource; load the page embedding it",
            ),
            decision,
        )

    def throttle(
        self, decision: SessionDecision, principal: Principal | None = None
    ) -> WebResponse | None:
        """429 past the per-session or the per-user rate limit; None to go on and mint.

        Every request counts against its session (``EMBEDGATE_RATE_LIMIT``) and its user
        (``EMBEDGATE_USER_RATE_LIMIT``, all sessions together), so no user spends more of
        the provider's budget than that, however many sessions it opens. A request that
        starts a session (no cookie, or one embedgate did not issue) also counts against
        the user's new sessions (``EMBEDGATE_RATE_LIMIT`` per minute): dropping or
        inventing cookies does not lift the limit.
        """
        retry_after = self.limiter.hit(decision.session_id)
        if retry_after is None and principal is not None:
            user = _user_key(principal)
            retry_after = self.user_limiter.hit(user)
            if retry_after is None and decision.set_cookie is not None:
                retry_after = self.limiter.hit("\x00new-sessions\x00" + user)
        if retry_after is None:
            return None
        telemetry.rate_limited()
        return with_cookie(
            error_response(
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
        telemetry.token_served(token.expires_at - now, "endpoint")
        payload = token.payload(now)
        payload["expires_in"], payload["refresh_in"] = client_timing(token, now)
        if resource is not None:
            payload["resource"] = resource
        extend = getattr(self.engine.profile, "endpoint_payload", None)
        if callable(extend):
            payload = extend(token, payload)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("embedgate: token endpoint served jti=%s exp=%d", token.jti, token.expires_at)
        return with_cookie(json_response(200, payload), decision)

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
            response = error_response(
                500, "not_configured", "embedgate cannot issue this token; see the server log"
            )
        elif isinstance(error, PrincipalError):
            log.warning("embedgate: principal refused (%s)", error.field)
            response = error_response(403, "principal_rejected", str(error))
        elif isinstance(error, IssuerError):
            retry = max(1, int(error.retry_after))
            # Per request, so debug: the breaker logs the provider's state changes.
            log.debug(
                "embedgate: token endpoint answered 503 (%s: %s)",
                error.provider or self.engine.profile.name,
                error.code,
            )
            response = error_response(
                503,
                error.code,
                "the analytics provider is unavailable; retry later",
                (b"retry-after", str(retry).encode()),
            )
        else:
            raise error
        return with_cookie(response, decision)

    # -- static routes ---------------------------------------------------------------------

    def script_response(self, request: WebRequest) -> WebResponse:
        method = request.method.upper()
        if method not in ("GET", "HEAD"):
            return error_response(405, "method_not_allowed", "use GET", (b"allow", b"GET, HEAD"))
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
            return error_response(405, "method_not_allowed", "use GET", (b"allow", b"GET, HEAD"))
        jwks = self.engine.jwks()
        if jwks is None:
            return error_response(404, "no_public_keys", "HMAC keys are secret and never published")
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

    # -- pages (PageRules) ----------------------------------------------------------------

    def page_plan(self, method: str, status: int, raw: RawHeaders) -> PagePlan | None:
        """A plan to inject into this response, or None to pass it through untouched.

        One pass over the headers; the verdict of :func:`~embedgate.web.injection.
        should_inject` is cached per combination of the headers it looks at.
        """
        return self.pages.page_plan(method, status, raw)

    def snippet(
        self,
        root: str,
        token: EmbedToken | None,
        nonce: str | None = None,
        *,
        binding: str | None = None,
    ) -> str:
        """The data block + loader script for a page under mount point ``root``.

        ``token=None`` when issuance failed: the block's ``token`` is ``null`` and the script
        fetches one itself (and reports the failure as an event). Without session tokens the
        block says ``"session": false`` whatever ``token`` is: the script then only refreshes
        the page's resource-bound tokens. The block also carries ``binding`` (``"bind"``, the
        value of ``data-embedgate-bind`` on the elements the helpers rendered for this
        response; a fresh one if None) and the profile's browser policy (``"allow"``). The
        markup is :func:`~embedgate.web.token_block.render_token_block`'s, rendered once per
        mount point; only the data and the nonce change per page.
        """
        return self.pages.snippet(root, token, nonce, binding=binding)

    def plan_snippet(
        self, root: str, plan: PagePlan, token: EmbedToken | None, binding: str | None = None
    ) -> bytes:
        """The snippet for a planned page, with the nonce its CSP allows scripts."""
        return self.pages.plan_snippet(root, plan, token, binding)

    def page_headers(
        self, headers: Headers, body_length: int | None, decision: SessionDecision
    ) -> Headers:
        return Headers(headers_after_injection(headers.raw, body_length, decision.set_cookie))

    def page_failure(self, error: EmbedgateError) -> bool:
        """Log why a page goes out without a token; True if it should still carry the
        loader (with no token: the script fetches one), False to leave the page alone."""
        if isinstance(error, PrincipalError):
            log.warning("embedgate: no token injected, principal refused (%s)", error.field)
            telemetry.injection(False, "principal_refused")
            return False
        if isinstance(error, IssuerError):
            # Per page, so debug: the breaker logs the provider's state changes.
            log.debug("embedgate: no token injected, issuance failed (%s)", error.code)
        else:
            log.warning("embedgate: no token injected, issuance failed (%s)", type(error).__name__)
        return True


# -- what the ASGI and WSGI shells share ------------------------------------------------------

AppT = TypeVar("AppT")
Resolver = Callable[[Any], Any]


class MiddlewareBase(Generic[AppT]):
    """Holds configuration only: every request's state lives in the call."""

    def __init__(
        self,
        app: AppT,
        engine: Engine | None = None,
        *,
        user_resolver: Resolver | None = None,
        session_resolver: Resolver | None = None,
        **settings: Unpack[Settings],
    ) -> None:
        self.app = app
        self.engine = engine if engine is not None else Engine.from_settings(**settings)
        self.gate = WebGate(self.engine)
        self.user_resolver = user_resolver
        self.session_resolver = session_resolver
