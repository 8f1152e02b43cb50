"""The generic profile: embedgate's own claim layout, signed locally (HMAC or asymmetric)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..config import Config
from ..errors import ConfigurationError
from ..keyring import keyset_from_config
from ..keys import KeySet, SigningKey
from ..signer import LocalSigner


class GenericProfile:
    """Any provider that verifies a JWT the host signs (Cube, Lightdash, a home-grown one)."""

    name = "generic"

    def build_issuer(self, config: Config, options: Mapping[str, Any]) -> LocalSigner:
        if config.mode == "api_key":
            # Sandbox: the provider API key itself is the HMAC secret both sides share.
            assert config.api_key is not None
            keys = KeySet(
                [
                    SigningKey.hmac(
                        config.api_key, config.algorithm or "HS256", setting="EMBEDGATE_API_KEY"
                    )
                ]
            )
        else:
            keys = keyset_from_config(config)
        if options:
            raise ConfigurationError(
                f"EMBEDGATE_GENERIC_{sorted(options)[0].upper()}",
                "the generic provider has no such setting",
            )
        return LocalSigner(
            keys,
            issuer=config.issuer,
            audience=config.audience,
            typ=config.typ,
            size_budget=config.token_size_budget,
            name=self.name,
            max_ttl=config.max_ttl,
        )
