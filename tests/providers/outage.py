"""The provider-outage scenario shared by tests/providers/test_outage.py (which asserts
counts) and ``make bench`` (which reports the latency ratio): the Toucan profile behind the
real ASGI middleware under uvicorn, 6 sessions, against the fake Toucan on 127.0.0.1 that
hangs past the read timeout, then answers 500, then recovers."""

from __future__ import annotations

import contextlib
import itertools
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from embedgate import Config, Engine
from embedgate.asgi import EmbedgateMiddleware
from tests.integrations.helpers import blocks
from tests.providers.fakes.server import serve
from tests.providers.fakes.toucan import FakeToucan, Plan

SESSIONS = 6
API_KEY = "tc-outage-run-key-do-not-log-7c41"
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


@dataclass
class Run:
    """What one outage run saw: every request's outcome, every upstream call, and when the
    outage started and ended (``time.monotonic()``)."""

    load: Load
    fake: FakeToucan
    firsts: dict[str, str]
    outage_from: float
    recovered_at: float
    mints_at_start: int

    def p99(self, phase: str) -> float:
        return p99([o.seconds for o in self.load.of(phase)])


def all_renewed(load: Load, firsts: dict[str, str]) -> bool:
    latest: dict[str, str | None] = {}
    for outcome in load.of("recovery"):
        latest[outcome.user] = outcome.token
    return all(latest.get(user) not in (None, first) for user, first in firsts.items())


def run_outage(*, baseline: float = 3.0, hang: float = 4.0, errors: float = 4.0) -> Run:
    """The no-fault run (``baseline`` s), then every token due for refresh (still served
    for ~25 s) while the provider hangs (``hang`` s) and answers 500 (``errors`` s), then
    recovery, until every session holds a new token (at most 40 s)."""
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
            mints_at_start = fake.calls
            with load.running():
                time.sleep(baseline)
                clock.offset += 245.0  # every token due for refresh, served ~25 s more
                load.phase = "outage"
                outage_from = time.monotonic()
                fake.fault = Plan(delay=3 * READ_TIMEOUT)  # hangs past the read timeout
                time.sleep(hang)
                fake.fault = Plan(status=500, body={"error": "boom"})
                time.sleep(errors)
                fake.fault = None
                recovered_at = time.monotonic()
                load.phase = "recovery"
                deadline = time.monotonic() + 40
                while not all_renewed(load, firsts) and time.monotonic() < deadline:
                    time.sleep(0.2)
                time.sleep(1.0)  # a little more load after the last renewal
    return Run(load, fake, firsts, outage_from, recovered_at, mints_at_start)
