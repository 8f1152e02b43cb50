"""verify(): algorithms pinned to the key, registered claims required, every tampering
rejected with a VerificationError that does not repeat the token."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest

from embedgate import IssueRequest, KeySet, Principal, VerificationError, verify
from tests.core.conftest import AUDIENCE, ISSUER, make_signer, signing_key
from tests.core.material import public_pem


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _forge_hs256(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    """Sign by hand, as an attacker would (PyJWT itself refuses a PEM as HMAC secret)."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    mac = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


def _valid_claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": now, "exp": now + 300}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _token(algorithm: str = "HS256", *, age: float = 0.0, ttl: int = 300) -> tuple[str, KeySet]:
    signer = make_signer(algorithm)
    request = IssueRequest(principal=Principal(subject="alice"), now=time.time() - age, ttl=ttl)
    return signer.issue(request).token, signer.keys


def _rejects(token: str, keys: KeySet, expected: str, **kwargs: Any) -> None:
    options: dict[str, Any] = {"audience": AUDIENCE, "issuer": ISSUER, **kwargs}
    with pytest.raises(VerificationError) as caught:
        verify(token, keys, **options)
    assert expected in str(caught.value)
    for part in token.split("."):
        if part:
            assert part not in str(caught.value)


@pytest.mark.parametrize("algorithm", ["HS256", "ES256", "EdDSA", "RS256", "PS256"])
def test_valid_token_verifies(algorithm: str) -> None:
    token, keys = _token(algorithm)
    assert verify(token, keys, audience=AUDIENCE, issuer=ISSUER)["sub"] == "alice"


@pytest.mark.parametrize("algorithm", ["HS256", "ES256", "EdDSA"])
def test_tampered_payload_is_rejected(algorithm: str) -> None:
    token, keys = _token(algorithm)
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "admin"
    forged = f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"
    _rejects(forged, keys, "Signature verification failed")


def test_tampered_signature_is_rejected() -> None:
    token, keys = _token("ES256")
    header, payload, signature = token.split(".")
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    _rejects(f"{header}.{payload}.{flipped}", keys, "rejected")


def test_expired_token_is_rejected_beyond_the_leeway() -> None:
    expired, keys = _token(age=400)  # expired 100 s ago
    _rejects(expired, keys, "expired")
    just_expired, _ = _token(age=305)  # expired 5 s ago: inside the default 10 s leeway
    assert verify(just_expired, keys, audience=AUDIENCE, issuer=ISSUER)["sub"] == "alice"
    _rejects(just_expired, keys, "expired", leeway=0)


def test_token_from_the_future_is_rejected() -> None:
    future, keys = _token(age=-120)  # nbf two minutes ahead
    _rejects(future, keys, "not yet valid")


def test_wrong_audience_is_rejected() -> None:
    token, keys = _token()
    _rejects(token, keys, "Audience", audience="someone-else")


def test_wrong_issuer_is_rejected() -> None:
    token, keys = _token()
    _rejects(token, keys, "issuer", issuer="https://evil.example")


def test_issuer_and_audience_may_be_lists() -> None:
    token, keys = _token()
    claims = verify(token, keys, audience=["x", AUDIENCE], issuer=["y", ISSUER])
    assert claims["sub"] == "alice"


def test_unknown_kid_is_rejected() -> None:
    token, _ = _token("ES256")
    _, other_keys = _token("EdDSA")
    _rejects(token, other_keys, "unknown key id")


def test_missing_kid_is_rejected() -> None:
    keys = KeySet([signing_key("HS256")])
    secret = keys.signing_key.signing_material()
    token = jwt.encode(_valid_claims(), secret, algorithm="HS256")
    _rejects(token, keys, "no 'kid'")


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "...", "eyJhbGciOiJIUzI1NiJ9"])
def test_malformed_token_is_rejected(token: str) -> None:
    with pytest.raises(VerificationError) as caught:
        verify(token, KeySet([signing_key("HS256")]), audience=AUDIENCE, issuer=ISSUER)
    assert "malformed" in str(caught.value) or "kid" in str(caught.value)


def test_algorithm_switch_to_hmac_with_the_public_key_is_rejected() -> None:
    """The classic RS256 -> HS256 confusion: the public key used as the HMAC secret."""
    keys = KeySet([signing_key("RS256")])
    kid = keys.signing_key.kid
    forged = _forge_hs256(
        {"alg": "HS256", "typ": "JWT", "kid": kid}, _valid_claims(), public_pem("RSA-2048")
    )
    _rejects(forged, keys, "does not match key")


def test_alg_none_is_rejected() -> None:
    keys = KeySet([signing_key("HS256")])
    header = _b64(json.dumps({"alg": "none", "kid": keys.signing_key.kid}).encode())
    payload = _b64(json.dumps(_valid_claims()).encode())
    _rejects(f"{header}.{payload}.", keys, "does not match key")


def test_switch_between_asymmetric_algorithms_is_rejected() -> None:
    keys = KeySet([signing_key("ES256")])
    token, _ = _token("ES256")
    header, payload, signature = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    decoded.update(alg="ES384", kid=keys.signing_key.kid)
    _rejects(f"{_b64(json.dumps(decoded).encode())}.{payload}.{signature}", keys, "does not match")


@pytest.mark.parametrize("missing", ["exp", "iat", "aud", "iss", "sub"])
def test_registered_claims_are_required(missing: str) -> None:
    keys = KeySet([signing_key("HS256")])
    key = keys.signing_key
    claims = _valid_claims(**{missing: None})
    token = jwt.encode(claims, key.signing_material(), algorithm="HS256", headers={"kid": key.kid})
    if missing in ("aud", "iss"):
        # PyJWT reports a missing aud/iss as a missing claim when one is expected.
        _rejects(token, keys, missing)
    else:
        _rejects(token, keys, f'"{missing}"')


def test_retired_key_still_verifies_during_rotation() -> None:
    token, keys = _token("ES256")
    retired = signing_key("ES256", kid=keys.signing_key.kid, active=False)
    rotated = KeySet([retired, signing_key("EdDSA")])
    assert rotated.signing_key.algorithm == "EdDSA"
    assert verify(token, rotated, audience=AUDIENCE, issuer=ISSUER)["sub"] == "alice"
