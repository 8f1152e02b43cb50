"""Interop: tokens minted by embedgate verify under two independent JOSE implementations
(joserfc and jwcrypto), with keys imported from our published JWKS."""

from __future__ import annotations

import json
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwt as joserfc_jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import KeySet as JoseKeySet
from joserfc.jwk import OctKey
from jwcrypto import jwk as jwcrypto_jwk
from jwcrypto import jwt as jwcrypto_jwt
from jwcrypto.jws import InvalidJWSSignature

from embedgate import IssueRequest, KeySet, LocalSigner, Principal, SigningKey
from tests.core.conftest import AUDIENCE, HMAC_SECRETS, ISSUER, make_signer

ASYMMETRIC = ["ES256", "EdDSA", "RS256", "PS256"]

# joserfc flags "EdDSA" as superseded by the fully-specified "Ed25519" (RFC 9864).
pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated:Warning")


def _mint(signer: LocalSigner, principal: Principal) -> str:
    return signer.issue(IssueRequest(principal=principal, now=time.time(), ttl=300)).token


def _check_claims(claims: dict[str, object]) -> None:
    assert claims["sub"] == "alice"
    assert claims["iss"] == ISSUER
    assert claims["aud"] == AUDIENCE
    assert claims["tenant"] == "acme"
    assert claims["attributes"] == {"region": "EU", "countries": ["FR", "DE"], "level": 3}


@pytest.mark.parametrize("algorithm", ASYMMETRIC)
def test_joserfc_verifies_with_our_jwks(algorithm: str, alice: Principal) -> None:
    signer = make_signer(algorithm)
    token = _mint(signer, alice)
    jwks = signer.jwks()
    assert jwks is not None
    key_set = JoseKeySet.import_key_set(jwks)  # type: ignore[arg-type]
    decoded = joserfc_jwt.decode(token, key_set, algorithms=[algorithm])
    assert decoded.header["kid"] == signer.keys.signing_key.kid
    joserfc_jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": ISSUER},
        aud={"essential": True, "value": AUDIENCE},
        sub={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
        jti={"essential": True},
    ).validate(decoded.claims)
    _check_claims(decoded.claims)


@pytest.mark.parametrize("algorithm", ASYMMETRIC)
def test_jwcrypto_verifies_with_our_jwks(algorithm: str, alice: Principal) -> None:
    signer = make_signer(algorithm)
    token = _mint(signer, alice)
    key_set = jwcrypto_jwk.JWKSet.from_json(json.dumps(signer.jwks()))
    verified = jwcrypto_jwt.JWT(
        jwt=token,
        key=key_set,
        algs=[algorithm],
        check_claims={"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "exp": None, "iat": None},
    )
    _check_claims(json.loads(verified.claims))


def test_hs256_interop_with_the_shared_secret(alice: Principal) -> None:
    signer = make_signer("HS256")
    token = _mint(signer, alice)
    secret = HMAC_SECRETS["HS256"].encode()
    decoded = joserfc_jwt.decode(token, OctKey.import_key(secret), algorithms=["HS256"])
    _check_claims(decoded.claims)
    oct_key = jwcrypto_jwk.JWK.from_password(secret.decode())
    verified = jwcrypto_jwt.JWT(jwt=token, key=oct_key, algs=["HS256"])
    _check_claims(json.loads(verified.claims))


def test_both_libraries_reject_a_token_signed_by_another_key(alice: Principal) -> None:
    token = _mint(make_signer("ES256"), alice)
    kid = make_signer("ES256").keys.signing_key.kid
    # Another P-256 key published under the same kid: the signature must not check out.
    impostor_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    impostor = KeySet([SigningKey.private(impostor_pem, "ES256", kid=kid)]).jwks()
    with pytest.raises(BadSignatureError):
        joserfc_jwt.decode(token, JoseKeySet.import_key_set(impostor), algorithms=["ES256"])  # type: ignore[arg-type]
    with pytest.raises(InvalidJWSSignature):
        jwcrypto_jwt.JWT(jwt=token, key=jwcrypto_jwk.JWK(**impostor["keys"][0]), algs=["ES256"])
    hs_token = _mint(make_signer("HS256"), alice)
    with pytest.raises(BadSignatureError):
        joserfc_jwt.decode(hs_token, OctKey.import_key(b"y" * 32), algorithms=["HS256"])
    with pytest.raises(InvalidJWSSignature):
        jwcrypto_jwt.JWT(jwt=hs_token, key=jwcrypto_jwk.JWK.from_password("y" * 32), algs=["HS256"])
