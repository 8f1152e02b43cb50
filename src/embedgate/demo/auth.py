"""The data API's authentication: which kind of token it got, and whether it is valid."""

from __future__ import annotations

from typing import Final

from ..clock import Clock
from ..errors import VerificationError
from ..keys import KeySet
from ..verify import verify
from .identity import Identity
from .minting import TOKEN_PREFIX, ProviderTokens

MAX_TOKEN_LENGTH: Final = 8192


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header."""
    if not authorization:
        raise VerificationError("no Authorization header", code="missing_token")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise VerificationError("expected 'Authorization: Bearer <token>'", code="missing_token")
    if len(token) > MAX_TOKEN_LENGTH:
        raise VerificationError(f"token longer than {MAX_TOKEN_LENGTH} bytes", code="malformed")
    return token


class TokenVerifier:
    """Accepts host-signed JWTs (checked against ``keys``, ``audience`` and ``issuer``)
    and tokens this provider minted itself.

    Host tokens must pass :func:`embedgate.verify` (system clock, ``leeway``) and also be
    unexpired by ``clock``, so a test clock moved forward expires them too.
    """

    def __init__(
        self,
        *,
        keys: KeySet,
        audience: str,
        issuer: str,
        minted: ProviderTokens,
        clock: Clock,
        leeway: float = 10.0,
    ) -> None:
        self._keys = keys
        self._audience = audience
        self._issuer = issuer
        self._minted = minted
        self._clock = clock
        self._leeway = leeway

    @property
    def audience(self) -> str:
        return self._audience

    @property
    def issuer(self) -> str:
        return self._issuer

    def identify(self, token: str) -> Identity:
        """The identity ``token`` carries; raises :class:`VerificationError` with a code."""
        if token.startswith(TOKEN_PREFIX):
            return Identity.from_provider_claims(self._minted.verify(token))
        claims = verify(
            token, self._keys, audience=self._audience, issuer=self._issuer, leeway=self._leeway
        )
        if self._clock.now() > claims["exp"] + self._leeway:
            raise VerificationError("token has expired", code="expired")
        if not isinstance(claims["sub"], str) or not claims["sub"]:
            raise VerificationError("'sub' must be a non-empty string", code="bad_claims")
        return Identity.from_host_claims(claims)
