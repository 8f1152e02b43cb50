"""Core section: what a per-session cache hit costs next to minting a token afresh, and
how much memory one cached session keeps."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from bench.table import Row, Target
from bench.timing import per_call, per_each, retained_bytes
from embedgate import (
    IssueRequest,
    KeySet,
    LocalSigner,
    MemoryCache,
    Principal,
    SigningKey,
    TokenService,
)

SECTION = "core"
SESSIONS = 10_000
HIT_TARGETS: dict[str, float | None] = {"HS256": 10.0, "ES256": 100.0, "RS256": None}
MEMORY_TARGET = 2048.0

_REGIONS = ("EU", "US", "APAC", "LATAM")
_COUNTRIES = (("FR", "DE"), ("US",), ("JP", "SG", "AU"), ("BR", "MX"))


def realistic_principal(n: int) -> Principal:
    """A user as a B2B app would send one: identity, tenant, roles, row-level attributes."""
    region = n % len(_REGIONS)
    return Principal(
        subject=f"user-{n:07d}",
        email=f"user{n}@customer-{n % 97}.example.com",
        name=f"User Number {n}",
        tenant=f"customer-{n % 97}",
        roles=("viewer", "analyst") if n % 3 else ("viewer",),
        groups=(f"team-{n % 13}",),
        permissions={"dashboard:sales": ("view", "export"), "dashboard:ops": ("view",)},
        attributes={
            "region": _REGIONS[region],
            "countries": _COUNTRIES[region],
            "cost_center": f"CC-{n % 500:04d}",
            "level": n % 5,
        },
    )


def _pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _signers() -> dict[str, LocalSigner]:
    keys = {
        "HS256": SigningKey.hmac("bench-secret-7Qm2vX9kL4pR8tZ1wB6nC3yD5fG0hJ"),
        "ES256": SigningKey.private(_pem(ec.generate_private_key(ec.SECP256R1())), "ES256"),
        "RS256": SigningKey.private(
            _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)), "RS256"
        ),
    }
    return {
        name: LocalSigner(KeySet([key]), issuer="https://app.example.com", audience="analytics")
        for name, key in keys.items()
    }


def _lookups(signer: LocalSigner, principal: Principal) -> dict[str, float]:
    """Seconds per TokenService.get_token: warm key, warm key with a rebuilt Principal, and
    a cold key (a new session, so a mint plus the cache's bookkeeping)."""
    service = TokenService(signer, cache=MemoryCache(maxsize=SESSIONS))
    service.get_token(principal, "session-warm")
    warm = per_call(partial(service.get_token, principal, "session-warm"), number=20_000)

    def rebuilt() -> list[Callable[[], object]]:
        # Each request builds its own Principal from the user: same claims, a new object
        # whose fingerprint is computed afresh (building it is the app's cost, not timed).
        fresh = [Principal.from_mapping(principal.to_dict()) for _ in range(5_000)]
        return [partial(service.get_token, p, "session-warm") for p in fresh]

    runs = iter(range(1_000))

    def cold() -> list[Callable[[], object]]:
        cold_service = TokenService(signer, cache=MemoryCache(maxsize=SESSIONS))
        run = next(runs)
        return [partial(cold_service.get_token, principal, f"cold-{run}-{i}") for i in range(2_000)]

    return {"warm": warm, "rebuilt": per_each(rebuilt), "cold": per_each(cold, repeat=3)}


def _mint(signer: LocalSigner, principal: Principal, number: int) -> float:
    def issue() -> object:
        return signer.issue(IssueRequest(principal=principal, now=time.time(), ttl=300))

    return per_call(issue, number=number)


def _memory_row(signer: LocalSigner, algorithm: str) -> Row:
    service = TokenService(signer, cache=MemoryCache(maxsize=SESSIONS))

    def fill() -> int:
        total = 0
        for n in range(SESSIONS):
            # The principal is dropped after the call: only what the cache keeps counts.
            total += len(service.get_token(realistic_principal(n), f"session-{n:07d}").token)
        return total

    retained, token_total = retained_bytes(fill)
    assert isinstance(token_total, int)
    return Row(
        SECTION,
        f"memory per cached session ({algorithm})",
        retained / SESSIONS,
        "B/session",
        Target("<=", MEMORY_TARGET),
        note=f"{SESSIONS:,} sessions, tokens of {token_total // SESSIONS} B",
    )


def run() -> list[Row]:
    """Measure, and return the rows for the table."""
    signers = _signers()
    principal = realistic_principal(1)
    lookups = _lookups(signers["HS256"], principal)
    mints = {
        "HS256": _mint(signers["HS256"], principal, 5_000),
        "ES256": _mint(signers["ES256"], principal, 3_000),
        "RS256": _mint(signers["RS256"], principal, 200),
    }
    us = 1e6
    rows = [
        Row(SECTION, "cache hit: get_token, warm key (HS256)", lookups["warm"] * us, "µs/op"),
        Row(
            SECTION,
            "cache hit, Principal rebuilt per request",
            lookups["rebuilt"] * us,
            "µs/op",
            note="adds the principal fingerprint",
        ),
        Row(
            SECTION,
            "cache miss: get_token, new session (HS256)",
            lookups["cold"] * us,
            "µs/op",
            note="the mint plus cache bookkeeping",
        ),
    ]
    for algorithm, seconds in mints.items():
        name = f"mint afresh: LocalSigner.issue ({algorithm})"
        rows.append(Row(SECTION, name, seconds * us, "µs/op"))
    for algorithm, seconds in mints.items():
        target = HIT_TARGETS[algorithm]
        rows.append(
            Row(
                SECTION,
                f"cache hit is faster than an {algorithm} mint by",
                seconds / lookups["warm"],
                "x",
                None if target is None else Target(">=", target),
            )
        )
    rows.append(
        Row(
            SECTION,
            "hit with a rebuilt Principal vs an HS256 mint",
            mints["HS256"] / lookups["rebuilt"],
            "x",
            note="what a request that rebuilds its Principal sees",
        )
    )
    rows.extend(_memory_row(signers[algorithm], algorithm) for algorithm in ("HS256", "ES256"))
    return rows
