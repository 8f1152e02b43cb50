"""Core section: what a per-session cache hit costs next to minting a token afresh, and
how much memory one cached session keeps."""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from functools import partial

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from bench.table import Row, Target
from bench.timing import per_call, per_each, retained_bytes
from embedgate import (
    Engine,
    IssueRequest,
    KeySet,
    LocalSigner,
    MemoryCache,
    Principal,
    SigningKey,
    TokenService,
)
from embedgate.web.gate import WebGate
from embedgate.web.values import SessionDecision

SECTION = "core"
SECRET = "bench-core-secret-7Qm2vX9kL4pR8tZ1wB6nC3yD5fG0hJ"
SESSIONS = 10_000
MEMORY_TARGET = 1536.0  # bytes per session, token + cache bookkeeping + rate-limit state
HIT_TARGET = 3.0  # µs, a realistic hit
LIVE = 100_000  # sessions for the realistic hit and the memory figure
SWEEP_LIVE = 10_000  # live sessions drawn from in the cache-size sweep
CACHE_SIZES = (1_000, 10_000, 100_000)

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


def run_lookups() -> list[Row]:
    """Hits and mints, one session (the floor), next to the signatures."""
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
        # No target: a mint's cost is the signature's, whatever embedgate does.
        rows.append(
            Row(
                SECTION,
                f"cache hit is faster than an {algorithm} mint by",
                seconds / lookups["warm"],
                "x",
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
    return rows


def realistic_rows() -> list[Row]:
    """``LIVE`` sessions through the web rules (rate limits, session owners, the token
    service): the memory each keeps, then hits on sessions drawn at random, each with a
    Principal built afresh from its user (GC on)."""
    engine = Engine.from_settings(
        environ={}, secret=SECRET, cache_size=LIVE, rate_limit=1_000, user_rate_limit=100_000
    )
    gate = WebGate(engine)
    users = [realistic_principal(n).to_dict() for n in range(LIVE // 4)]
    ids = [f"{n:08d}-session-{'x' * 40}" for n in range(LIVE)]

    def fill() -> int:
        for n, sid in enumerate(ids):
            principal = Principal.from_mapping(users[n % len(users)])
            decision = SessionDecision(sid)
            assert gate.throttle(decision, principal) is None
            gate.settle_user(sid, principal)
            engine.service.get_token(principal, sid)
        return len(ids)

    retained, _ = retained_bytes(fill)
    token_size = len(engine.service.get_token(Principal.from_mapping(users[0]), ids[0]).token)
    rnd = random.Random(3)
    draws = [rnd.randrange(LIVE) for _ in range(20_000)]
    times = []
    for _ in range(7):
        calls = [
            (Principal.from_mapping(users[i % len(users)]), ids[i]) for i in draws[:5_000]
        ]  # built outside the timing: the app's own cost
        rnd.shuffle(draws)
        started = time.process_time()
        for principal, sid in calls:
            engine.service.get_token(principal, sid)
        times.append((time.process_time() - started) / len(calls))
    return [
        Row(
            SECTION,
            "realistic hit: get_token, new Principal, random session",
            statistics.median(times) * 1e6,
            "µs/op",
            Target("<=", HIT_TARGET),
            note=f"{LIVE:,} live sessions, GC on; spread "
            f"{min(times) * 1e6:.2f}-{max(times) * 1e6:.2f} µs",
        ),
        Row(
            SECTION,
            "memory per session, token + rate limits + owner",
            retained / LIVE,
            "B/session",
            Target("<=", MEMORY_TARGET),
            note=f"{LIVE:,} sessions, {len(users):,} users, HS256 tokens of {token_size} B",
        ),
    ]


def sweep_rows() -> list[Row]:
    """The cache size against ``SWEEP_LIVE`` live sessions drawn at random: hit rate and
    cost per request (misses mint)."""
    rows = []
    principals = [realistic_principal(n) for n in range(SWEEP_LIVE // 4)]
    for size in CACHE_SIZES:
        engine = Engine.from_settings(environ={}, secret=SECRET, cache_size=size)
        service = engine.service
        mints = 0
        issue = service.issuer.issue

        def counted(
            request: IssueRequest, issue: Callable[[IssueRequest], object] = issue
        ) -> object:
            nonlocal mints
            mints += 1
            return issue(request)

        service.issuer.issue = counted  # type: ignore[method-assign]
        rnd = random.Random(size)
        for n in range(SWEEP_LIVE):  # every live session seen once
            service.get_token(principals[n % len(principals)], f"live-{n}")
        draws = [rnd.randrange(SWEEP_LIVE) for _ in range(20_000)]
        mints = 0
        started = time.process_time()
        for n in draws:
            service.get_token(principals[n % len(principals)], f"live-{n}")
        spent = (time.process_time() - started) / len(draws)
        rows.append(
            Row(
                SECTION,
                f"cache of {size:,} for {SWEEP_LIVE:,} live sessions",
                spent * 1e6,
                "µs/op",
                note=f"hit rate {1 - mints / len(draws):.1%}",
            )
        )
    return rows


PARTS = (run_lookups, realistic_rows, sweep_rows)


def run() -> list[Row]:
    """Measure, and return the rows for the table."""
    return [row for part in PARTS for row in part()]
