"""The rate limiter: fixed one-minute windows per key, bounded in memory."""

from __future__ import annotations

from embedgate.clock import ManualClock
from embedgate.web.ratelimit import RateLimiter


def test_a_window_allows_the_limit_then_says_when_to_retry() -> None:
    clock = ManualClock(1_000.0)
    limiter = RateLimiter(2, clock=clock)
    assert limiter.hit("a") is None
    assert limiter.hit("a") is None
    clock.advance(10)
    assert limiter.hit("a") == 50
    assert limiter.hit("b") is None  # another key has its own window
    clock.advance(50)
    assert limiter.hit("a") is None  # a new window


def test_memory_stays_bounded_and_windows_over_are_dropped() -> None:
    clock = ManualClock(0.0)
    limiter = RateLimiter(1, clock=clock, maxsize=100)
    for n in range(1_000):
        assert limiter.hit(f"k{n}") is None
        assert len(limiter._windows) <= 100
    assert limiter.hit("k999") == 60  # the newest keys are kept, limited
    clock.advance(61)
    limiter.hit("fresh")
    assert list(limiter._windows) == ["fresh"]  # every finished window went
