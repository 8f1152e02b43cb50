"""Redis outages: the circuit breaker, the fallback to the in-process tier and direct
minting, and recovery once Redis is back."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pytest

from embedgate import Principal, verify
from embedgate.redis_cache import CircuitBreaker, RedisCache, TieredCache
from tests.redis.helpers import PRINCIPAL, SESSION, service, signer
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.redis


class Ticks:
    """A monotonic clock the breaker tests move by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _warnings(caplog: pytest.LogCaptureFixture, text: str) -> int:
    return sum(1 for r in caplog.records if r.levelno == logging.WARNING and text in r.getMessage())


def test_the_breaker_opens_after_threshold_failures_and_probes_after_the_cooldown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="embedgate")
    ticks = Ticks()
    breaker = CircuitBreaker(threshold=3, cooldown=5.0, monotonic=ticks)
    error = ConnectionError("down")
    for _ in range(2):
        assert breaker.allow()
        breaker.failure(error)
    assert breaker.state == "closed"
    breaker.success()  # a success resets the run of failures
    for _ in range(3):
        breaker.failure(error)
    assert breaker.state == "open"
    assert breaker.opened == 1
    assert not breaker.allow()
    assert breaker.rejected == 1

    ticks.now += 5.0
    assert breaker.allow()  # the probe
    assert breaker.state == "half_open"
    assert not breaker.allow()  # only one probe per cool-down
    breaker.failure(error)
    assert breaker.state == "open"
    assert breaker.opened == 1

    ticks.now += 5.0
    assert breaker.allow()
    breaker.success()
    assert breaker.state == "closed"
    assert breaker.recoveries == 1
    assert breaker.allow()
    assert _warnings(caplog, "Redis unreachable") == 1
    assert _warnings(caplog, "reachable again") == 1


def test_a_probe_that_never_reports_does_not_wedge_the_breaker() -> None:
    ticks = Ticks()
    breaker = CircuitBreaker(threshold=1, cooldown=1.0, monotonic=ticks)
    breaker.failure(ConnectionError())
    ticks.now += 1.0
    assert breaker.allow()  # this probe's task is cancelled and never reports
    ticks.now += 1.0
    assert breaker.allow()


def test_tokens_keep_coming_through_an_outage_and_sharing_returns_after_it(
    own_redis: RedisServer,
    tiered: Callable[..., TieredCache],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="embedgate")
    keys = signer().keys

    def make() -> TieredCache:
        return tiered(own_redis.url, breaker=CircuitBreaker(threshold=2, cooldown=0.2))

    cache = make()
    svc = service(cache)
    warm = svc.get_token(PRINCIPAL, SESSION)

    own_redis.stop()
    assert svc.get_token(PRINCIPAL, SESSION) == warm  # the local tier still serves it
    minted = [svc.get_token(Principal(subject=f"user-{i}"), f"s{i}") for i in range(6)]
    for i, token in enumerate(minted):
        claims = verify(token.token, keys, audience="analytics", issuer="embedgate-test")
        assert claims["sub"] == f"user-{i}"
    breaker = cache.shared.breaker
    assert breaker.state == "open"
    assert breaker.opened == 1
    assert breaker.rejected > 0  # later calls did not even try Redis
    with cache.exclusive("any-key") as ours:
        # No lock: each process mints for itself, only for a session it has nothing for.
        assert ours is None
    assert _warnings(caplog, "Redis unreachable") == 1

    own_redis.start()  # same port, empty data set
    deadline = time.monotonic() + 10
    probes = 0
    while breaker.state != "closed":
        assert time.monotonic() < deadline, "the breaker did not close"
        probes += 1  # a new session each time: a local hit would not touch Redis
        svc.get_token(Principal(subject="prober"), f"probe-{probes}")
        time.sleep(0.05)
    assert breaker.recoveries == 1
    assert _warnings(caplog, "reachable again") == 1
    assert _warnings(caplog, "Redis unreachable") == 1

    other = service(make())
    fresh = svc.get_token(Principal(subject="after"), "after-session")
    assert other.get_token(Principal(subject="after"), "after-session") == fresh


def test_an_unreachable_redis_at_start_up_does_not_stop_token_serving(
    own_redis: RedisServer, tiered: Callable[..., TieredCache]
) -> None:
    own_redis.stop()
    cache = tiered(own_redis.url, breaker=CircuitBreaker(threshold=1, cooldown=60), listening=False)
    svc = service(cache)
    first = svc.get_token(PRINCIPAL, SESSION)
    assert svc.get_token(PRINCIPAL, SESSION) == first
    assert svc.invalidate_session(SESSION) == 1  # the local tier, at least
    assert svc.get_token(PRINCIPAL, SESSION).jti != first.jti


def test_failures_are_reported_by_type_never_with_the_url(
    own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="embedgate")
    url = own_redis.url.replace("redis://", "redis://:hunter2@")
    own_redis.stop()
    cache = RedisCache.from_url(url, breaker=CircuitBreaker(threshold=1, cooldown=60))
    assert cache.get("k") is None
    assert cache.breaker.state == "open"
    assert "hunter2" not in caplog.text
    assert "ConnectionError" in caplog.text
    cache.close()
