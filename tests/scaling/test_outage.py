"""A Redis outage under the real multi-worker examples: pages keep coming with tokens
(each worker falls back to its in-process tier and mints locally), and once redis-server
is back on its port, the workers share tokens again."""

from __future__ import annotations

import time

import pytest

from tests.conftest import TEST_SECRET
from tests.scaling.cluster import KINDS, WORKERS, jtis, running_app, subjects
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.redis

# Each worker probes Redis again one breaker cool-down (5 s by default) after giving up.
RECOVERY_DEADLINE = 25.0


@pytest.mark.parametrize("kind", KINDS)
def test_pages_stay_up_without_redis_and_sharing_returns_after_it(
    redis_binary: str, kind: str
) -> None:
    with RedisServer(redis_binary) as redis, running_app(kind, redis.url) as app:
        with app.browser() as alice:
            first = alice.log_in("alice")
            assert jtis(alice.spread_over(3, count=40)) == {first.jti}

            redis.stop()
            # Every answer is a 200 carrying a valid token (Browser checks both).
            during = alice.spread_over(3, count=40)
        with app.browser() as carol:
            # A session that starts during the outage: no tier holds a token for it.
            carol_answers = [carol.log_in("carol"), *carol.spread_over(3, count=24)]
        assert subjects(during) == {"alice"}
        assert subjects(carol_answers) == {"carol"}
        # Each worker mints for itself, once per session: its own tier serves it after.
        assert len(jtis(during)) <= WORKERS
        assert len(jtis(carol_answers)) <= WORKERS

        redis.start()  # the same port, an empty data set
        deadline = time.monotonic() + RECOVERY_DEADLINE
        sessions = 0
        while True:
            sessions += 1
            with app.browser() as fresh:  # a new session each round: nothing cached for it
                after = [fresh.log_in("alice"), *fresh.spread_over(WORKERS, count=40)]
            if len(jtis(after)) == 1:
                break
            assert time.monotonic() < deadline, f"no sharing after {sessions} new sessions"
            time.sleep(0.5)

    assert app.process.stdout is not None
    output = app.process.stdout.read().decode(errors="replace")
    assert "Redis unreachable" in output  # the breaker opened...
    assert "reachable again" in output  # ...and closed again
    assert TEST_SECRET not in output
    for answer in [first, *during, *carol_answers, *after]:
        assert answer.token not in output
