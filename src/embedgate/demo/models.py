"""The demo's three authentication models, each an :class:`~embedgate.Engine` of its own.

1. ``token``: the host signs a JWT for its logged-in user (generic profile, an EdDSA key
   generated at start-up); the provider verifies it with the host's public key.
2. ``sandbox``: api_key mode (DEVELOPMENT ONLY): the toucan profile asks the provider's
   ``POST /embed/generate-token`` for each token, with the provider's API key.
3. ``sso``: the user signed in at an identity provider; the host keeps the ID token's claims
   in its session and a :class:`~embedgate.ClaimMapping` turns them into the principal.

Settings are given explicitly (never read from ``EMBEDGATE_*`` variables), so the demo
runs the same on every machine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from ..config import Config
from ..engine import Engine
from ..errors import ConfigurationError
from ..secret import Secret
from .users import CLAIMS_NAMESPACE

HOST_ISSUER: Final = "embedgate-demo-host"
PROVIDER_AUDIENCE: Final = "embedgate-demo-provider"
MIN_TTL: Final = 10
MAX_TTL: Final = 3600
# The provider's roles for the host's (unmapped roles would become Toucan's "explorer").
TOUCAN_ROLES: Final = {"admin": "admin", "analyst": "analyst", "viewer": "viewer"}
# Only what row-level security needs reaches the token: e-mail and name are left out.
SSO_CLAIM_MAPPING: Final[Mapping[str, Any]] = {
    "subject": "sub",
    "email": None,
    "name": None,
    "tenant": f"{CLAIMS_NAMESPACE}/tenant",
    "roles": "groups",
    "groups": None,
    "attributes": {"region": f"{CLAIMS_NAMESPACE}/region"},
}


@dataclass(frozen=True)
class Timing:
    """Token lifetime and refresh settings derived from ``--ttl``."""

    ttl: int
    min_remaining: int
    refresh_margin: int

    @classmethod
    def for_ttl(cls, ttl: int) -> Timing:
        if not MIN_TTL <= ttl <= MAX_TTL:
            raise ConfigurationError("--ttl", f"expected {MIN_TTL} to {MAX_TTL} seconds, got {ttl}")
        # The refresh margin matches embedgate.js's own 5 s staleness margin at least.
        min_remaining = max(2, ttl // 5)
        return cls(ttl, min_remaining, max(min_remaining + 1, 5, ttl // 3))

    def settings(self) -> dict[str, Any]:
        return {
            "ttl": self.ttl,
            "min_remaining": self.min_remaining,
            "refresh_margin": float(self.refresh_margin),
            # The sandbox mints through the demo's own provider, in this process: its first
            # mint starts the HTTP client (a second or so on a busy laptop). A demo page
            # should show a token rather than render without one and fetch it after.
            "page_deadline": 5.0,
        }


@dataclass(frozen=True)
class AuthModel:
    """One authentication model: where it is mounted and the engine issuing its tokens."""

    id: str
    path: str
    label: str
    engine: Engine


def _engine(config: Config, options: Mapping[str, Any] | None = None) -> Engine:
    return Engine(config, config_source=options or {}, environ={})


def token_model(timing: Timing, private_key: Secret) -> AuthModel:
    config = Config(
        mode="token",
        provider="generic",
        private_key=private_key,
        algorithm="EdDSA",
        issuer=HOST_ISSUER,
        audience=PROVIDER_AUDIENCE,
        **timing.settings(),
    )
    return AuthModel("token", "/token", "Token-based", _engine(config))


def sandbox_model(timing: Timing, provider_url: str, api_key: Secret) -> AuthModel:
    config = Config(
        mode="api_key",
        provider="toucan",
        provider_url=provider_url,
        api_key=api_key,
        **timing.settings(),
    )
    options = {"EMBEDGATE_TOUCAN_ROLES": dict(TOUCAN_ROLES)}
    return AuthModel("sandbox", "/sandbox", "API-key sandbox", _engine(config, options))


def sso_model(timing: Timing, private_key: Secret) -> AuthModel:
    config = Config(
        mode="sso",
        provider="generic",
        private_key=private_key,
        algorithm="EdDSA",
        issuer=HOST_ISSUER,
        audience=PROVIDER_AUDIENCE,
        claim_mapping=dict(SSO_CLAIM_MAPPING),
        **timing.settings(),
    )
    return AuthModel("sso", "/sso", "SSO", _engine(config))
