"""Signing keys: refused at configuration time unless they fit their algorithm; key sets,
rotation and the published JWKS."""

from __future__ import annotations

import time
from collections.abc import Callable

import jwt
import pytest
from jwcrypto import jwk as cjwk

from embedgate import (
    IssueRequest,
    KeyConfigurationError,
    KeySet,
    LocalSigner,
    Principal,
    SigningKey,
    verify,
)
from embedgate.keys import jwk_thumbprint
from tests.core.conftest import AUDIENCE, HMAC_SECRETS, ISSUER, signing_key
from tests.core.material import (
    encrypted_pem,
    private_pem,
    public_pem,
    ssh_public,
    traditional_pem,
)

PRIVATE_JWK_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


def _issue(keys: KeySet) -> str:
    signer = LocalSigner(keys, issuer=ISSUER, audience=AUDIENCE)
    return signer.issue(IssueRequest(Principal(subject="alice"), time.time(), 300)).token


# -- HMAC secrets ------------------------------------------------------------------------


@pytest.mark.parametrize(("algorithm", "minimum"), [("HS256", 32), ("HS384", 48), ("HS512", 64)])
def test_hmac_secret_must_be_as_long_as_the_hash(algorithm: str, minimum: int) -> None:
    """RFC 7518 section 3.2: a key at least as long as the hash output."""
    short = "s" * (minimum - 1)
    with pytest.raises(KeyConfigurationError) as caught:
        SigningKey.hmac(short, algorithm)
    assert caught.value.setting == "EMBEDGATE_SECRET"
    assert f"at least {minimum} bytes" in str(caught.value)
    assert short not in str(caught.value)
    strong = "Zq8vJ3xK0pLmT7wR2nB5yC9dF4gH6jA1sE-uI_oP.kN3mV8bX2zQ7rW5tY0eU4iO6"
    assert SigningKey.hmac(strong[:minimum], algorithm).algorithm == algorithm


def test_sixteen_byte_secret_is_refused_naming_the_setting() -> None:
    with pytest.raises(KeyConfigurationError) as caught:
        SigningKey.hmac("0123456789abcdef", "HS256")
    assert str(caught.value).startswith("EMBEDGATE_SECRET:")
    assert "got 16" in str(caught.value)
    assert "0123456789abcdef" not in str(caught.value)


# Key material that must never be taken for an HMAC secret, made on demand.
NOT_A_SECRET: dict[str, Callable[[], bytes]] = {
    "pem-rsa-public": lambda: public_pem("RSA-2048"),
    "pem-ec-public": lambda: public_pem("P-256"),
    "pem-with-leading-space": lambda: b"\n  " + public_pem("Ed25519"),
    "ssh-rsa": lambda: ssh_public("RSA-2048"),
    "ssh-ed25519": lambda: ssh_public("Ed25519"),
    "ecdsa-sha2": lambda: ssh_public("P-256"),
    "pem-private": lambda: private_pem("P-256"),
}


@pytest.mark.parametrize("name", sorted(NOT_A_SECRET))
def test_a_key_given_as_hmac_secret_is_refused(name: str) -> None:
    """CVE-2022-29217: a public key as HMAC secret lets anyone who has it forge tokens."""
    secret = NOT_A_SECRET[name]()
    assert len(secret) >= 64  # long enough: refused for what it is, not its length
    with pytest.raises(KeyConfigurationError) as caught:
        SigningKey.hmac(secret, "HS256")
    assert "not a PEM or SSH key" in str(caught.value)
    assert caught.value.setting == "EMBEDGATE_SECRET"


@pytest.mark.parametrize("algorithm", ["none", "None", "ES256", "RS256", ""])
def test_hmac_key_refuses_non_hmac_algorithms(algorithm: str) -> None:
    with pytest.raises(KeyConfigurationError) as caught:
        SigningKey.hmac(HMAC_SECRETS["HS256"], algorithm)
    assert caught.value.setting == "EMBEDGATE_ALGORITHM"


def test_hmac_kid_is_stable_and_does_not_reveal_the_secret() -> None:
    key = SigningKey.hmac(HMAC_SECRETS["HS256"])
    again = SigningKey.hmac(HMAC_SECRETS["HS256"])
    other = SigningKey.hmac("another-secret-0123456789abcdef-012345")
    assert key.kid == again.kid != other.kid
    assert key.kid not in HMAC_SECRETS["HS256"]
    assert SigningKey.hmac(HMAC_SECRETS["HS256"], kid="2024-01").kid == "2024-01"


# -- asymmetric keys -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("algorithm", "kind", "expected"),
    [
        ("ES256", "RSA-2048", "needs an EC key on curve secp256r1, got an RSA key of 2048 bits"),
        ("ES256", "P-384", "needs an EC key on curve secp256r1, got an EC key on secp384r1"),
        ("ES384", "P-256", "needs an EC key on curve secp384r1"),
        ("ES256", "Ed25519", "needs an EC key"),
        ("EdDSA", "P-256", "EdDSA needs an Ed25519 key, got an EC key"),
        ("EdDSA", "RSA-2048", "EdDSA needs an Ed25519 key"),
        ("EdDSA", "Ed448", "common verifiers (npm jose among them) support Ed25519 only"),
        ("RS256", "P-256", "RS256 needs an RSA key, got an EC key"),
        ("PS256", "Ed25519", "PS256 needs an RSA key"),
        ("RS256", "RSA-1024", "at least 2048 bits, got 1024"),
        ("PS256", "RSA-1024", "at least 2048 bits, got 1024"),
    ],
)
def test_key_that_does_not_fit_its_algorithm_is_refused(
    algorithm: str, kind: str, expected: str
) -> None:
    with pytest.raises(KeyConfigurationError) as caught:
        SigningKey.private(private_pem(kind), algorithm)
    assert caught.value.setting == "EMBEDGATE_PRIVATE_KEY"
    assert expected in str(caught.value)


UNUSABLE_PRIVATE: dict[str, tuple[Callable[[], bytes], str]] = {
    "public-pem": (lambda: public_pem("P-256"), "needs a private key to sign; got a public key"),
    "ssh-public": (lambda: ssh_public("Ed25519"), "needs a private key to sign; got a public key"),
    "encrypted": (lambda: encrypted_pem("P-256"), "unencrypted PEM private key"),
    "broken-pem": (
        lambda: b"-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n",
        "unencrypted PEM private key",
    ),
    "hmac-secret": (HMAC_SECRETS["HS256"].encode, "unencrypted PEM private key"),
}


@pytest.mark.parametrize("name", sorted(UNUSABLE_PRIVATE))
def test_unusable_private_key_material_is_refused(name: str) -> None:
    material, expected = UNUSABLE_PRIVATE[name]
    with pytest.raises(KeyConfigurationError) as caught:
        SigningKey.private(material(), "ES256", setting="EMBEDGATE_PRIVATE_KEY_FILE")
    assert caught.value.setting == "EMBEDGATE_PRIVATE_KEY_FILE"
    assert expected in str(caught.value)
    assert "BEGIN" not in str(caught.value)


@pytest.mark.parametrize("algorithm", ["none", "HS256", "ES999", ""])
def test_private_key_refuses_unknown_and_symmetric_algorithms(algorithm: str) -> None:
    with pytest.raises(KeyConfigurationError) as caught:
        SigningKey.private(private_pem("P-256"), algorithm)
    assert caught.value.setting == "EMBEDGATE_ALGORITHM"


@pytest.mark.parametrize(
    ("algorithm", "kind"),
    [
        ("ES256", "P-256"),
        ("ES384", "P-384"),
        ("ES512", "P-521"),
        ("EdDSA", "Ed25519"),
        ("RS256", "RSA-2048"),
    ],
)
def test_traditional_pem_format_is_accepted(algorithm: str, kind: str) -> None:
    pem = traditional_pem(kind) if not kind.startswith("Ed") else private_pem(kind)
    key = SigningKey.private(pem, algorithm)
    token = _issue(KeySet([key]))
    assert verify(token, KeySet([key]), audience=AUDIENCE, issuer=ISSUER)["sub"] == "alice"


@pytest.mark.parametrize("algorithm", ["ES256", "EdDSA", "RS256", "PS256"])
def test_default_kid_is_the_rfc7638_thumbprint(algorithm: str) -> None:
    key = signing_key(algorithm)
    jwk = key.public_jwk()
    assert jwk is not None
    # jwcrypto computes the thumbprint independently.
    independent = cjwk.JWK(**{k: v for k, v in jwk.items() if k not in ("alg", "use", "kid")})
    assert key.kid == independent.thumbprint() == jwk_thumbprint(jwk)


def test_repr_of_a_key_shows_no_material() -> None:
    hmac_key = SigningKey.hmac(HMAC_SECRETS["HS256"])
    ec_key = signing_key("ES256")
    assert HMAC_SECRETS["HS256"] not in repr(hmac_key)
    assert "BEGIN" not in repr(ec_key)
    assert repr(ec_key) == f"SigningKey(algorithm='ES256', kid={ec_key.kid!r}, active=True)"


# -- key sets ------------------------------------------------------------------------------


def test_keyset_signs_with_the_newest_active_key() -> None:
    old = signing_key("ES256", kid="old")
    current = signing_key("EdDSA", kid="current")
    nxt = signing_key("RS256", kid="next", active=False)
    keys = KeySet([old, current, nxt])
    assert keys.signing_key is current
    token = _issue(keys)
    assert jwt.get_unverified_header(token)["kid"] == "current"
    assert jwt.get_unverified_header(token)["alg"] == "EdDSA"
    assert keys.algorithms == ["ES256", "EdDSA", "RS256"]


def test_jwks_publishes_every_public_key_and_nothing_private() -> None:
    keys = KeySet(
        [
            signing_key("ES256", kid="retired", active=False),
            signing_key("RS256", kid="current"),
            signing_key("EdDSA", kid="next", active=False),
        ]
    )
    published = keys.jwks()["keys"]
    assert [jwk["kid"] for jwk in published] == ["retired", "current", "next"]
    for jwk in published:
        assert PRIVATE_JWK_MEMBERS.isdisjoint(jwk), jwk
        assert jwk["use"] == "sig"
    assert {jwk["kty"] for jwk in published} == {"EC", "RSA", "OKP"}
    assert [jwk["alg"] for jwk in published] == ["ES256", "RS256", "EdDSA"]


def test_inactive_next_key_is_published_but_does_not_sign() -> None:
    current = signing_key("ES256", kid="current")
    nxt = signing_key("ES256", kid="next", active=False)
    keys = KeySet([current, nxt])
    assert "next" in [jwk["kid"] for jwk in keys.jwks()["keys"]]
    for _ in range(5):
        assert jwt.get_unverified_header(_issue(keys))["kid"] == "current"
    # Promotion: the next key becomes active and signs; the old one still verifies.
    promoted = KeySet(
        [signing_key("ES256", kid="current", active=False), signing_key("ES256", kid="next")]
    )
    old_token = _issue(keys)
    assert jwt.get_unverified_header(_issue(promoted))["kid"] == "next"
    assert verify(old_token, promoted, audience=AUDIENCE, issuer=ISSUER)["sub"] == "alice"


def test_hmac_keys_are_never_published() -> None:
    keys = KeySet([SigningKey.hmac(HMAC_SECRETS["HS256"])])
    assert keys.jwks() == {"keys": []}
    assert not keys.has_public_keys
    assert LocalSigner(keys, issuer=ISSUER, audience=AUDIENCE).jwks() is None


def test_keyset_refuses_empty_duplicate_or_inactive_sets() -> None:
    with pytest.raises(KeyConfigurationError) as empty:
        KeySet([])
    assert "no signing key configured" in str(empty.value)
    with pytest.raises(KeyConfigurationError) as duplicate:
        KeySet([signing_key("HS256", kid="a"), signing_key("ES256", kid="a")])
    assert "share one kid" in str(duplicate.value)
    with pytest.raises(KeyConfigurationError) as inactive:
        KeySet([signing_key("ES256", active=False)])
    assert "no active key" in str(inactive.value)


def test_keyset_repr_shows_kids_only() -> None:
    keys = KeySet([SigningKey.hmac(HMAC_SECRETS["HS256"], kid="k1")])
    assert (
        repr(keys) == "KeySet([SigningKey(algorithm='HS256', kid='k1', active=True)], signing='k1')"
    )
