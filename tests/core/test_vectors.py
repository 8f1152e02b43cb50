"""Published test vectors: RFC 7515 A.1 (HS256), RFC 8037 A (Ed25519), RFC 7638 3.1.

The data is copied from the RFCs. Each test goes through embedgate's own key handling
(SigningKey, its signing material, its kid) so a wrong key encoding, a wrong thumbprint or
a wrong signature primitive would fail here.
"""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from jwt.algorithms import get_default_algorithms
from jwt.api_jws import PyJWS

from embedgate import KeySet, SigningKey, VerificationError, verify
from embedgate.keys import jwk_thumbprint


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# -- RFC 7515 appendix A.1: HMAC SHA-256 ----------------------------------------------------

RFC7515_A1_KEY = (
    "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"
)
RFC7515_A1_HEADER = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
RFC7515_A1_PAYLOAD = (
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
)
RFC7515_A1_SIGNATURE = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
RFC7515_A1_JWS = f"{RFC7515_A1_HEADER}.{RFC7515_A1_PAYLOAD}.{RFC7515_A1_SIGNATURE}"


def test_rfc7515_a1_segments_decode_to_the_published_json() -> None:
    assert b64url_decode(RFC7515_A1_HEADER) == b'{"typ":"JWT",\r\n "alg":"HS256"}'
    assert b64url_decode(RFC7515_A1_PAYLOAD) == (
        b'{"iss":"joe",\r\n "exp":1300819380,\r\n "http://example.com/is_root":true}'
    )


def test_rfc7515_a1_our_hmac_key_reproduces_the_published_signature() -> None:
    key = SigningKey.hmac(b64url_decode(RFC7515_A1_KEY), "HS256", kid="rfc7515")
    signing_input = f"{RFC7515_A1_HEADER}.{RFC7515_A1_PAYLOAD}".encode("ascii")
    hs256 = get_default_algorithms()["HS256"]
    signature = hs256.sign(signing_input, key.signing_material())
    assert base64.urlsafe_b64encode(signature).rstrip(b"=").decode() == RFC7515_A1_SIGNATURE


def test_rfc7515_a1_published_token_verifies_with_the_published_key() -> None:
    key = SigningKey.hmac(b64url_decode(RFC7515_A1_KEY), "HS256", kid="rfc7515")
    payload = PyJWS().decode(
        RFC7515_A1_JWS, key.verification_material(), algorithms=[key.algorithm]
    )
    assert payload == b64url_decode(RFC7515_A1_PAYLOAD)
    wrong = SigningKey.hmac(b"wrong-kQ9vX2mL7pR4tZ8wB1nC6yD3fG5hJ0sA", "HS256")
    with pytest.raises(Exception, match="Signature verification failed"):
        PyJWS().decode(RFC7515_A1_JWS, wrong.verification_material(), algorithms=["HS256"])


def test_rfc7515_a1_token_is_refused_by_embedgate_verify() -> None:
    """It has no kid and expired in 2011: embedgate's verify() must say no."""
    keys = KeySet([SigningKey.hmac(b64url_decode(RFC7515_A1_KEY), "HS256")])
    with pytest.raises(VerificationError, match="no 'kid'"):
        verify(RFC7515_A1_JWS, keys, audience="any", issuer="joe")


# -- RFC 8037 appendix A: Ed25519 ----------------------------------------------------------

RFC8037_A1_D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
RFC8037_A1_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
RFC8037_A3_THUMBPRINT = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
RFC8037_A4_PAYLOAD = b"Example of Ed25519 signing"
RFC8037_A4_JWS = (
    "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
)


def _rfc8037_signing_key() -> SigningKey:
    private = ed25519.Ed25519PrivateKey.from_private_bytes(b64url_decode(RFC8037_A1_D))
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return SigningKey.private(pem, "EdDSA")


def test_rfc8037_a2_public_key_of_the_published_private_key() -> None:
    jwk = _rfc8037_signing_key().public_jwk()
    assert jwk is not None
    assert jwk["kty"] == "OKP"
    assert jwk["crv"] == "Ed25519"
    assert jwk["x"] == RFC8037_A1_X
    assert "d" not in jwk


def test_rfc8037_a3_thumbprint_is_our_default_kid() -> None:
    assert _rfc8037_signing_key().kid == RFC8037_A3_THUMBPRINT
    assert jwk_thumbprint({"kty": "OKP", "crv": "Ed25519", "x": RFC8037_A1_X}) == (
        RFC8037_A3_THUMBPRINT
    )


def test_rfc8037_a4_deterministic_signature_is_reproduced() -> None:
    key = _rfc8037_signing_key()
    # PyJWS with the header reduced to {"alg":"EdDSA"}, exactly as in the RFC.
    jws = PyJWS().encode(
        RFC8037_A4_PAYLOAD, key.signing_material(), algorithm=key.algorithm, headers={"typ": None}
    )
    assert jws == RFC8037_A4_JWS


def test_rfc8037_a5_published_jws_verifies_with_the_public_key() -> None:
    key = _rfc8037_signing_key()
    payload = PyJWS().decode(RFC8037_A4_JWS, key.verification_material(), algorithms=["EdDSA"])
    assert payload == RFC8037_A4_PAYLOAD
    header, body, signature = RFC8037_A4_JWS.split(".")
    tampered = f"{header}.{body[:-2]}Zw.{signature}"
    with pytest.raises(Exception, match="Signature verification failed"):
        PyJWS().decode(tampered, key.verification_material(), algorithms=["EdDSA"])


# -- RFC 7638 section 3.1: RSA thumbprint -------------------------------------------------

RFC7638_N = (
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECP"
    "ebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY"
    "368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0f"
    "M4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
)
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_rfc7638_rsa_thumbprint_ignores_optional_members() -> None:
    jwk = {"kty": "RSA", "n": RFC7638_N, "e": "AQAB", "alg": "RS256", "kid": "2011-04-29"}
    assert jwk_thumbprint(jwk) == RFC7638_THUMBPRINT
    assert jwk_thumbprint({"e": "AQAB", "kty": "RSA", "n": RFC7638_N}) == RFC7638_THUMBPRINT
    assert jwk_thumbprint({**jwk, "e": "AQAC"}) != RFC7638_THUMBPRINT
