"""A provider outage under load, end to end: the Toucan profile behind the real ASGI
middleware under uvicorn, against the fake Toucan on 127.0.0.1 that hangs, then answers
500, then recovers. Sessions that hold a servable token never see a failure, the provider
gets at most one call per session per backoff window, and each session mints once after
the provider is back. Latency ratios are printed (and measured by ``make bench``); the
assertions are counts."""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from embedgate import Config, Engine
from embedgate.asgi import EmbedgateMiddleware
from tests.integrations.helpers import blocks
from tests.providers.conftest import API_KEY
from tests.providers.fakes.server import serve
from tests.providers.fakes.toucan import FakeToucan, Plan

pytestmark = pytest.mark.timeout(120)

SESSIONS = 6
PAGE = (
    b"<!doctype html><html><head><title>Reports</title></head>"
    b"<body><tc-dashboard></tc-dashboard></body></html>"
)
TOKEN_HEADERS = {"X-Embedgate": "1", "Sec-Fetch-Site": "same-origin"}
READ_TIMEOUT = 1.0  # each hung call fails after this long
LIFETIME = 300  # Toucan's token lifetime; due ~240 s after the mint, served until 270 s


class ShiftedClock:
    """The real clock plus an offset the test moves forward (to make tokens due)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset


async def page_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/html; charset=utf-8")],
        }
    )
    await send({"type": "http.response.body", "body": PAGE})


def user_of(scope: dict[str, Any]) -> dict[str, str] | None:
    for name, value in scope["headers"]:
        if name == b"x-test-user":
            return {"sub": value.decode()}
    return None


@dataclass(frozen=True)
class Outcome:
    phase: str
    user: str
    ok: bool
    seconds: float
    token: str | None
    status: int = 200
    via: str = "page"


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]


class Load:
    """One thread per session, each its own cookie jar, alternating page and endpoint."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.phase = "baseline"
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.clients = [
            httpx.Client(base_url=base_url, timeout=30, headers={"X-Test-User": f"user-{i}"})
            for i in range(SESSIONS)
        ]

    def first_pages(self) -> dict[str, str]:
        firsts = {}
        for i, client in enumerate(self.clients):
            outcome = self._one(client, f"user-{i}", 0)
            assert outcome.ok
            assert outcome.token is not None
            firsts[outcome.user] = outcome.token
        return firsts

    def _one(self, client: httpx.Client, user: str, n: int) -> Outcome:
        phase = self.phase
        started = time.perf_counter()
        token: str | None = None
        if n % 2 == 0:
            response = client.get("/")
            found = blocks(response.text) if response.status_code == 200 else []
            if len(found) == 1 and found[0] is not None:
                token = found[0]["token"]
        else:
            response = client.post("/_embedgate/token", headers=TOKEN_HEADERS)
            if response.status_code == 200:
                token = response.json().get("token")
        seconds = time.perf_counter() - started
        ok = response.status_code == 200 and bool(token)
        via = "page" if n % 2 == 0 else "endpoint"
        outcome = Outcome(phase, user, ok, seconds, token, response.status_code, via)
        with self._lock:
            self.outcomes.append(outcome)
        return outcome

    def _run(self, i: int) -> None:
        for n in itertools.count(1):
            if self._stop.is_set():
                return
            self._one(self.clients[i], f"user-{i}", n)
            time.sleep(0.01)  # a browser's pace, roughly: keeps the 2-core box responsive

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        threads = [threading.Thread(target=self._run, args=(i,)) for i in range(SESSIONS)]
        for thread in threads:
            thread.start()
        try:
            yield
        finally:
            self._stop.set()
            for thread in threads:
                thread.join(timeout=30)
            for client in self.clients:
                client.close()

    def of(self, phase: str) -> list[Outcome]:
        with self._lock:
            return [o for o in self.outcomes if o.phase == phase]


def window_floor(k: int) -> float:
    """The shortest backoff window after k failures in a row (base 1 s, jitter >= 0.5)."""
    return 0.5 * min(30.0, 2.0 ** (k - 1))


def test_a_provider_outage_costs_no_request_while_tokens_are_servable(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG, logger="embedgate")
    fake = FakeToucan(API_KEY, lifetime=LIFETIME)
    clock = ShiftedClock()
    with serve(fake.app) as provider_url:
        settings = {
            "EMBEDGATE_PROVIDER": "toucan",
            "EMBEDGATE_PROVIDER_URL": provider_url,
            "EMBEDGATE_API_KEY": API_KEY,
            "EMBEDGATE_TTL": str(LIFETIME),
            "EMBEDGATE_TOUCAN_READ_TIMEOUT": str(READ_TIMEOUT),
            "EMBEDGATE_RATE_LIMIT": "100000",
            "EMBEDGATE_USER_RATE_LIMIT": "100000",
        }
        config = Config.load(settings, environ={})
        engine = Engine(config, config_source=settings, environ={}, clock=clock)
        app = EmbedgateMiddleware(page_app, engine, user_resolver=user_of)
        with serve(app) as base_url:
            load = Load(base_url)
            firsts = load.first_pages()
            assert fake.calls == SESSIONS  # one mint per session
            with load.running():
                time.sleep(3.0)  # the no-fault run
                # Every token due for refresh, still served for another ~25 s.
                clock.offset += 245.0
                load.phase = "outage"
                outage_from = time.monotonic()
                fake.fault = Plan(delay=3 * READ_TIMEOUT)  # hangs past the read timeout
                time.sleep(4.0)
                fake.fault = Plan(status=500, body={"error": "boom"})
                time.sleep(4.0)
                fake.fault = None
                recovered_at = time.monotonic()
                load.phase = "recovery"
                deadline = time.monotonic() + 40
                while not all_renewed(load, firsts):
                    assert time.monotonic() < deadline, "sessions never got a new token"
                    time.sleep(0.2)
                time.sleep(1.0)  # a little more load after the last renewal

    baseline, outage, recovery = load.of("baseline"), load.of("outage"), load.of("recovery")
    # 0 failed requests: every page carried a token, every endpoint call answered one.
    for phase in (baseline, outage, recovery):
        assert phase, "no requests in a phase"
        assert [o for o in phase if not o.ok] == []
    # During the outage each session got its still-valid token.
    for outcome in outage:
        assert outcome.token == firsts[outcome.user]

    # Upstream calls per session during the outage: at most one per backoff window.
    calls = defaultdict(list)
    for seen in fake.seen:
        calls[seen.user].append(seen.at)
    outage_seconds = recovered_at - outage_from
    for user in firsts:
        during = [at for at in calls[user] if outage_from <= at < recovered_at]
        for k, (a, b) in enumerate(itertools.pairwise(during), start=1):
            # The next call waits for the window the k-th failure opened (the provider's
            # circuit breaker may make it longer, never shorter).
            assert b - a >= 0.9 * window_floor(k), (user, k, b - a)
        windows = math.ceil(math.log2(2 * outage_seconds + 1)) + 1
        assert len(during) <= windows, (user, len(during))
        # After recovery: exactly one mint per session.
        after = [at for at in calls[user] if at >= recovered_at]
        assert len(after) == 1, (user, len(after))

    outage_calls = sum(1 for s in fake.seen if outage_from <= s.at < recovered_at)
    # Warnings: once per state change (failing, breaker open, closed), never per request.
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) <= 4, [r.getMessage() for r in warnings]
    assert API_KEY not in caplog.text

    base_p99 = p99([o.seconds for o in baseline])
    outage_p99 = p99([o.seconds for o in outage])
    most = max(len([a for a in calls[u] if outage_from <= a < recovered_at]) for u in firsts)
    median = statistics.median(o.seconds for o in outage)
    with capsys.disabled():
        print(
            f"\noutage run: {len(baseline)} baseline / {len(outage)} outage / "
            f"{len(recovery)} recovery requests, 0 failed; upstream calls during the "
            f"{outage_seconds:.1f} s outage: {outage_calls} for {SESSIONS} sessions "
            f"(at most {most} for one session); p99 baseline {base_p99 * 1000:.1f} ms, "
            f"outage {outage_p99 * 1000:.1f} ms (ratio {outage_p99 / base_p99:.2f}); "
            f"outage median {median * 1000:.1f} ms"
        )


def all_renewed(load: Load, firsts: dict[str, str]) -> bool:
    latest: dict[str, str | None] = {}
    for outcome in load.of("recovery"):
        latest[outcome.user] = outcome.token
    return all(latest.get(user) not in (None, first) for user, first in firsts.items())
