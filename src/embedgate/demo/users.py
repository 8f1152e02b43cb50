"""The demo's three people, as both the host app and the demo identity provider know them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from ..principal import Principal

PASSWORD: Final = "demo"
CLAIMS_NAMESPACE: Final = "https://demo.embedgate"
"""Prefix of the demo IdP's custom claims (a URI, so they never clash with standard ones)."""


@dataclass(frozen=True)
class DemoUser:
    id: str
    name: str
    email: str
    tenant: str
    role: str
    region: str | None = None

    def principal(self) -> Principal:
        """What the host's embed token says about this user (no e-mail, no name: the
        provider needs neither, and tokens stay minimal)."""
        attributes = {"region": self.region} if self.region else {}
        return Principal(
            subject=self.id, tenant=self.tenant, roles=(self.role,), attributes=attributes
        )

    def id_token_claims(self) -> dict[str, Any]:
        """The identity claims the demo IdP asserts: standard OIDC ones plus namespaced
        custom claims, as Auth0 or Okta would send them."""
        claims: dict[str, Any] = {
            "sub": self.id,
            "name": self.name,
            "email": self.email,
            "groups": [self.role],
            f"{CLAIMS_NAMESPACE}/tenant": self.tenant,
        }
        if self.region:
            claims[f"{CLAIMS_NAMESPACE}/region"] = self.region
        return claims

    def describe(self) -> str:
        region = f"region {self.region}" if self.region else "every region"
        return f"tenant {self.tenant}, {region}, role {self.role}"


USERS: Final = {
    user.id: user
    for user in (
        DemoUser("alice", "Alice Martin", "alice@acme.example", "acme", "analyst", "EU"),
        DemoUser("bob", "Bob Chen", "bob@globex.example", "globex", "viewer", "US"),
        DemoUser("carol", "Carol Diaz", "carol@acme.example", "acme", "admin"),
    )
}
