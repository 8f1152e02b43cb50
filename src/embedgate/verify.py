"""Verification for providers and tests: algorithms pinned, registered claims required."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jwt

from .errors import VerificationError
from .keys import KeySet

REQUIRED_CLAIMS = ("exp", "iat", "aud", "iss", "sub")

# Most specific first: InvalidSignatureError is a DecodeError, for instance.
_CODES: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "expired"),
    (jwt.ImmatureSignatureError, "not_yet_valid"),
    (jwt.InvalidAudienceError, "wrong_audience"),
    (jwt.InvalidIssuerError, "wrong_issuer"),
    (jwt.MissingRequiredClaimError, "missing_claim"),
    (jwt.InvalidSignatureError, "bad_signature"),
    (jwt.InvalidAlgorithmError, "algorithm_mismatch"),
    (jwt.DecodeError, "malformed"),
)


def _code(exc: jwt.PyJWTError) -> str:
    return next((code for kind, code in _CODES if isinstance(exc, kind)), "invalid_token")


def verify(
    token: str,
    keys: KeySet,
    *,
    audience: str | Sequence[str],
    issuer: str | Sequence[str],
    leeway: float = 10.0,
    require: Sequence[str] = REQUIRED_CLAIMS,
) -> dict[str, Any]:
    """Return the claims of ``token`` if it was signed by a key of ``keys`` and is valid now.

    The key is chosen by the header's ``kid`` and its algorithm is the only one accepted;
    ``exp``, ``iat``, ``aud``, ``iss`` and ``sub`` must be present. Raises
    :class:`VerificationError` (whose message never contains the token) with a ``code``.
    """
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise VerificationError(
            "malformed token: the header cannot be decoded", code="malformed"
        ) from None
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise VerificationError("token header has no 'kid'", code="missing_kid")
    key = keys.get(kid)
    if key is None:
        raise VerificationError("token was signed with an unknown key id", code="unknown_key")
    if header.get("alg") != key.algorithm:
        raise VerificationError(
            f"token algorithm does not match key {kid!r} ({key.algorithm})",
            code="algorithm_mismatch",
        )
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key.verification_material(),
            algorithms=[key.algorithm],
            audience=audience if isinstance(audience, str) else list(audience),
            issuer=issuer if isinstance(issuer, str) else list(issuer),
            leeway=leeway,
            options={"require": list(require)},
        )
    except jwt.PyJWTError as exc:
        raise VerificationError(f"token rejected: {exc}", code=_code(exc)) from None
    return claims
