"""Who the data API is talking to: the identity a verified token describes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Source = Literal["host", "provider"]


@dataclass(frozen=True)
class Identity:
    """The claims row-level security reads, taken from a token that was already verified.

    ``tenant`` and ``attributes`` keep the token's raw JSON values: :mod:`.rls` decides what
    a malformed value means (nothing is shown), so nothing here is trusted by shape.
    """

    subject: str
    source: Source
    expires_at: float
    tenant: Any = None
    roles: tuple[str, ...] = ()
    attributes: Mapping[str, Any] = field(default_factory=dict)
    resource: str | None = None

    @classmethod
    def from_host_claims(cls, claims: Mapping[str, Any]) -> Identity:
        """embedgate's generic layout: ``tenant`` and ``roles`` at the top level, user
        attributes under ``attributes`` (``attributes.tenant`` is used when ``tenant`` is not)."""
        attributes = claims.get("attributes")
        attributes = dict(attributes) if isinstance(attributes, Mapping) else {}
        roles = claims.get("roles")
        resource = claims.get("resource")
        return cls(
            subject=str(claims["sub"]),
            source="host",
            expires_at=float(claims["exp"]),
            tenant=claims["tenant"] if "tenant" in claims else attributes.get("tenant"),
            roles=_roles(roles),
            attributes=attributes,
            resource=resource if isinstance(resource, str) else None,
        )

    @classmethod
    def from_provider_claims(cls, claims: Mapping[str, Any]) -> Identity:
        """A provider-minted token: Toucan's user (``distinctId``, one ``role``,
        ``attributes``); the tenant is the ``tenant`` attribute."""
        attributes = dict(claims.get("attributes") or {})
        return cls(
            subject=str(claims["sub"]),
            source="provider",
            expires_at=float(claims["exp"]),
            tenant=attributes.get("tenant"),
            roles=_roles([claims.get("role")]),
            attributes=attributes,
        )

    def to_json(self, now: float) -> dict[str, Any]:
        """What the dashboard shows about the viewer (never the token itself)."""
        return {
            "subject": self.subject,
            "tenant": self.tenant,
            "region": self.attributes.get("region"),
            "roles": list(self.roles),
            "source": self.source,
            "expires_at": int(self.expires_at),
            "expires_in": max(0, int(self.expires_at - now)),
        }


def _roles(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)):
        return tuple(item for item in value if isinstance(item, str) and item)
    return ()
