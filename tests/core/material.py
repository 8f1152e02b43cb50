"""Key material for the core tests: generated once per test run, never written to disk."""

from __future__ import annotations

import functools

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from embedgate.keys import PrivateKey

KINDS = ("P-256", "P-384", "P-521", "Ed25519", "Ed448", "RSA-2048", "RSA-1024")

# The natural algorithm of each kind of key, for tests parametrized over algorithms.
ALGORITHM_KEYS = {
    "ES256": "P-256",
    "ES384": "P-384",
    "ES512": "P-521",
    "EdDSA": "Ed25519",
    "RS256": "RSA-2048",
    "PS256": "RSA-2048",
}


@functools.cache
def private_key(kind: str) -> PrivateKey:
    """A fresh private key of ``kind`` (the same one for the whole run)."""
    if kind == "P-256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "P-384":
        return ec.generate_private_key(ec.SECP384R1())
    if kind == "P-521":
        return ec.generate_private_key(ec.SECP521R1())
    if kind == "Ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if kind == "Ed448":
        return ed448.Ed448PrivateKey.generate()
    if kind.startswith("RSA-"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(kind[4:]))
    raise ValueError(kind)


def private_pem(kind: str) -> bytes:
    """PKCS#8 PEM of :func:`private_key`."""
    return private_key(kind).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def traditional_pem(kind: str) -> bytes:
    """The same key in the traditional (PKCS#1 / SEC1) PEM format."""
    return private_key(kind).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def public_pem(kind: str) -> bytes:
    return (
        private_key(kind)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def ssh_public(kind: str) -> bytes:
    return (
        private_key(kind)
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    )


def encrypted_pem(kind: str, password: bytes = b"hunter2-hunter2") -> bytes:
    return private_key(kind).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password),
    )
