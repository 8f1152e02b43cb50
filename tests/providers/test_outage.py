"""A provider outage under load, end to end (the scenario is tests/providers/outage.py):
sessions that hold a servable token never see a failure, the provider gets at most one call
per session per backoff window, each session mints once after the provider is back, and
warnings come once per state change. The p99 ratio is printed here and reported by
``make bench``; the assertions are counts."""

from __future__ import annotations

import itertools
import logging
import math
import statistics
from collections import defaultdict

import pytest

from tests.providers.outage import API_KEY, SESSIONS, all_renewed, run_outage

pytestmark = pytest.mark.timeout(120)


def window_floor(k: int) -> float:
    """The shortest backoff window after k failures in a row (base 1 s, jitter >= 0.5)."""
    return 0.5 * min(30.0, 2.0 ** (k - 1))


def test_a_provider_outage_costs_no_request_while_tokens_are_servable(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG, logger="embedgate")
    run = run_outage()
    load, fake, firsts = run.load, run.fake, run.firsts
    outage_from, recovered_at = run.outage_from, run.recovered_at
    assert run.mints_at_start == SESSIONS  # one mint per session
    assert all_renewed(load, firsts), "sessions never got a new token"

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

    base_p99, outage_p99 = run.p99("baseline"), run.p99("outage")
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
