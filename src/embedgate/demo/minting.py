"""Provider-minted tokens, as Toucan's ``/embed/generate-token`` makes them.

The token is encrypted and authenticated (Fernet) with a key generated when the provider
starts, so it is opaque to the host: the host learns its lifetime from the response, never
by reading the token. Restarting the provider invalidates every token it minted.
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from cryptography.fernet import Fernet, InvalidToken

from ..clock import Clock
from ..errors import EmbedgateError, PrincipalError, VerificationError
from ..principal import Principal

TOKEN_PREFIX: Final = "demo."
DEFAULT_ROLE: Final = "viewer"
MAX_ID_LENGTH: Final = 256
MAX_ATTRIBUTES: Final = 32
_USER_FIELDS: Final = frozenset({"distinctId", "role", "attributes"})


class BodyError(EmbedgateError, ValueError):
    """A generate-token request body is malformed; ``field`` names the offending part."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


@dataclass(frozen=True)
class ProviderUser:
    """The ``user`` object of a generate-token request, validated."""

    distinct_id: str
    role: str
    attributes: Mapping[str, Any]


@dataclass(frozen=True)
class MintedToken:
    token: str
    expires_at: int
    expires_in: int

    def to_json(self) -> dict[str, Any]:
        """The generate-token response body."""
        return {"token": self.token, "expiresIn": self.expires_in, "expiresAt": self.expires_at}


def parse_user(body: object) -> ProviderUser:
    """Validate ``{"user": {"distinctId", "role"?, "attributes"?}}``; raise :class:`BodyError`."""
    if not isinstance(body, dict):
        raise BodyError("body", f"expected a JSON object, got {_json_type(body)}")
    unknown = sorted(set(body) - {"user"})
    if unknown:
        raise BodyError(unknown[0], "is not a known field; expected only 'user'")
    user = body.get("user")
    if not isinstance(user, dict):
        raise BodyError("user", f"expected an object, got {_json_type(user)}")
    unknown = sorted(set(user) - _USER_FIELDS)
    if unknown:
        raise BodyError(
            f"user.{unknown[0]}", "is not a known field; expected distinctId, role, attributes"
        )
    distinct_id = user.get("distinctId")
    if not isinstance(distinct_id, str) or not distinct_id.strip():
        raise BodyError("user.distinctId", "is required: a non-empty string")
    if len(distinct_id) > MAX_ID_LENGTH:
        raise BodyError("user.distinctId", f"is longer than {MAX_ID_LENGTH} characters")
    role = user.get("role", DEFAULT_ROLE)
    if not isinstance(role, str) or not role.strip():
        raise BodyError("user.role", "expected a non-empty string")
    attributes = user.get("attributes", {})
    if not isinstance(attributes, dict):
        raise BodyError("user.attributes", f"expected an object, got {_json_type(attributes)}")
    if len(attributes) > MAX_ATTRIBUTES:
        raise BodyError("user.attributes", f"has more than {MAX_ATTRIBUTES} attributes")
    try:
        # Principal validates attribute values the way the host side does (JSON scalars
        # or lists of scalars, finite numbers).
        principal = Principal(subject=distinct_id, roles=(role,), attributes=attributes)
    except PrincipalError as exc:
        raise BodyError(f"user.{exc.field}", exc.problem) from None
    plain = principal.to_dict().get("attributes", {})
    return ProviderUser(distinct_id=distinct_id, role=role, attributes=plain)


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)


class ProviderTokens:
    """Mints and checks the provider's own tokens (fresh key per instance)."""

    def __init__(self, *, ttl: int, clock: Clock) -> None:
        self._fernet = Fernet(Fernet.generate_key())
        self._ttl = ttl
        self._clock = clock

    def mint(self, user: ProviderUser) -> MintedToken:
        now = self._clock.now()
        iat = math.floor(now)
        exp = iat + self._ttl
        payload = {
            "sub": user.distinct_id,
            "role": user.role,
            "attributes": dict(user.attributes),
            "iat": iat,
            "exp": exp,
            "jti": secrets.token_urlsafe(12),
        }
        data = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        sealed = self._fernet.encrypt_at_time(data, iat).decode("ascii")
        return MintedToken(TOKEN_PREFIX + sealed, expires_at=exp, expires_in=max(0, exp - iat))

    def verify(self, token: str) -> dict[str, Any]:
        """The payload of a token this instance minted and that has not expired."""
        if not token.startswith(TOKEN_PREFIX):
            raise VerificationError("not a provider token", code="malformed")
        try:
            data = self._fernet.decrypt(token[len(TOKEN_PREFIX) :].encode("ascii"))
        except (InvalidToken, UnicodeEncodeError):
            raise VerificationError(
                "provider token failed authentication (tampered, or minted by another "
                "provider instance)",
                code="bad_signature",
            ) from None
        payload: dict[str, Any] = json.loads(data)
        if self._clock.now() >= payload["exp"]:
            raise VerificationError("provider token has expired", code="expired")
        return payload
