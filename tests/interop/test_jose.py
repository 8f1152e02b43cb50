"""npm jose (pinned in package.json) verifies embedgate's tokens and published JWKS for
every algorithm, through a key rotation: the next key is published before it signs, and
tokens of the retired key keep verifying from the JWKS embedgate serves over HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from embedgate import Engine, KeyConfigurationError, Principal
from embedgate.keys import ASYMMETRIC_ALGORITHMS, HMAC_ALGORITHMS
from embedgate.wsgi import EmbedgateWSGIMiddleware
from tests.interop.peers import run_node, serve_wsgi
from tests.support.net import free_port

pytestmark = pytest.mark.interop

ISSUER = "https://host.example.test"
AUDIENCE = "analytics.example.test"


def _pem(algorithm: str) -> bytes:
    key: Any
    if algorithm.startswith("ES"):
        curve = {"ES256": ec.SECP256R1, "ES384": ec.SECP384R1, "ES512": ec.SECP521R1}[algorithm]
        key = ec.generate_private_key(curve())
    elif algorithm == "EdDSA":
        key = ed25519.Ed25519PrivateKey.generate()
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _engine(algorithm: str, **settings: Any) -> Engine:
    return Engine.from_settings(
        environ={}, algorithm=algorithm, issuer=ISSUER, audience=AUDIENCE, **settings
    )


def _token(engine: Engine, subject: str) -> str:
    token = engine.token_for(Principal(subject=subject, tenant="acme"), f"session-{subject}")
    assert token is not None
    return token.token


def _page(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"host app"]


def _case(token: str, algorithm: str, **source: Any) -> dict[str, Any]:
    return {
        "token": token,
        "algorithms": [algorithm],
        "issuer": ISSUER,
        "audience": AUDIENCE,
        **source,
    }


@pytest.mark.parametrize("algorithm", sorted(ASYMMETRIC_ALGORITHMS))
def test_jose_verifies_every_key_through_a_rotation(tmp_path: Path, algorithm: str) -> None:
    files = []
    for name in ("first", "second", "third"):
        path = tmp_path / f"{name}.pem"
        path.write_bytes(_pem(algorithm))
        files.append(str(path))
    first, second, third = files
    before = _engine(algorithm, private_key_file=first, next_key_file=second)
    during = _engine(
        algorithm, previous_key_files=first, private_key_file=second, next_key_file=third
    )
    after = _engine(algorithm, private_key_file=second)  # the first key is gone
    old, new = _token(before, "alice"), _token(during, "bob")
    with serve_wsgi(EmbedgateWSGIMiddleware(_page, during), free_port()) as url:
        jwks_url = f"{url}/_embedgate/jwks.json"
        served = httpx.get(jwks_url, timeout=10).json()
        assert [k["alg"] for k in served["keys"]] == [algorithm] * 3
        results = run_node(
            "jose_verify.mjs",
            {
                "cases": [
                    _case(old, algorithm, jwks=before.jwks()),
                    _case(new, algorithm, jwks=before.jwks()),  # published ahead of use
                    _case(old, algorithm, jwks_url=jwks_url),  # retired, still verifies
                    _case(new, algorithm, jwks_url=jwks_url),
                    _case(old, algorithm, jwks=after.jwks()),  # dropped key: refused
                    {**_case(new, algorithm, jwks_url=jwks_url), "audience": "elsewhere"},
                ]
            },
        )
    ok = [r["ok"] for r in results]
    assert ok == [True, True, True, True, False, False], json.dumps(results, indent=1)
    assert [r["alg"] for r in results[:4]] == [algorithm] * 4
    assert results[0]["kid"] == results[2]["kid"] != results[3]["kid"]
    assert results[2]["claims"]["sub"] == "alice"
    assert results[3]["claims"]["tenant"] == "acme"
    assert results[4]["code"] == "ERR_JWKS_NO_MATCHING_KEY"
    assert results[5]["code"] == "ERR_JWT_CLAIM_VALIDATION_FAILED"


@pytest.mark.parametrize("algorithm", sorted(HMAC_ALGORITHMS))
def test_jose_verifies_hmac_tokens_through_a_secret_rotation(algorithm: str) -> None:
    # Random-looking (a repeated pattern is refused as weak): 64 bytes cover HS512.
    old_secret = "Xq7mL2vR9kTz4pWc8nYb3hJd6sFg1aQe5uKo0iMy7tVx2rBn9wCl4zHj8fDs3gPa"
    new_secret = "Gt5hN8qW2eRy7uIo4pAs1dFk9lZx6cVb3nMj0kLq8wEr5tYu2iOp7aSd4fGh1jKz"
    old = _token(_engine(algorithm, secret=old_secret), "alice")
    rotated = _engine(algorithm, secret=new_secret, previous_secrets=old_secret)
    new = _token(rotated, "bob")
    results = run_node(
        "jose_verify.mjs",
        {
            "cases": [
                _case(old, algorithm, secret=old_secret),
                _case(new, algorithm, secret=new_secret),
                _case(old, algorithm, secret=new_secret),
            ]
        },
    )
    assert [r["ok"] for r in results] == [True, True, False], results
    assert results[2]["code"] == "ERR_JWS_SIGNATURE_VERIFICATION_FAILED"


def test_jose_refuses_ed448_which_embedgate_therefore_refuses_to_sign_with() -> None:
    key = ed448.Ed448PrivateKey.generate()
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "iat": now, "exp": now + 60}
    token = jwt.encode({**claims, "jti": "j"}, key, algorithm="EdDSA", headers={"kid": "ed448"})
    jwk = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(key.public_key()))
    jwks = {"keys": [{**jwk, "kid": "ed448", "alg": "EdDSA", "use": "sig"}]}
    (result,) = run_node("jose_verify.mjs", {"cases": [_case(token, "EdDSA", jwks=jwks)]})
    assert result["ok"] is False
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(KeyConfigurationError, match="Ed25519 only"):
        Engine.from_settings(environ={}, private_key=pem)
