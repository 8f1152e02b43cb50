"""Key rotation keeps each key's own algorithm, for every algorithm: the next key is
published with it before it signs, and tokens of the retired key still verify after the
promotion, under embedgate's own verify() and two independent JOSE implementations
(joserfc and jwcrypto) that read our published JWKS."""

from __future__ import annotations

import functools
import json
import secrets
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from joserfc import jwt as joserfc_jwt
from joserfc.jwk import KeySet as JoseKeySet
from jwcrypto import jwk as jwcrypto_jwk
from jwcrypto import jwt as jwcrypto_jwt

from embedgate import (
    Config,
    ConfigurationError,
    IssueRequest,
    KeyConfigurationError,
    KeySet,
    LocalSigner,
    Principal,
    verify,
)
from embedgate.keys import ASYMMETRIC_ALGORITHMS, HMAC_ALGORITHMS, keyset_from_config
from tests.core.conftest import AUDIENCE, ISSUER

NO_ENV: dict[str, str] = {}
ASYMMETRIC = sorted(ASYMMETRIC_ALGORITHMS)

# joserfc flags "EdDSA" as superseded by the fully-specified "Ed25519" (RFC 9864).
pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated:Warning")


@functools.cache
def _pem(algorithm: str, which: str) -> bytes:
    """A distinct PKCS#8 key per (algorithm family, which) for the whole run."""
    key: Any
    if algorithm.startswith("ES"):
        curve = {"ES256": ec.SECP256R1, "ES384": ec.SECP384R1, "ES512": ec.SECP521R1}[algorithm]
        key = ec.generate_private_key(curve())
    elif algorithm == "EdDSA":
        key = ed25519.Ed25519PrivateKey.generate()
    elif algorithm == "Ed448":
        key = ed448.Ed448PrivateKey.generate()
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _family(algorithm: str) -> str:
    return "RSA" if algorithm[:2] in ("RS", "PS") else algorithm


def _files(tmp_path: Path, algorithm: str, *names: str) -> list[str]:
    paths = []
    for name in names:
        path = tmp_path / f"{algorithm}-{name}.pem"
        path.write_bytes(_pem(_family(algorithm), name))
        paths.append(str(path))
    return paths


def _mint(keys: KeySet, subject: str) -> str:
    signer = LocalSigner(keys, issuer=ISSUER, audience=AUDIENCE)
    return signer.issue(IssueRequest(Principal(subject=subject), time.time(), 300)).token


def _independent(token: str, jwks: dict[str, Any], algorithm: str) -> None:
    """Both independent verifiers accept ``token`` with our JWKS, pinned to ``algorithm``."""
    decoded = joserfc_jwt.decode(
        token,
        JoseKeySet.import_key_set(jwks),  # type: ignore[arg-type]
        algorithms=[algorithm],
    )
    assert decoded.claims["aud"] == AUDIENCE
    verified = jwcrypto_jwt.JWT(
        jwt=token,
        key=jwcrypto_jwk.JWKSet.from_json(json.dumps(jwks)),
        algs=[algorithm],
        check_claims={"iss": ISSUER, "aud": AUDIENCE, "exp": None},
    )
    assert json.loads(verified.claims)["iss"] == ISSUER


@pytest.mark.parametrize("algorithm", ASYMMETRIC)
def test_rotation_publishes_and_verifies_every_key_with_its_algorithm(
    tmp_path: Path, algorithm: str
) -> None:
    first, second, third = _files(tmp_path, algorithm, "first", "second", "third")
    # Step 1: the next key is published (with the key set's algorithm) before it signs.
    before = keyset_from_config(
        Config.load(
            environ=NO_ENV,
            algorithm=algorithm,
            private_key_file=first,
            next_key_file=second,
        )
    )
    assert [k.algorithm for k in before.keys] == [algorithm, algorithm]
    published = before.jwks()
    assert [k["alg"] for k in published["keys"]] == [algorithm, algorithm]
    old_token = _mint(before, "alice")
    _independent(old_token, published, algorithm)

    # Step 2: promoted. The first key is retired and still verifies its tokens; a third
    # key is announced.
    after = keyset_from_config(
        Config.load(
            environ=NO_ENV,
            algorithm=algorithm,
            previous_key_files=first,
            private_key_file=second,
            next_key_file=third,
        )
    )
    assert [(k.algorithm, k.active) for k in after.keys] == [
        (algorithm, False),
        (algorithm, True),
        (algorithm, False),
    ]
    jwks = after.jwks()
    assert [k["alg"] for k in jwks["keys"]] == [algorithm] * 3
    new_token = _mint(after, "bob")
    for token, subject in ((old_token, "alice"), (new_token, "bob")):
        claims = verify(token, after, audience=AUDIENCE, issuer=ISSUER)
        assert claims["sub"] == subject
        _independent(token, jwks, algorithm)
    # The next key was announced with the same kid it signs under once promoted.
    assert before.keys[1].kid == after.signing_key.kid


@pytest.mark.parametrize("algorithm", sorted(HMAC_ALGORITHMS))
def test_hmac_rotation_keeps_verifying_the_previous_secret(algorithm: str) -> None:
    old = "old-vN3kQ8zX1mR6tL0wB5yC9pD2fG7hJ4sA-uE_oI.nK8mV3bX6zQ1rW9tY4eU7iO0aS5dF2gH"
    new = "new-Lq7Rw2Xz9Kp4Vn8Mb3Jc6Hd1Gf5Ts0Ya-Ue_Io.Pk3Nm8Bv5Cx2Zl7Qw4Er9Ty6Ui1Op0As"
    before = keyset_from_config(Config.load(environ=NO_ENV, algorithm=algorithm, secret=old))
    token = _mint(before, "alice")
    after = keyset_from_config(
        Config.load(environ=NO_ENV, algorithm=algorithm, secret=new, previous_secrets=old)
    )
    assert [k.algorithm for k in after.keys] == [algorithm, algorithm]
    assert verify(token, after, audience=AUDIENCE, issuer=ISSUER)["sub"] == "alice"


def test_rotation_to_another_kind_of_key_keeps_the_old_keys_natural_algorithm(
    tmp_path: Path,
) -> None:
    (old,) = _files(tmp_path, "ES384", "old")
    (current,) = _files(tmp_path, "PS512", "current")
    (nxt,) = _files(tmp_path, "EdDSA", "next")
    keys = keyset_from_config(
        Config.load(
            environ=NO_ENV,
            algorithm="PS512",
            previous_key_files=old,
            private_key_file=current,
            next_key_file=nxt,
        )
    )
    assert [k["alg"] for k in keys.jwks()["keys"]] == ["ES384", "PS512", "EdDSA"]


def test_an_explicit_algorithm_per_rotation_key(tmp_path: Path) -> None:
    # Moving from RS256 to PS256 on RSA keys: the retired key stays RS256.
    old, current, nxt = _files(tmp_path, "RS256", "a", "b", "c")
    before = keyset_from_config(
        Config.load(environ=NO_ENV, algorithm="RS256", private_key_file=old)
    )
    token = _mint(before, "alice")
    after = keyset_from_config(
        Config.load(
            {
                "EMBEDGATE_ALGORITHM": "PS256",
                "EMBEDGATE_PREVIOUS_KEY_FILES": old,
                "EMBEDGATE_PREVIOUS_KEY_ALGORITHMS": "RS256",
                "EMBEDGATE_PRIVATE_KEY_FILE": current,
                "EMBEDGATE_NEXT_KEY_FILE": nxt,
                "EMBEDGATE_NEXT_KEY_ALGORITHM": "RS384",
            },
            environ=NO_ENV,
        )
    )
    assert [k["alg"] for k in after.jwks()["keys"]] == ["RS256", "PS256", "RS384"]
    assert verify(token, after, audience=AUDIENCE, issuer=ISSUER)["sub"] == "alice"
    _independent(token, after.jwks(), "RS256")


def test_rotation_algorithms_are_checked(tmp_path: Path) -> None:
    old, current = _files(tmp_path, "RS256", "a", "b")
    with pytest.raises(ConfigurationError) as caught:
        Config.load(
            environ=NO_ENV,
            previous_key_files=old,
            previous_key_algorithms="RS256,PS256",
            private_key_file=current,
        )
    assert caught.value.setting == "EMBEDGATE_PREVIOUS_KEY_ALGORITHMS"
    with pytest.raises(ConfigurationError) as caught:
        keyset_from_config(
            Config.load(
                environ=NO_ENV,
                private_key_file=current,
                next_key_file=old,
                next_key_algorithm="HS256",
            )
        )
    assert caught.value.setting == "EMBEDGATE_NEXT_KEY_ALGORITHM"
    (ec_key,) = _files(tmp_path, "ES256", "c")
    with pytest.raises(KeyConfigurationError) as caught:
        keyset_from_config(
            Config.load(
                environ=NO_ENV,
                private_key_file=current,
                next_key_file=ec_key,
                next_key_algorithm="PS256",
            )
        )
    assert caught.value.setting == "EMBEDGATE_NEXT_KEY_FILE"
    assert "needs an RSA key" in str(caught.value)


@pytest.mark.parametrize("setting", ["private_key_file", "next_key_file", "previous_key_files"])
def test_ed448_keys_are_refused_saying_verifiers_support_ed25519_only(
    tmp_path: Path, setting: str
) -> None:
    (ed448_file,) = _files(tmp_path, "Ed448", "x")
    (ed25519_file,) = _files(tmp_path, "EdDSA", "y")
    files = {"private_key_file": ed25519_file, setting: ed448_file}
    with pytest.raises(KeyConfigurationError) as caught:
        keyset_from_config(Config.load(environ=NO_ENV, **files))
    assert caught.value.setting == "EMBEDGATE_" + setting.upper()
    message = str(caught.value)
    assert "Ed25519 only" in message
    assert "npm jose" in message


def test_a_retired_hmac_secret_keeps_its_own_algorithm() -> None:
    # HS256 -> HS512: the old 32-byte secret is too short for HS512, and its tokens are HS256.
    old = secrets.token_hex(16)  # 32 bytes
    new = secrets.token_hex(32)
    token = _mint(keyset_from_config(Config.load(environ=NO_ENV, secret=old)), "alice")
    rotated = keyset_from_config(
        Config.load(
            {
                "EMBEDGATE_ALGORITHM": "HS512",
                "EMBEDGATE_SECRET": new,
                "EMBEDGATE_PREVIOUS_SECRETS": old,
                "EMBEDGATE_PREVIOUS_KEY_ALGORITHMS": "HS256",
            },
            environ=NO_ENV,
        )
    )
    assert [k.algorithm for k in rotated.keys] == ["HS256", "HS512"]
    assert verify(token, rotated, audience=AUDIENCE, issuer=ISSUER)["sub"] == "alice"
    with pytest.raises(ConfigurationError) as caught:
        keyset_from_config(
            Config.load(
                environ=NO_ENV, secret=new, previous_secrets=old, previous_key_algorithms="RS256"
            )
        )
    assert caught.value.setting == "EMBEDGATE_PREVIOUS_KEY_ALGORITHMS"
    with pytest.raises(ConfigurationError) as caught:
        Config.load(
            environ=NO_ENV, secret=new, previous_secrets=old, previous_key_algorithms="HS256,HS384"
        )
    assert caught.value.setting == "EMBEDGATE_PREVIOUS_KEY_ALGORITHMS"
