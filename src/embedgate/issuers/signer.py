"""Claim layouts (how a principal becomes the non-registered claims of a token) and the local
signing issuer: JWTs signed in-process with a key from a :class:`KeySet`."""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import jwt

from ..errors import ConfigurationError, TokenTooLargeError
from ..keys import KeySet
from ..token import EmbedToken
from .base import IssueRequest

REGISTERED_CLAIMS: Final = frozenset({"iss", "sub", "aud", "exp", "nbf", "iat", "jti"})

ClaimsLayout = Callable[[IssueRequest], dict[str, Any]]


def generic_claims(request: IssueRequest) -> dict[str, Any]:
    """embedgate's own layout: identity fields at the top, user attributes under
    ``attributes`` (so an attribute can never collide with a registered claim)."""
    data = request.principal.to_dict()
    data.pop("subject")
    if request.resource is not None:
        data["resource"] = request.resource
    return data


DEFAULT_SIZE_BUDGET = 4096


class LocalSigner:
    """Signs tokens with the key set's active key.

    Every token carries ``iss``, ``aud``, ``sub``, ``iat``, ``nbf`` (``nbf_skew`` seconds
    before ``iat``, for clock skew), ``exp``, a random ``jti``, and ``kid``/``typ`` in the
    header. ``layout`` adds the rest; it may not override a registered claim.
    """

    # No I/O: the token service mints inline instead of waiting on a thread or task.
    does_io = False

    def __init__(
        self,
        keys: KeySet,
        *,
        issuer: str,
        audience: str | Sequence[str],
        typ: str | None = "JWT",
        layout: ClaimsLayout = generic_claims,
        size_budget: int = DEFAULT_SIZE_BUDGET,
        nbf_skew: int = 5,
        extra_headers: Mapping[str, Any] | None = None,
        name: str = "generic",
        max_ttl: int | None = None,
    ) -> None:
        if not issuer:
            raise ConfigurationError("EMBEDGATE_ISSUER", "must be a non-empty string")
        if not audience:
            raise ConfigurationError("EMBEDGATE_AUDIENCE", "must be a non-empty string")
        forbidden = {"jwk", "jku", "x5u", "x5c", "alg"} & set(extra_headers or {})
        if forbidden:
            raise ConfigurationError(
                "headers", f"{sorted(forbidden)[0]!r} may not be set in the token header"
            )
        self._keys = keys
        self._issuer = issuer
        self._audience: str | list[str] = audience if isinstance(audience, str) else list(audience)
        self._typ = typ
        self._layout = layout
        self._size_budget = size_budget
        self._nbf_skew = nbf_skew
        self._extra_headers = dict(extra_headers or {})
        self._name = name
        self._max_ttl = max_ttl

    @property
    def name(self) -> str:
        return self._name

    @property
    def keys(self) -> KeySet:
        return self._keys

    @property
    def audience(self) -> str | list[str]:
        return self._audience

    @property
    def issuer(self) -> str:
        return self._issuer

    def cache_scope(self) -> str:
        return f"{self._name}|{self._issuer}|{self._audience}|{self._keys.signing_key.kid}"

    def claims(self, request: IssueRequest) -> dict[str, Any]:
        """The full claim set for ``request`` (registered claims plus the layout's)."""
        ttl = request.ttl if self._max_ttl is None else min(request.ttl, self._max_ttl)
        iat = math.floor(request.now)
        registered: dict[str, Any] = {
            "iss": self._issuer,
            "sub": request.principal.subject,
            "aud": self._audience,
            "iat": iat,
            "nbf": iat - self._nbf_skew,
            "exp": iat + ttl,
            "jti": secrets.token_urlsafe(16),
        }
        extra = self._layout(request)
        clash = REGISTERED_CLAIMS & set(extra)
        if clash:
            raise ConfigurationError("layout", f"the claim layout may not set {sorted(clash)}")
        return {**registered, **extra}

    def sign(self, claims: Mapping[str, Any]) -> str:
        """Sign a claim set with the active key; enforce the size budget."""
        key = self._keys.signing_key
        # typ=None must reach PyJWT, which otherwise adds its default "typ": "JWT".
        headers: dict[str, Any] = {**self._extra_headers, "kid": key.kid, "typ": self._typ}
        token = jwt.encode(
            dict(claims), key.signing_material(), algorithm=key.algorithm, headers=headers
        )
        if len(token) > self._size_budget:
            raise TokenTooLargeError(len(token), self._size_budget)
        return token

    def issue(self, request: IssueRequest) -> EmbedToken:
        claims = self.claims(request)
        token = self.sign(claims)
        return EmbedToken(
            token=token,
            expires_at=float(claims["exp"]),
            issued_at=float(claims["iat"]),
            subject=request.principal.subject,
            jti=claims["jti"],
            kid=self._keys.signing_key.kid,
        )

    async def aissue(self, request: IssueRequest) -> EmbedToken:
        # Signing is CPU work measured in microseconds (HMAC, ECDSA, EdDSA): no I/O to await.
        return self.issue(request)

    def jwks(self) -> dict[str, Any] | None:
        return self._keys.jwks() if self._keys.has_public_keys else None

    def __repr__(self) -> str:
        return (
            f"LocalSigner(name={self._name!r}, issuer={self._issuer!r}, "
            f"audience={self._audience!r}, keys={self._keys!r})"
        )
