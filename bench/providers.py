"""Providers section: a remote minter that answers in 100 ms, behind the per-session cache.

(a) ``get_token`` for a session already holding a valid token, next to a bare dict lookup
and to a cold mint (one upstream round trip): the hot path never waits for the provider.
(b) 1,000 concurrent cold ``aget_token`` calls for one session: how many upstream calls
they make (single-flight: one) and how long they take together.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import anyio
from tests.providers.fakes.server import serve
from tests.providers.fakes.toucan import FakeToucan

from bench.core import realistic_principal
from bench.table import Row, Target
from bench.timing import per_call, per_each
from embedgate import Config, EmbedToken, Engine

SECTION = "providers"
UPSTREAM_DELAY = 0.100
CONCURRENT = 1_000
API_KEY = "bench-toucan-api-key-0123456789abcdef"


def _engine(url: str) -> Engine:
    mapping: Mapping[str, Any] = {
        "EMBEDGATE_PROVIDER": "toucan",
        "EMBEDGATE_PROVIDER_URL": url,
        "EMBEDGATE_API_KEY": API_KEY,
        "EMBEDGATE_TOUCAN_READ_TIMEOUT": "5",
    }
    return Engine(Config.load(mapping, environ={}), config_source=mapping, environ={})


def _hot_path(fake: FakeToucan, url: str) -> list[Row]:
    engine = _engine(url)
    principal = realistic_principal(1)
    engine.service.get_token(principal, "warm-session")  # one mint; every call below is a hit
    calls_before = fake.calls
    hit = per_call(lambda: engine.service.get_token(principal, "warm-session"), number=5_000)
    assert fake.calls == calls_before, "a warm session must not reach the provider"
    token = EmbedToken(token="t", expires_at=2e9, issued_at=1e9, subject="s")
    table = {f"key-{n}": token for n in range(10_000)}
    lookup = per_call(lambda: table["key-4242"], number=200_000)
    runs = iter(range(1_000_000))

    def cold_sessions() -> list[Callable[[], object]]:
        run = next(runs)  # fresh session ids every run: each call is a cache miss
        return [partial(engine.service.get_token, principal, f"cold-{run}-{n}") for n in range(5)]

    cold = per_each(cold_sessions, repeat=2)
    return [
        Row(
            SECTION,
            "get_token, session holding a valid token",
            hit * 1e6,
            "µs/op",
            note="fake Toucan answers in 100 ms; no upstream call made",
        ),
        Row(SECTION, "bare dict lookup (baseline)", lookup * 1e6, "µs/op"),
        Row(
            SECTION,
            "get_token, cold session (one mint)",
            cold * 1e3,
            "ms/op",
            note="one HTTP round trip to the fake provider",
        ),
        # No target: the ratio is set by the fake provider's 100 ms, not by embedgate.
        Row(SECTION, "cold mint / warm hit", cold / hit, "x"),
    ]


def _stampede(fake: FakeToucan, url: str) -> list[Row]:
    engine = _engine(url)
    principal = realistic_principal(2)
    tokens: list[str] = []

    async def one() -> None:
        tokens.append((await engine.service.aget_token(principal, "stampede")).token)

    async def all_at_once() -> None:
        async with anyio.create_task_group() as tasks:
            for _ in range(CONCURRENT):
                tasks.start_soon(one)

    calls_before = fake.calls
    started = time.perf_counter()
    anyio.run(all_at_once)
    wall = time.perf_counter() - started
    upstream = fake.calls - calls_before
    assert len(tokens) == CONCURRENT
    assert len(set(tokens)) == 1
    return [
        Row(
            SECTION,
            f"{CONCURRENT:,} concurrent cold aget_token: upstream calls",
            upstream,
            "calls",
            Target("<=", 1.0),
            "single-flight per session",
        ),
        Row(
            SECTION,
            f"{CONCURRENT:,} concurrent cold aget_token: wall time",
            wall * 1e3,
            "ms",
            note=f"upstream takes {UPSTREAM_DELAY * 1e3:.0f} ms",
        ),
    ]


def run() -> list[Row]:
    fake = FakeToucan(API_KEY, delay=UPSTREAM_DELAY)
    with serve(fake.app) as url:
        return _hot_path(fake, url) + _stampede(fake, url)


if __name__ == "__main__":
    from bench.table import render

    print(render(run()))
