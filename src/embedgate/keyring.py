"""Building the key set a configuration describes."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from .config import Config, read_key_file
from .errors import ConfigurationError
from .keys import ASYMMETRIC_ALGORITHMS, HMAC_ALGORITHMS, KeySet, SigningKey
from .secret import Secret

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
