"""The token service when the provider misbehaves: a still-valid token is served at once
(the refresh runs beside the request, sync and async, asyncio and trio), a wait for a
token is bounded by a deadline, failures open a backoff window shared through the cache,
and the provider's circuit breaker stops calls while it is down and probes when it may be
back. Issuers block on events, so "at once" is proved by returning while the issuer is
still inside its call, never by a stopwatch."""

from __future__ import annotations

import logging
import random
import threading
from typing import Any

import anyio
import pytest

from embedgate import (
    Config,
    ConfigurationError,
    EmbedToken,
    IssueRequest,
    IssuerError,
    ManualClock,
    MemoryCache,
    Principal,
    TokenService,
)
from embedgate.backoff import BackoffPolicy, ProviderBreaker
from tests.core.issuers import CountingSigner


class Remote(CountingSigner):
    """A signer that behaves like a remote provider: it does I/O (so callers may stop
    waiting for it), can be held inside its call until released, and can fail."""

    does_io = True

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.release = threading.Event()
        self.release.set()
        self.entered = threading.Event()

    def hold(self) -> None:
        self.release.clear()
        self.entered.clear()

    def issue(self, request: IssueRequest) -> EmbedToken:
        self._count()
        self.entered.set()
        assert self.release.wait(20), "never released"
        return self._finish(request)

    async def aissue(self, request: IssueRequest) -> EmbedToken:
        self._count()
        self.entered.set()
        with anyio.fail_after(20):
            while not self.release.is_set():
                await anyio.sleep(0.005)
        return self._finish(request)


def down(code: str = "provider_unavailable", retry_after: float | None = None) -> IssuerError:
    return IssuerError("provider down", provider="remote", code=code, retry_after=retry_after)


class Max(random.Random):
    def random(self) -> float:
        return 0.999999


def make(clock: ManualClock, **kwargs: Any) -> tuple[TokenService, Remote]:
    issuer = kwargs.pop("issuer", None) or Remote()
    kwargs.setdefault("rng", Max())
    return TokenService(issuer, clock=clock, **kwargs), issuer


ALICE = Principal("alice", tenant="acme")


# -- serve what is still valid, at once --------------------------------------------------------


def test_a_due_token_is_served_while_the_refresh_hangs_sync(clock: ManualClock) -> None:
    service, issuer = make(clock)
    first = service.get_token(ALICE, "s")
    clock.set(first.refresh_at + 1)
    issuer.hold()
    served: list[EmbedToken] = []

    def request() -> None:
        served.append(service.get_token(ALICE, "s", deadline=0.5))

    threads = [threading.Thread(target=request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    # Every request returned while the refresh was still inside the issuer.
    assert issuer.entered.wait(10)
    assert not issuer.release.is_set()
    assert [t.token for t in served] == [first.token] * 8
    assert issuer.calls == 2  # one refresh for all of them
    issuer.release.set()
    assert service.wait_idle()
    assert service.get_token(ALICE, "s").token != first.token
    assert issuer.calls == 2


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_due_token_is_served_while_the_refresh_hangs_async(
    clock: ManualClock, backend: str
) -> None:
    service, issuer = make(clock)

    async def scenario() -> None:
        first = await service.aget_token(ALICE, "s")
        clock.set(first.refresh_at + 1)
        issuer.hold()
        served: list[EmbedToken] = []

        async def request() -> None:
            served.append(await service.aget_token(ALICE, "s", deadline=0.5))

        async with anyio.create_task_group() as tasks:
            for _ in range(8):
                tasks.start_soon(request)
        with anyio.fail_after(10):
            while not issuer.entered.is_set():
                await anyio.sleep(0.005)
        assert not issuer.release.is_set()
        assert [t.token for t in served] == [first.token] * 8
        assert issuer.calls == 2
        issuer.release.set()
        assert await service.await_idle()
        assert (await service.aget_token(ALICE, "s")).token != first.token
        assert issuer.calls == 2

    anyio.run(scenario, backend=backend)


# -- deadline-bounded --------------------------------------------------------------------------


def test_a_cold_mint_is_waited_for_only_until_the_deadline(clock: ManualClock) -> None:
    service, issuer = make(clock)
    issuer.hold()
    with pytest.raises(IssuerError) as caught:
        service.get_token(ALICE, "s", deadline=0.05)
    assert caught.value.code == "provider_timeout"
    assert caught.value.retry_after >= 1
    assert not issuer.release.is_set()  # the issuer is still at it: the caller left
    issuer.release.set()
    assert service.wait_idle()
    # The mint went on and filled the cache: the next request gets it, no second call.
    service.get_token(ALICE, "s", deadline=0.05)
    assert issuer.calls == 1


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_cold_mint_is_awaited_only_until_the_deadline(clock: ManualClock, backend: str) -> None:
    service, issuer = make(clock)

    async def scenario() -> None:
        issuer.hold()
        with pytest.raises(IssuerError) as caught:
            await service.aget_token(ALICE, "s", deadline=0.05)
        assert caught.value.code == "provider_timeout"
        assert not issuer.release.is_set()
        issuer.release.set()
        assert await service.await_idle()
        await service.aget_token(ALICE, "s", deadline=0.05)
        assert issuer.calls == 1

    anyio.run(scenario, backend=backend)


# -- back off, cluster-wide ------------------------------------------------------------------


def test_one_upstream_call_per_backoff_window_and_the_window_grows(clock: ManualClock) -> None:
    service, issuer = make(clock)
    first = service.get_token(ALICE, "s")
    issuer.failure = down()
    clock.set(first.refresh_at + 1)
    windows = []
    for attempt in range(1, 5):
        service.get_token(ALICE, "s")  # starts the refresh beside the request
        assert service.wait_idle()
        assert issuer.calls == 1 + attempt
        served = [service.get_token(ALICE, "s") for _ in range(20)]  # inside the window
        assert {s.token for s in served} == {first.token}
        assert issuer.calls == 1 + attempt  # no call inside the window
        window = served[0].refresh_at - clock.now()
        windows.append(window)
        clock.advance(window)
    # Exponential: 1, 2, 4, 8 s (this jitter is the top of its range).
    assert windows == pytest.approx([1.0, 2.0, 4.0, 8.0], rel=1e-3)


def test_the_providers_retry_after_is_the_window(clock: ManualClock) -> None:
    service, issuer = make(clock)
    first = service.get_token(ALICE, "s")
    issuer.failure = down("provider_rate_limited", retry_after=17)
    clock.set(first.refresh_at + 1)
    service.get_token(ALICE, "s")
    assert service.wait_idle()
    assert service.get_token(ALICE, "s").refresh_at == pytest.approx(clock.now() + 17)
    clock.advance(16.5)
    service.get_token(ALICE, "s")
    assert service.wait_idle()
    assert issuer.calls == 2


def test_the_window_is_shared_by_every_worker_through_the_cache(clock: ManualClock) -> None:
    shared = MemoryCache(clock=clock)  # stands for Redis: see tests/redis for the real one
    issuer = Remote()
    workers = [make(clock, cache=shared, issuer=issuer)[0] for _ in range(4)]
    first = workers[0].get_token(ALICE, "s")
    issuer.failure = down()
    clock.set(first.refresh_at + 1)
    workers[0].get_token(ALICE, "s")
    assert workers[0].wait_idle()
    for worker in workers:
        for _ in range(5):
            assert worker.get_token(ALICE, "s").token == first.token
        assert worker.wait_idle()
    assert issuer.calls == 2  # the other workers saw the window and stayed away
    # A session with nothing servable is told when to come back, without a call.
    clock.set(first.expires_at - 10)
    with pytest.raises(IssuerError) as caught:
        workers[0].get_token(ALICE, "s")
    assert issuer.calls == 3
    with pytest.raises(IssuerError) as again:
        workers[3].get_token(ALICE, "s")
    assert issuer.calls == 3
    assert again.value.retry_after >= 1
    assert caught.value.code == again.value.code == "provider_unavailable"


# -- the circuit breaker -----------------------------------------------------------------------


def test_the_breaker_opens_stops_calls_probes_and_closes(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    breaker = ProviderBreaker("remote", threshold=3, policy=BackoffPolicy(base=2.0))
    service, issuer = make(clock, breaker=breaker)
    issuer.failure = down()
    with caplog.at_level(logging.DEBUG, logger="embedgate"):
        for i in range(3):  # three sessions fail: the provider is down
            with pytest.raises(IssuerError):
                service.get_token(ALICE, f"s{i}")
        assert breaker.state == "open"
        assert issuer.calls == 3
        for i in range(3, 30):  # other sessions: no call at all while it is open
            with pytest.raises(IssuerError) as caught:
                service.get_token(ALICE, f"s{i}")
            assert caught.value.retry_after >= 1
        assert issuer.calls == 3
        clock.advance(breaker.open_until - clock.now())
        with pytest.raises(IssuerError):  # the probe: one call, which fails
            service.get_token(ALICE, "probe-1")
        assert issuer.calls == 4
        assert breaker.state == "open"
        for i in range(30, 40):
            with pytest.raises(IssuerError):
                service.get_token(ALICE, f"s{i}")
        assert issuer.calls == 4
        issuer.failure = None
        clock.advance(breaker.open_until - clock.now())
        service.get_token(ALICE, "probe-2")  # the probe succeeds: closed again
        assert breaker.state == "closed"
        assert issuer.calls == 5
        service.get_token(ALICE, "s-after")
        assert issuer.calls == 6
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    # Once per state change: failing, open, closed. Never once per request.
    assert len(warnings) == 3, warnings
    assert "circuit breaker open" in warnings[1]
    assert "answers again" in warnings[2]


def test_a_rejected_request_does_not_open_the_breaker(clock: ManualClock) -> None:
    service, issuer = make(clock)
    issuer.failure = down("provider_rejected")
    for i in range(10):
        with pytest.raises(IssuerError):
            service.get_token(ALICE, f"s{i}")
    assert service.breaker.state == "closed"
    assert issuer.calls == 10  # each session once; their own windows stop the rest


# -- configuration -----------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "-1", "10.5", "abc", "nan", "inf"])
def test_the_page_deadline_is_bounded(value: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Config.load({"EMBEDGATE_PAGE_DEADLINE": value}, environ={})
    assert caught.value.setting == "EMBEDGATE_PAGE_DEADLINE"


def test_the_page_deadline_defaults_well_under_a_second() -> None:
    assert 0 < Config.load(environ={}).page_deadline < 1
    assert Config.load({"EMBEDGATE_PAGE_DEADLINE": "2.5"}, environ={}).page_deadline == 2.5


@pytest.mark.parametrize(
    ("settings", "setting"),
    [
        ({"EMBEDGATE_TTL": "60", "EMBEDGATE_MIN_REMAINING": "60"}, "EMBEDGATE_MIN_REMAINING"),
        ({"EMBEDGATE_TTL": "60", "EMBEDGATE_MIN_REMAINING": "90"}, "EMBEDGATE_MIN_REMAINING"),
        ({"EMBEDGATE_TTL": "60", "EMBEDGATE_REFRESH_MARGIN": "30"}, "EMBEDGATE_REFRESH_MARGIN"),
        ({"EMBEDGATE_TTL": "60", "EMBEDGATE_REFRESH_MARGIN": "60"}, "EMBEDGATE_REFRESH_MARGIN"),
    ],
)
def test_inconsistent_timing_is_refused_at_load(settings: dict[str, str], setting: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Config.load(settings, environ={})
    assert caught.value.setting == setting
