"""Fixtures of the core tests: a realistic principal, signers for each algorithm."""

from __future__ import annotations

from typing import Any

import pytest

from embedgate import KeySet, LocalSigner, Principal, SigningKey
from tests.conftest import TEST_SECRET
from tests.core.material import ALGORITHM_KEYS, private_pem

ISSUER = "https://app.example.test"
AUDIENCE = "analytics.example.test"

# One secret per HMAC algorithm, each as long as the hash output (RFC 7518 section 3.2).
HMAC_SECRETS = {
    "HS256": TEST_SECRET,
    "HS384": "hs384-RBnSsS5gIIFW3s4Ay9PFqbojcf27Gc-cMZ5M0bXoUD6YiXYq76E4JSzhlrxn4pA7",
    "HS512": "hs512-AOhr2zdq8SUK-5NAt6Z4vF1uUouXB9cUpQoPgjp1irzyBhDaHziObX-OZz4wgmc"
    "SwZrgs3sZTN4nCAYwFNgChA",
}

ALL_ALGORITHMS = ("HS256", "HS384", "HS512", "ES256", "EdDSA", "PS256", "RS256")


def signing_key(algorithm: str, *, kid: str | None = None, active: bool = True) -> SigningKey:
    """A valid key for ``algorithm`` (HMAC secret or PEM private key)."""
    if algorithm in HMAC_SECRETS:
        return SigningKey.hmac(HMAC_SECRETS[algorithm], algorithm, kid=kid, active=active)
    pem = private_pem(ALGORITHM_KEYS[algorithm])
    return SigningKey.private(pem, algorithm, kid=kid, active=active)


def make_signer(algorithm: str = "HS256", **options: Any) -> LocalSigner:
    """A LocalSigner for ISSUER/AUDIENCE with one key of ``algorithm``."""
    return LocalSigner(
        KeySet([signing_key(algorithm)]), issuer=ISSUER, audience=AUDIENCE, **options
    )


@pytest.fixture
def alice() -> Principal:
    return Principal(
        subject="alice",
        email="alice@example.com",
        name="Alice Liddell",
        tenant="acme",
        roles=("viewer", "analyst"),
        groups=("emea",),
        permissions={"dashboard:sales": ("view",)},
        attributes={"region": "EU", "countries": ["FR", "DE"], "level": 3},
    )
