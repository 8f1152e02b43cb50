"""Killing a Redis master under steady load from several worker processes (the FastAPI
example under ``uvicorn --workers 3``): on a real Cluster (three masters, three replicas)
and a real Sentinel set-up. Pages stay 200 with valid tokens throughout, a logout made
while the master is down is not lost (it is replayed once Redis answers, long before the
in-process tier's own bound), and every worker shares
the promoted master again without a restart. Single flight right after the promotion is
the known gap (the xfail below)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from embedgate.cache import session_tag
from embedgate.redis_cache import redis_key
from tests.providers.fakes.server import serve
from tests.providers.fakes.toucan import FakeToucan
from tests.scaling.cluster import Answer, App, Browser, jtis, running_app, subjects
from tests.support.binaries import require_binary
from tests.support.redis_topology import local_cluster, local_sentinel

pytestmark = [pytest.mark.redis, pytest.mark.timeout(110)]

TOUCAN_KEY = "tc-failover-key-do-not-log-77a1"
WORKERS = 3
# Far beyond the replay: only the replay can drop the logged-out token in time.
LOCAL_TTL = "300"
SETTLE = 15.0  # how long after the failover a lost logout may still show (replay: ~1 s)


class Load:
    """Sessions loading pages and the token endpoint in a loop; every answer checked."""

    def __init__(self, app: App, names: list[str]) -> None:
        self.browsers = [app.browser() for _ in names]
        self.first = [b.log_in(n) for b, n in zip(self.browsers, names, strict=True)]
        self.answers: list[Answer] = []
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(b,), daemon=True) for b in self.browsers
        ]

    def _run(self, browser: Browser) -> None:
        while not self._stop.is_set():
            try:
                self.answers.append(browser.page())
                self.answers.append(browser.endpoint())
            except BaseException as error:  # reported by the test, not lost in a thread
                self.errors.append(error)
                return

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(20)
        for browser in self.browsers:
            browser.close()


@contextmanager
def provider() -> Iterator[tuple[FakeToucan, dict[str, str]]]:
    toucan = FakeToucan(TOUCAN_KEY, delay=0.2)
    with serve(toucan.app) as url:
        yield (
            toucan,
            {
                "EMBEDGATE_PROVIDER": "toucan",
                "EMBEDGATE_PROVIDER_URL": url,
                "EMBEDGATE_API_KEY": TOUCAN_KEY,
                "EMBEDGATE_SECRET": "",
                "EXAMPLE_EMBED_RESOURCE": "dash-42",
                "EMBEDGATE_PAGE_DEADLINE": "10",
                "EMBEDGATE_REDIS_LOCAL_TTL": LOCAL_TTL,
                "EMBEDGATE_REDIS_BREAKER_COOLDOWN": "0.5",
            },
        )


def check_after_failover(leaver: Browser, old: str) -> None:
    # The logout made during the failover reaches every worker: no worker serves the old
    # token, well before the in-process tier's own bound (LOCAL_TTL) could drop it.
    deadline = time.monotonic() + SETTLE
    while True:
        answers = leaver.spread(3 * WORKERS * 4, threads=6)
        if old not in jtis(answers):
            break
        assert time.monotonic() < deadline, "a logout made during the failover was lost"
        time.sleep(0.5)
    assert subjects(answers) == {None}  # opaque tokens; they are checked as 200 + present


def logout_during_failover(leaver: Browser, user: str) -> str:
    old = leaver.page().jti
    leaver.log_out()
    leaver.log_in_only(user)
    return old


def test_cluster_master_killed_under_load() -> None:
    binary, cli = require_binary("redis-server"), require_binary("redis-cli")
    with (
        local_cluster(binary, cli) as cluster,
        provider() as (_toucan, env),
        running_app("fastapi", cluster.url, workers=WORKERS, env=env, opaque=True) as app,
    ):
        leaver = app.browser()
        leaver.log_in("bob")
        leaver.spread_over(WORKERS, count=24)  # in every worker's local tier now
        # The master holding the leaver's session index: the logout's first read fails.
        victim = cluster.master_of(redis_key("session", session_tag(leaver.session_id)))
        with Load(app, ["alice", "bob", "carol", "alice"]) as load:
            time.sleep(0.5)
            victim.kill()
            old = logout_during_failover(leaver, "bob")
            cluster.wait_failover(victim)
            time.sleep(0.5)
        assert not load.errors, load.errors[:3]
        assert len(load.answers) > 20
        # Every answer a 200 with a token (checked by Browser); a worker cut off from Redis
        # mints at most once per session for itself.
        assert len(jtis(load.answers)) <= 4 * WORKERS
        check_after_failover(leaver, old)
        leaver.close()
        assert_no_secret(app)


def test_sentinel_master_killed_under_load() -> None:
    binary = require_binary("redis-server")
    with (
        local_sentinel(binary) as sentinel,
        provider() as (_toucan, env),
        running_app("fastapi", sentinel.url, workers=WORKERS, env=env, opaque=True) as app,
    ):
        leaver = app.browser()
        leaver.log_in("bob")
        leaver.spread_over(WORKERS, count=24)
        with Load(app, ["alice", "bob", "carol", "alice"]) as load:
            time.sleep(0.5)
            old_port = sentinel.master.port
            sentinel.master.kill()
            old = logout_during_failover(leaver, "bob")
            sentinel.wait_failover(old_port)
            time.sleep(0.5)
        assert not load.errors, load.errors[:3]
        assert len(jtis(load.answers)) <= 4 * WORKERS
        check_after_failover(leaver, old)
        leaver.close()
        assert_no_secret(app)


def assert_no_secret(app: App) -> None:
    app.process.terminate()
    app.process.wait(10)
    assert app.process.stdout is not None
    output = app.process.stdout.read().decode(errors="replace")
    assert TOUCAN_KEY not in output


@pytest.mark.xfail(
    reason="known gap: right after a Sentinel promotion a cold session raced over every "
    "worker mints more than once (single flight holds on a steady server)",
    strict=False,
)
def test_single_flight_right_after_a_sentinel_promotion() -> None:
    binary = require_binary("redis-server")
    with (
        local_sentinel(binary) as sentinel,
        provider() as (toucan, env),
        running_app("fastapi", sentinel.url, workers=WORKERS, env=env, opaque=True) as app,
    ):
        old_port = sentinel.master.port
        sentinel.master.kill()
        sentinel.wait_failover(old_port)
        time.sleep(1.0)
        with app.browser() as cold:
            cold.preset_session()
            cold.log_in_only("carol")
            raced = cold.spread_over(WORKERS, count=36, threads=12)
        assert len(jtis(raced)) == 1
        assert toucan.calls == 1
