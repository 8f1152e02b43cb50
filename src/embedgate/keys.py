"""Signing keys, checked against their algorithm, and a key set with rotation and JWKS."""

from __future__ import annotations

import base64
import collections
import hashlib
import itertools
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from jwt.algorithms import get_default_algorithms

from .config import Config, read_key_file
from .errors import ConfigurationError, KeyConfigurationError
from .secret import Secret

HMAC_ALGORITHMS: Final = frozenset({"HS256", "HS384", "HS512"})
ASYMMETRIC_ALGORITHMS: Final = frozenset(
    {"ES256", "ES384", "ES512", "EdDSA", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512"}
)
SUPPORTED_ALGORITHMS: Final = HMAC_ALGORITHMS | ASYMMETRIC_ALGORITHMS
MIN_HMAC_BYTES: Final = 32
# RFC 7518 section 3.2: an HMAC key at least as long as the hash output.
HMAC_KEY_BYTES: Final = {"HS256": 32, "HS384": 48, "HS512": 64}
MIN_RSA_BITS: Final = 2048
_EC_CURVES: Final[dict[str, type[ec.EllipticCurve]]] = {
    "ES256": ec.SECP256R1,
    "ES384": ec.SECP384R1,
    "ES512": ec.SECP521R1,
}
_PUBLIC_MARKERS: Final = (b"-----BEGIN", b"ssh-rsa", b"ssh-ed25519", b"ecdsa-sha2-", b"ssh-dss")

PrivateKey = (
    ec.EllipticCurvePrivateKey
    | rsa.RSAPrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url) over the required public members."""
    required = {
        "RSA": ("e", "kty", "n"),
        "EC": ("crv", "kty", "x", "y"),
        "OKP": ("crv", "kty", "x"),
        "oct": ("k", "kty"),
    }[jwk["kty"]]
    members = {name: jwk[name] for name in required}
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":"))
    return _b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


def _load_private_key(algorithm: str, material: bytes, setting: str) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(material, password=None)
    except (ValueError, TypeError) as exc:
        if b"PUBLIC KEY" in material or material.startswith(b"ssh-"):
            raise KeyConfigurationError(
                setting, f"{algorithm} needs a private key to sign; got a public key"
            ) from None
        raise KeyConfigurationError(
            setting,
            f"{algorithm} needs an unencrypted PEM private key (PKCS#8 or "
            f"traditional); it could not be loaded ({type(exc).__name__})",
        ) from None
    if algorithm in _EC_CURVES:
        curve = _EC_CURVES[algorithm]
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, curve):
            raise KeyConfigurationError(
                setting, f"{algorithm} needs an EC key on curve {curve.name}, got {_describe(key)}"
            )
    elif algorithm == "EdDSA":
        if isinstance(key, ed448.Ed448PrivateKey):
            raise KeyConfigurationError(
                setting,
                "EdDSA needs an Ed25519 key, got an Ed448 key: common verifiers (npm jose "
                "among them) support Ed25519 only; make one with "
                "`embedgate keygen --algorithm EdDSA`",
            )
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise KeyConfigurationError(
                setting, f"EdDSA needs an Ed25519 key, got {_describe(key)}"
            )
    elif not isinstance(key, rsa.RSAPrivateKey):
        raise KeyConfigurationError(setting, f"{algorithm} needs an RSA key, got {_describe(key)}")
    elif key.key_size < MIN_RSA_BITS:
        raise KeyConfigurationError(
            setting,
            f"{algorithm} needs an RSA key of at least {MIN_RSA_BITS} bits, got {key.key_size}",
        )
    return key


def _describe(key: object) -> str:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return f"an EC key on {key.curve.name}"
    if isinstance(key, rsa.RSAPrivateKey):
        return f"an RSA key of {key.key_size} bits"
    return f"a {type(key).__name__.lstrip('_')}"


def _check_hmac_secret(algorithm: str, secret: bytes, setting: str) -> None:
    stripped = secret.strip()
    if any(stripped.startswith(marker) for marker in _PUBLIC_MARKERS):
        # CVE-2022-29217: a public key used as an HMAC secret lets anyone forge tokens.
        raise KeyConfigurationError(
            setting, f"{algorithm} needs a random secret, not a PEM or SSH key"
        )
    minimum = HMAC_KEY_BYTES.get(algorithm, MIN_HMAC_BYTES)
    if len(secret) < minimum:
        raise KeyConfigurationError(
            setting,
            f"{algorithm} needs a secret of at least {minimum} bytes, got {len(secret)}",
        )
    weakness = secret_weakness(secret)
    if weakness is not None:
        raise KeyConfigurationError(
            setting,
            f"the secret is too easy to guess ({weakness}); "
            "make a random one with `embedgate keygen`",
        )


MIN_DISTINCT_BYTES: Final = 10
MIN_ESTIMATED_BITS: Final = 96
MIN_DISTINCT_TRIGRAMS: Final = 0.6
MAX_SEQUENTIAL: Final = 0.8
MAX_KEYBOARD_WALK: Final = 0.7


def _keyboard_neighbours() -> frozenset[tuple[int, int]]:
    """Pairs of keys that touch on a staggered QWERTY keyboard, both ways round."""
    rows = ("1234567890", "qwertyuiop", "asdfghjkl;", "zxcvbnm,./")
    pairs: set[tuple[int, int]] = set()
    for r, row in enumerate(rows):
        for c, key in enumerate(row):
            for dr, dc in ((0, 1), (1, 0), (1, -1)):
                rr, cc = r + dr, c + dc
                if rr < len(rows) and 0 <= cc < len(rows[rr]):
                    other = rows[rr][cc]
                    pairs.add((ord(key), ord(other)))
                    pairs.add((ord(other), ord(key)))
    return frozenset(pairs)


_KEYBOARD: Final = _keyboard_neighbours()


def secret_weakness(secret: bytes) -> str | None:
    """Why ``secret`` looks chosen by a person rather than drawn at random, or None.

    Rules every 32-byte random secret passes (raw bytes, hex, base64): at least 10 distinct
    bytes; no repetition of a shorter unit (``"changeme" * 4``); an order-0 entropy
    estimate of at least 96 bits; at least 60 % distinct 3-byte substrings (repeated
    words); at most 80 % of neighbours one apart (``"abcdef..."``, ``"123456..."``); at
    most 70 % of neighbours touching on a keyboard (``"qwerty..."``, ``"1qaz2wsx..."``). The
    rules apply to the secret with its letters lowered as well (``"ChangeMeCHANGEME..."``).
    """
    secret = secret[:4096]  # longer secrets are judged by their start (bounded work)
    # Letter case is no disguise: "ChangeMeCHANGEME..." is judged as "changemechangeme...".
    return _weakness(secret) or _weakness(secret.lower()) or _keyboard_walk(secret.lower())


def _keyboard_walk(secret: bytes) -> str | None:
    n = len(secret)
    steps = sum(1 for pair in itertools.pairwise(secret) if pair in _KEYBOARD)
    if n > 1 and steps > MAX_KEYBOARD_WALK * (n - 1):
        return "a walk along the keyboard"
    return None


def _weakness(secret: bytes) -> str | None:
    n = len(secret)
    if len(set(secret)) < MIN_DISTINCT_BYTES:
        return "too few distinct characters"
    for period in range(1, n // 2 + 1):
        if secret[period:] == secret[:-period]:
            return "a repeated pattern"
    counts = collections.Counter(secret)
    bits = -sum(c * math.log2(c / n) for c in counts.values())
    if bits < MIN_ESTIMATED_BITS:
        return "too little entropy"
    trigrams = [secret[i : i + 3] for i in range(n - 2)]
    if len(set(trigrams)) < MIN_DISTINCT_TRIGRAMS * len(trigrams):
        return "repeated fragments"
    steps = sum(1 for a, b in itertools.pairwise(secret) if abs(a - b) == 1)
    if steps > MAX_SEQUENTIAL * (n - 1):
        return "a run of consecutive characters"
    return None


@dataclass(frozen=True, eq=False)
class SigningKey:
    """One key for one algorithm. Build with :meth:`hmac` or :meth:`private`.

    ``kid`` defaults to a thumbprint: RFC 7638 for asymmetric keys, a keyed digest for
    HMAC secrets. ``active=False`` publishes a key (JWKS, verification) without signing
    with it yet: the first step of a rotation.
    """

    algorithm: str
    kid: str
    _material: Secret | PrivateKey = field(repr=False)
    active: bool = True

    @classmethod
    def hmac(
        cls,
        secret: str | bytes | Secret,
        algorithm: str = "HS256",
        *,
        kid: str | None = None,
        active: bool = True,
        setting: str = "EMBEDGATE_SECRET",
    ) -> SigningKey:
        """An HMAC key; the secret must have at least 32 bytes and not look like a key."""
        if algorithm not in HMAC_ALGORITHMS:
            raise KeyConfigurationError(
                "EMBEDGATE_ALGORITHM",
                f"{algorithm!r} is not an HMAC "
                f"algorithm; expected one of {sorted(HMAC_ALGORITHMS)}",
            )
        wrapped = secret if isinstance(secret, Secret) else Secret(secret)
        raw = wrapped.reveal_bytes()
        _check_hmac_secret(algorithm, raw, setting)
        if kid is None:
            kid = _b64url(hashlib.sha256(b"embedgate-kid:" + raw).digest())[:16]
        return cls(algorithm, kid, wrapped, active)

    @classmethod
    def private(
        cls,
        pem: str | bytes | Secret,
        algorithm: str,
        *,
        kid: str | None = None,
        active: bool = True,
        setting: str = "EMBEDGATE_PRIVATE_KEY",
    ) -> SigningKey:
        """An asymmetric key from an unencrypted PEM private key that fits ``algorithm``."""
        if algorithm == "none" or algorithm not in ASYMMETRIC_ALGORITHMS:
            raise KeyConfigurationError(
                "EMBEDGATE_ALGORITHM",
                f"{algorithm!r} is not a "
                "supported asymmetric algorithm; expected one of "
                f"{sorted(ASYMMETRIC_ALGORITHMS)}",
            )
        raw = (
            pem.reveal_bytes()
            if isinstance(pem, Secret)
            else (pem.encode("utf-8") if isinstance(pem, str) else pem)
        )
        key = _load_private_key(algorithm, raw, setting)
        if kid is None:
            kid = jwk_thumbprint(_public_jwk(algorithm, key))
        return cls(algorithm, kid, key, active)

    @property
    def is_symmetric(self) -> bool:
        return self.algorithm in HMAC_ALGORITHMS

    def signing_material(self) -> Any:
        """What PyJWT's ``encode`` takes as the key."""
        material = self._material
        return material.reveal_bytes() if isinstance(material, Secret) else material

    def verification_material(self) -> Any:
        """What PyJWT's ``decode`` takes: the secret, or the public key."""
        material = self._material
        if isinstance(material, Secret):
            return material.reveal_bytes()
        return material.public_key()

    def public_jwk(self) -> dict[str, Any] | None:
        """The public JWK (with ``kid``, ``alg``, ``use``), or None for HMAC keys."""
        if isinstance(self._material, Secret):
            return None
        jwk = _public_jwk(self.algorithm, self._material)
        jwk.update({"kid": self.kid, "alg": self.algorithm, "use": "sig"})
        return jwk

    def public_pem(self) -> bytes | None:
        if isinstance(self._material, Secret):
            return None
        return self._material.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def __repr__(self) -> str:
        return f"SigningKey(algorithm={self.algorithm!r}, kid={self.kid!r}, active={self.active})"


def _public_jwk(algorithm: str, key: PrivateKey) -> dict[str, Any]:
    jwk_json = get_default_algorithms()[algorithm].to_jwk(key.public_key())
    jwk: dict[str, Any] = json.loads(jwk_json)
    # Only public members ever leave this function.
    for private_member in ("d", "p", "q", "dp", "dq", "qi", "oth", "k"):
        jwk.pop(private_member, None)
    return jwk


class KeySet:
    """Several keys: sign with the newest active one, verify and publish all of them.

    Order matters: the last active key in the sequence signs. Rotation: add the new key
    with ``active=False`` (published), later mark it active, and keep the old key for at
    least the maximum token lifetime plus leeway before removing it.
    """

    def __init__(self, keys: Iterable[SigningKey]) -> None:
        self._keys: tuple[SigningKey, ...] = tuple(keys)
        if not self._keys:
            raise KeyConfigurationError(
                "EMBEDGATE_SECRET",
                "no signing key configured; set EMBEDGATE_SECRET or EMBEDGATE_PRIVATE_KEY",
            )
        kids = [key.kid for key in self._keys]
        if len(set(kids)) != len(kids):
            raise KeyConfigurationError("EMBEDGATE_KEYS", "two keys share one kid")
        active = [key for key in self._keys if key.active]
        if not active:
            raise KeyConfigurationError("EMBEDGATE_KEYS", "no active key to sign with")
        self._signing = active[-1]
        self._by_kid = {key.kid: key for key in self._keys}

    @property
    def signing_key(self) -> SigningKey:
        return self._signing

    @property
    def keys(self) -> Sequence[SigningKey]:
        return self._keys

    @property
    def algorithms(self) -> list[str]:
        return sorted({key.algorithm for key in self._keys})

    def get(self, kid: str) -> SigningKey | None:
        return self._by_kid.get(kid)

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """The public JWK Set (RFC 7517); HMAC keys are never published."""
        return {"keys": [jwk for key in self._keys if (jwk := key.public_jwk()) is not None]}

    @property
    def has_public_keys(self) -> bool:
        return any(not key.is_symmetric for key in self._keys)

    def __repr__(self) -> str:
        return f"KeySet({list(self._keys)!r}, signing={self._signing.kid!r})"


def generate_private_pem(algorithm: str) -> bytes:
    """A new PKCS#8 PEM private key fitting ``algorithm`` (for ``embedgate keygen``)."""
    key: PrivateKey
    if algorithm in _EC_CURVES:
        curve: Any = _EC_CURVES[algorithm]
        key = ec.generate_private_key(curve())
    elif algorithm == "EdDSA":
        key = ed25519.Ed25519PrivateKey.generate()
    elif algorithm in ASYMMETRIC_ALGORITHMS:
        key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    else:
        raise KeyConfigurationError(
            "algorithm",
            f"{algorithm!r} has no key pair; expected one of {sorted(ASYMMETRIC_ALGORITHMS)}",
        )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


_CURVE_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}


def infer_algorithm(pem: Secret) -> str:
    """The natural algorithm for a PEM private key (ES256 for P-256, EdDSA, RS256...)."""
    try:
        key = serialization.load_pem_private_key(pem.reveal_bytes(), password=None)
    except (ValueError, TypeError):
        raise ConfigurationError(
            "EMBEDGATE_PRIVATE_KEY", "expected an unencrypted PEM private key"
        ) from None
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name in _CURVE_ALGORITHMS:
        return _CURVE_ALGORITHMS[key.curve.name]
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
        return "EdDSA"
    if isinstance(key, rsa.RSAPrivateKey):
        return "RS256"
    raise ConfigurationError("EMBEDGATE_PRIVATE_KEY", f"unsupported key type {type(key).__name__}")


def keyset_from_config(config: Config) -> KeySet:
    """The signing keys of ``config``: the current key plus retired and next keys.

    Retired keys come first and the next key last, both inactive: they are published and
    verifiable, and the current key signs.
    """
    pem = config.private_key_pem()
    if pem is not None and config.secret is not None:
        raise ConfigurationError(
            "EMBEDGATE_SECRET", "set either EMBEDGATE_SECRET (HMAC) or a private key, not both"
        )
    if pem is None and config.secret is None:
        raise ConfigurationError(
            "EMBEDGATE_SECRET",
            "no signing key configured: set "
            "EMBEDGATE_SECRET (32+ random bytes; `embedgate keygen` makes "
            "one) or EMBEDGATE_PRIVATE_KEY(_FILE)",
        )
    keys: list[SigningKey] = []
    if config.secret is not None:
        algorithm = config.algorithm or "HS256"
        if algorithm not in HMAC_ALGORITHMS:
            raise ConfigurationError(
                "EMBEDGATE_ALGORITHM",
                f"{algorithm} needs EMBEDGATE_PRIVATE_KEY, not EMBEDGATE_SECRET (an HMAC secret)",
            )
        for index, old in enumerate(config.previous_secrets):
            # An HS256 secret retired by a move to HS512 keeps verifying HS256 tokens.
            own = config.previous_key_algorithms[index] if config.previous_key_algorithms else None
            if own is not None and own not in HMAC_ALGORITHMS:
                raise ConfigurationError(
                    "EMBEDGATE_PREVIOUS_KEY_ALGORITHMS",
                    f"{own!r} is not an HMAC algorithm; a retired secret needs one of "
                    f"{', '.join(sorted(HMAC_ALGORITHMS))}",
                )
            keys.append(
                SigningKey.hmac(
                    old, own or algorithm, active=False, setting="EMBEDGATE_PREVIOUS_SECRETS"
                )
            )
        keys.append(SigningKey.hmac(config.secret, algorithm, kid=config.key_id))
        return KeySet(keys)
    assert pem is not None
    algorithm = config.algorithm or infer_algorithm(pem)
    if algorithm in HMAC_ALGORITHMS:
        raise ConfigurationError(
            "EMBEDGATE_ALGORITHM",
            f"{algorithm} is an HMAC algorithm and needs EMBEDGATE_SECRET, not a private key",
        )
    for index, path in enumerate(config.previous_key_files):
        old = read_key_file(path, "EMBEDGATE_PREVIOUS_KEY_FILES")
        explicit = config.previous_key_algorithms[index] if config.previous_key_algorithms else None
        keys.append(
            _rotation_key(
                old,
                explicit,
                algorithm,
                setting="EMBEDGATE_PREVIOUS_KEY_FILES",
                algorithm_setting="EMBEDGATE_PREVIOUS_KEY_ALGORITHMS",
            )
        )
    setting = "EMBEDGATE_PRIVATE_KEY" if config.private_key else "EMBEDGATE_PRIVATE_KEY_FILE"
    keys.append(SigningKey.private(pem, algorithm, kid=config.key_id, setting=setting))
    if config.next_key_file is not None:
        nxt = read_key_file(config.next_key_file, "EMBEDGATE_NEXT_KEY_FILE")
        keys.append(
            _rotation_key(
                nxt,
                config.next_key_algorithm,
                algorithm,
                setting="EMBEDGATE_NEXT_KEY_FILE",
                algorithm_setting="EMBEDGATE_NEXT_KEY_ALGORITHM",
            )
        )
    return KeySet(keys)


def rotation_algorithm(pem: Secret, current: str) -> str:
    """The algorithm of a previous or next key: the current key's algorithm when the key
    fits it (a PS384 key set rotates PS384 keys), else the key's natural algorithm (a
    rotation to another kind of key, e.g. from P-256 to Ed25519)."""
    natural = infer_algorithm(pem)
    if current in ASYMMETRIC_ALGORITHMS and _family(current) == _family(natural):
        return current
    return natural


def _family(algorithm: str) -> str:
    # One key type per family; EC curves are told apart by the algorithm itself.
    return "RSA" if algorithm[:2] in ("RS", "PS") else algorithm


def _rotation_key(
    pem: Secret, explicit: str | None, current: str, *, setting: str, algorithm_setting: str
) -> SigningKey:
    if explicit is not None and explicit not in ASYMMETRIC_ALGORITHMS:
        raise ConfigurationError(
            algorithm_setting,
            f"{explicit!r} is not an asymmetric algorithm; expected one of "
            f"{', '.join(sorted(ASYMMETRIC_ALGORITHMS))}",
        )
    algorithm = explicit or rotation_algorithm(pem, current)
    return SigningKey.private(pem, algorithm, active=False, setting=setting)
