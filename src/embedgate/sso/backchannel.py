"""OpenID Connect Back-Channel Logout 1.0: the IdP POSTs a signed ``logout_token`` and the
host ends the sessions it names.

:class:`LogoutTokenVerifier` checks the token against the IdP's JWKS (signature, ``iss``,
``aud``, ``iat``, ``jti``, the logout ``events`` member, ``sid`` and/or ``sub``, no
``nonce``, no replay); :class:`BackchannelLogout` is the framework-neutral handler that
turns the POST into :meth:`SSOSessions.end` and the answer the spec asks for.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qs

import anyio.to_thread
import jwt
from cachetools import TTLCache

from ..errors import VerificationError
from .provider import OIDCProvider
from .sessions import EndResult, SSOSessions

log = logging.getLogger("embedgate")

BACKCHANNEL_EVENT: Final = "http://schemas.openid.net/event/backchannel-logout"
# Asymmetric only: an HMAC-signed logout token would need the client secret here.
DEFAULT_ALGORITHMS: Final = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
_TYPES: Final = frozenset({"jwt", "logout+jwt", "application/logout+jwt"})
MAX_BODY: Final = 64 * 1024

_CODES: Final[tuple[tuple[type[jwt.PyJWTError], str], ...]] = (
    (jwt.ExpiredSignatureError, "expired"),
    (jwt.ImmatureSignatureError, "not_yet_valid"),
    (jwt.InvalidAudienceError, "wrong_audience"),
    (jwt.InvalidIssuerError, "wrong_issuer"),
    (jwt.MissingRequiredClaimError, "missing_claim"),
    (jwt.InvalidIssuedAtError, "bad_iat"),
    (jwt.InvalidSignatureError, "bad_signature"),
    (jwt.DecodeError, "malformed"),
)


@dataclass(frozen=True)
class LogoutClaims:
    """The verified facts of a logout token."""

    issuer: str
    jti: str
    issued_at: int
    sid: str | None = None
    sub: str | None = None


class LogoutTokenVerifier:
    """Verifies logout tokens from one IdP for one client (``client_id`` is the ``aud``).

    ``max_age`` bounds how old ``iat`` may be (seconds); each ``jti`` is accepted once
    within that window.
    """

    def __init__(
        self,
        provider: OIDCProvider,
        client_id: str,
        *,
        algorithms: Sequence[str] = DEFAULT_ALGORITHMS,
        leeway: float = 60.0,
        max_age: float = 300.0,
        replay_cache_size: int = 10_000,
    ) -> None:
        if "none" in algorithms:
            raise ValueError("'none' is never accepted")
        self.provider = provider
        self.client_id = client_id
        self.algorithms = tuple(algorithms)
        self.leeway = leeway
        self.max_age = max_age
        self._lock = threading.Lock()
        self._seen: TTLCache[tuple[str, str], bool] = TTLCache(
            replay_cache_size, max_age + 2 * leeway
        )

    def verify(self, logout_token: str) -> LogoutClaims:
        """The token's claims if it is a valid, fresh, unseen logout token for this client;
        else :class:`~embedgate.VerificationError` (its message never holds the token)."""
        try:
            header = jwt.get_unverified_header(logout_token)
        except jwt.PyJWTError:
            raise VerificationError(
                "logout token header cannot be decoded", code="malformed"
            ) from None
        algorithm = header.get("alg")
        if algorithm not in self.algorithms:
            raise VerificationError(
                f"logout token algorithm {algorithm!r} is not accepted", code="algorithm_mismatch"
            )
        typ = header.get("typ")
        if typ is not None and (not isinstance(typ, str) or typ.lower() not in _TYPES):
            raise VerificationError(f"logout token typ {typ!r} is not accepted", code="wrong_type")
        kid = header.get("kid")
        key = self.provider.key(kid if isinstance(kid, str) else None, algorithm)
        try:
            claims: dict[str, Any] = jwt.decode(
                logout_token,
                key,
                algorithms=[algorithm],
                audience=self.client_id,
                issuer=self.provider.issuer,
                leeway=self.leeway,
                options={"require": ["iss", "aud", "iat", "jti", "events"]},
            )
        except jwt.PyJWTError as exc:
            code = next((c for kind, c in _CODES if isinstance(exc, kind)), "invalid_token")
            raise VerificationError(f"logout token rejected: {exc}", code=code) from None
        return self._check(claims)

    def _check(self, claims: Mapping[str, Any]) -> LogoutClaims:
        issued_at = int(claims["iat"])
        if time.time() - issued_at > self.max_age + self.leeway:
            raise VerificationError("logout token is too old (iat)", code="stale")
        events = claims.get("events")
        if not isinstance(events, Mapping) or not isinstance(
            events.get(BACKCHANNEL_EVENT), Mapping
        ):
            raise VerificationError(
                f"logout token events claim lacks {BACKCHANNEL_EVENT}", code="not_a_logout_token"
            )
        if "nonce" in claims:
            raise VerificationError("logout token must not carry a nonce", code="nonce_present")
        sid, sub = claims.get("sid"), claims.get("sub")
        if sid is None and sub is None:
            raise VerificationError("logout token has neither sid nor sub", code="missing_claim")
        if any(v is not None and (not isinstance(v, str) or not v) for v in (sid, sub)):
            raise VerificationError("logout token sid/sub must be strings", code="malformed")
        jti = claims["jti"]
        if not isinstance(jti, str) or not jti:
            raise VerificationError("logout token jti must be a string", code="malformed")
        issuer = str(claims["iss"])
        with self._lock:
            if (issuer, jti) in self._seen:
                raise VerificationError("logout token was already used (jti)", code="replayed")
            self._seen[(issuer, jti)] = True
        return LogoutClaims(issuer=issuer, jti=jti, issued_at=issued_at, sid=sid, sub=sub)

    def __repr__(self) -> str:
        return (
            f"LogoutTokenVerifier(issuer={self.provider.issuer_hint!r}, "
            f"client_id={self.client_id!r})"
        )


@dataclass(frozen=True)
class LogoutResponse:
    """The answer to the IdP's POST, for any framework to send as is."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""


_HEADERS: Final = (("cache-control", "no-store"), ("pragma", "no-cache"))


def _error(status: int, description: str) -> LogoutResponse:
    body = json.dumps({"error": "invalid_request", "error_description": description}).encode()
    return LogoutResponse(status, (*_HEADERS, ("content-type", "application/json")), body)


def _form_token(
    body: bytes | str | Mapping[str, Any], content_type: str | None
) -> str | list[str] | None:
    if isinstance(body, Mapping):
        getlist = getattr(body, "getlist", None)
        values = getlist("logout_token") if callable(getlist) else body.get("logout_token")
    else:
        if content_type and content_type.split(";")[0].strip().lower() != (
            "application/x-www-form-urlencoded"
        ):
            return None
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        values = parse_qs(text).get("logout_token")
    if values is None or isinstance(values, str):
        return values
    values = list(values)
    return values[0] if len(values) == 1 else values


class BackchannelLogout:
    """The handler behind the host's ``backchannel_logout_uri``.

    ``handle(body, content_type)`` takes the POSTed form (raw bytes or a parsed mapping)
    and returns a :class:`LogoutResponse`: 200 once the sessions are ended, 400 for a
    bad token, 503 when the IdP's keys cannot be fetched (the IdP may retry).
    """

    def __init__(self, verifier: LogoutTokenVerifier, sessions: SSOSessions) -> None:
        self.verifier = verifier
        self.sessions = sessions

    def logout(self, logout_token: str) -> EndResult:
        """Verify the token and end the sessions it names."""
        claims = self.verifier.verify(logout_token)
        result = self.sessions.end(issuer=claims.issuer, sid=claims.sid, sub=claims.sub)
        log.info(
            "embedgate: back-channel logout ended %d session(s), purged %d token(s)",
            result.sessions,
            result.tokens,
        )
        return result

    def handle(
        self, body: bytes | str | Mapping[str, Any], content_type: str | None = None
    ) -> LogoutResponse:
        if isinstance(body, (bytes, str)) and len(body) > MAX_BODY:
            return _error(400, "request body too large")
        token = _form_token(body, content_type)
        if not isinstance(token, str) or not token:
            return _error(400, "expected exactly one logout_token form parameter")
        try:
            self.logout(token)
        except VerificationError as error:
            log.warning("embedgate: back-channel logout refused (%s)", error.code)
            if error.code == "keys_unavailable":
                return LogoutResponse(503, (*_HEADERS, ("retry-after", "30")))
            return _error(400, str(error))
        return LogoutResponse(200, _HEADERS)

    async def ahandle(
        self, body: bytes | str | Mapping[str, Any], content_type: str | None = None
    ) -> LogoutResponse:
        """:meth:`handle` in a worker thread (it may fetch the IdP's JWKS)."""
        return await anyio.to_thread.run_sync(self.handle, body, content_type)
