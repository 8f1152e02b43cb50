"""The real ``embedgate`` console script, run as a subprocess with a controlled environment."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from tests.conftest import TEST_SECRET
from tests.core.material import private_pem

SCRIPT = Path(sys.executable).with_name("embedgate")


def run(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the console script with only PATH plus ``env``: no EMBEDGATE_* leaks in."""
    environ = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", **(env or {})}
    return subprocess.run(
        [str(SCRIPT), *args], env=environ, input=stdin, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip


def test_the_console_script_is_installed() -> None:
    assert SCRIPT.is_file(), f"{SCRIPT} missing: pip install -e . first"


# -- keygen --------------------------------------------------------------------------------


@pytest.mark.parametrize(("algorithm", "size"), [("HS256", 32), ("HS384", 48), ("HS512", 64)])
def test_keygen_makes_a_usable_hmac_secret(algorithm: str, size: int) -> None:
    made = run("keygen", "--algorithm", algorithm)
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert len(secret.encode()) >= size
    env = {"EMBEDGATE_SECRET": secret, "EMBEDGATE_ALGORITHM": algorithm, "EMBEDGATE_AUDIENCE": "x"}
    minted = run("mint", "--sub", "alice", env=env)
    assert minted.returncode == 0, minted.stderr
    assert "InsecureKeyLength" not in minted.stderr
    claims = jwt.decode(minted.stdout.strip(), secret, algorithms=[algorithm], audience="x")
    assert claims["sub"] == "alice"
    assert run("keygen", "--algorithm", algorithm).stdout.strip() != secret  # random


@pytest.mark.parametrize(
    ("algorithm", "key_type"),
    [
        ("ES256", ec.EllipticCurvePrivateKey),
        ("EdDSA", ed25519.Ed25519PrivateKey),
        ("RS256", rsa.RSAPrivateKey),
    ],
)
def test_keygen_prints_a_pem_pair(algorithm: str, key_type: type) -> None:
    made = run("keygen", "-a", algorithm)
    assert made.returncode == 0, made.stderr
    private_text, _, public_text = made.stdout.partition("-----END PRIVATE KEY-----\n")
    private = serialization.load_pem_private_key(
        (private_text + "-----END PRIVATE KEY-----\n").encode(), None
    )
    public = serialization.load_pem_public_key(public_text.encode())
    assert isinstance(private, key_type)
    assert public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if isinstance(private, rsa.RSAPrivateKey):
        assert private.key_size >= 2048
    if isinstance(private, ec.EllipticCurvePrivateKey):
        assert private.curve.name == "secp256r1"


def test_keygen_out_writes_a_0600_private_key_and_a_pub_file(tmp_path: Path) -> None:
    out = tmp_path / "signing.pem"
    out.write_text("an older, world-readable file\n")
    out.chmod(0o644)
    made = run("keygen", "-a", "ES256", "--out", str(out))
    assert made.returncode == 0, made.stderr
    assert made.stdout == ""  # the key goes to the file only
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert "kid" in made.stderr
    private = serialization.load_pem_private_key(out.read_bytes(), None)
    public = serialization.load_pem_public_key((tmp_path / "signing.pem.pub").read_bytes())
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    # The written key is what `mint` and `jwks` use.
    env = {"EMBEDGATE_PRIVATE_KEY_FILE": str(out)}
    jwks = json.loads(run("jwks", env=env).stdout)
    assert [k["alg"] for k in jwks["keys"]] == ["ES256"]


def test_keygen_out_for_a_secret(tmp_path: Path) -> None:
    out = tmp_path / "secret.txt"
    made = run("keygen", "--out", str(out))
    assert made.returncode == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert made.stdout == ""
    assert len(out.read_text().strip()) >= 43
    assert out.read_text().strip() not in made.stderr


# -- mint ----------------------------------------------------------------------------------


def test_mint_prints_only_a_token_that_verifies() -> None:
    env = {"EMBEDGATE_SECRET": TEST_SECRET, "EMBEDGATE_AUDIENCE": "x"}
    minted = run(
        "mint", "--sub", "alice", "--attr", "region=EU", "--attr", "level=3", "--attr", "beta=true",
        "--role", "viewer", "--tenant", "acme", "--ttl", "120", env=env,
    )  # fmt: skip
    assert minted.returncode == 0, minted.stderr
    lines = minted.stdout.splitlines()
    assert len(lines) == 1
    assert lines[0].count(".") == 2
    claims = jwt.decode(lines[0], TEST_SECRET, algorithms=["HS256"], audience="x")
    assert claims["sub"] == "alice"
    assert isinstance(claims["iat"], int)
    assert abs(claims["iat"] - time.time()) < 30
    assert claims["exp"] - claims["iat"] == 120
    assert isinstance(claims["jti"], str)
    assert claims["jti"]
    assert claims["attributes"] == {"region": "EU", "level": 3, "beta": True}
    assert claims["roles"] == ["viewer"]
    assert claims["tenant"] == "acme"
    assert "region" not in claims


def test_mint_with_an_asymmetric_key_verifies_with_the_public_key(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(private_pem("Ed25519"))
    minted = run("mint", "--sub", "bob", env={"EMBEDGATE_PRIVATE_KEY_FILE": str(path)})
    assert minted.returncode == 0, minted.stderr
    public = serialization.load_pem_private_key(private_pem("Ed25519"), None).public_key()
    claims = jwt.decode(minted.stdout.strip(), public, algorithms=["EdDSA"], audience="embedgate")
    assert claims["sub"] == "bob"


@pytest.mark.parametrize("env_name", ["production", "prod", "live"])
def test_mint_refuses_production(env_name: str) -> None:
    minted = run(
        "mint", "--sub", "alice", env={"EMBEDGATE_SECRET": TEST_SECRET, "EMBEDGATE_ENV": env_name}
    )
    assert minted.returncode == 1
    assert minted.stdout == ""
    assert "EMBEDGATE_ENV" in minted.stderr
    assert "refuses to run in production" in minted.stderr


def test_mint_refuses_a_16_byte_secret_naming_the_setting() -> None:
    minted = run("mint", "--sub", "alice", env={"EMBEDGATE_SECRET": "0123456789abcdef"})
    assert minted.returncode == 1
    assert minted.stdout == ""
    assert "EMBEDGATE_SECRET" in minted.stderr
    assert "0123456789abcdef" not in minted.stderr
    assert "Traceback" not in minted.stderr


def test_mint_without_any_key_explains_what_to_set() -> None:
    minted = run("mint", "--sub", "alice")
    assert minted.returncode == 1
    assert "EMBEDGATE_SECRET" in minted.stderr
    assert "embedgate keygen" in minted.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("frobnicate",),
        ("mint",),  # --sub is required
        ("mint", "--sub", "alice", "--attr", "no-equals-sign"),
        ("mint", "--sub", "alice", "--ttl", "soon"),
        ("keygen", "--algorithm", "none"),
        ("keygen", "--algorithm", "HS1"),
    ],
)
def test_usage_errors_exit_2(args: tuple[str, ...]) -> None:
    result = run(*args, env={"EMBEDGATE_SECRET": TEST_SECRET})
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert "usage:" in result.stderr


# -- inspect and jwks ----------------------------------------------------------------------


def _mint(env: dict[str, str]) -> str:
    minted = run("mint", "--sub", "alice", "--attr", "region=EU", env=env)
    assert minted.returncode == 0, minted.stderr
    return minted.stdout.strip()


def test_inspect_shows_header_claims_expiry_and_verifies() -> None:
    env = {"EMBEDGATE_SECRET": TEST_SECRET}
    token = _mint(env)
    shown = run("inspect", token, env=env)
    assert shown.returncode == 0, shown.stderr
    assert '"alg": "HS256"' in shown.stdout
    assert '"kid":' in shown.stdout
    assert '"sub": "alice"' in shown.stdout
    assert '"region": "EU"' in shown.stdout
    assert "exp: " in shown.stdout
    assert " UTC, in " in shown.stdout
    assert "signature: valid" in shown.stdout
    piped = run("inspect", "-", env=env, stdin=token + "\n")
    assert "signature: valid" in piped.stdout


def test_inspect_reports_a_token_from_another_key() -> None:
    token = _mint({"EMBEDGATE_SECRET": TEST_SECRET})
    other = {"EMBEDGATE_SECRET": "a-completely-different-secret-0123456789"}
    shown = run("inspect", token, env=other)
    assert shown.returncode == 1
    assert '"sub": "alice"' in shown.stdout  # still shows what it carries
    assert "signature: INVALID" in shown.stdout
    assert "unknown key id" in shown.stdout


def test_inspect_separates_a_valid_signature_from_a_wrong_audience() -> None:
    token = _mint({"EMBEDGATE_SECRET": TEST_SECRET, "EMBEDGATE_AUDIENCE": "superset"})
    shown = run("inspect", token, env={"EMBEDGATE_SECRET": TEST_SECRET, "EMBEDGATE_AUDIENCE": "x"})
    assert shown.returncode == 1
    assert "signature: valid" in shown.stdout
    assert "INVALID" not in shown.stdout
    assert "claims: REJECTED" in shown.stdout
    assert "audience" in shown.stdout.lower()


def test_no_arguments_prints_help() -> None:
    shown = run()
    assert shown.returncode == 0, shown.stderr
    assert "usage: embedgate" in shown.stdout
    for command in ("keygen", "mint", "inspect", "jwks", "demo"):
        assert command in shown.stdout


def test_version() -> None:
    from embedgate import __version__

    shown = run("--version")
    assert shown.returncode == 0
    assert shown.stdout.strip() == f"embedgate {__version__}"


def test_mint_help_names_the_settings_it_reads() -> None:
    shown = run("mint", "--help")
    assert shown.returncode == 0
    for name in (
        "EMBEDGATE_SECRET",
        "EMBEDGATE_PRIVATE_KEY",
        "EMBEDGATE_AUDIENCE",
        "EMBEDGATE_ISSUER",
        "EMBEDGATE_TTL",
        "EMBEDGATE_PROVIDER",
        "EMBEDGATE_ENV",
    ):
        assert name in shown.stdout


def test_inspect_without_a_key_says_not_verified() -> None:
    token = _mint({"EMBEDGATE_SECRET": TEST_SECRET})
    shown = run("inspect", token)
    assert shown.returncode == 0
    assert "signature: NOT verified" in shown.stdout


def test_inspect_refuses_what_is_not_a_jwt() -> None:
    shown = run("inspect", "definitely-not-a-token")
    assert shown.returncode == 1
    assert "not a JWT" in shown.stderr


def test_jwks_prints_public_keys_only(tmp_path: Path) -> None:
    current, nxt = tmp_path / "current.pem", tmp_path / "next.pem"
    current.write_bytes(private_pem("RSA-2048"))
    nxt.write_bytes(private_pem("P-256"))
    shown = run(
        "jwks",
        env={"EMBEDGATE_PRIVATE_KEY_FILE": str(current), "EMBEDGATE_NEXT_KEY_FILE": str(nxt)},
    )
    assert shown.returncode == 0, shown.stderr
    keys = json.loads(shown.stdout)["keys"]
    assert [(k["kty"], k["alg"]) for k in keys] == [("RSA", "RS256"), ("EC", "ES256")]
    for key in keys:
        assert {"d", "p", "q", "dp", "dq", "qi", "k"}.isdisjoint(key)
    assert "PRIVATE" not in shown.stdout


def test_jwks_with_an_hmac_secret_is_empty() -> None:
    shown = run("jwks", env={"EMBEDGATE_SECRET": TEST_SECRET})
    assert shown.returncode == 0
    assert json.loads(shown.stdout) == {"keys": []}
    assert "never published" in shown.stderr
    assert TEST_SECRET not in shown.stdout + shown.stderr
