"""Workers section: mints per session across 4 worker processes, with and without Redis.

The FastAPI example under ``uvicorn --workers 4``, on the Toucan profile, against a fake
Toucan on loopback that takes 100 ms per token (and counts them). Each of ``SESSIONS``
sessions starts cold: its ``REQUESTS`` requests (pages and the token endpoint) go out 16
at a time, each on a new connection, well within one token lifetime, so the kernel hands
them to every worker at once. The mints of a session are its distinct tokens. With
``EMBEDGATE_REDIS_URL`` the target is exactly one (the cluster-wide lock and the shared
tier); without it, for contrast, each worker mints its own: 4 or more, since in one
worker the page's template helper (sync) and the token endpoint (async) may each mint.
Skipped, with the reason printed, when redis-server is not installed.
"""

from __future__ import annotations

import shutil
import statistics
import sys
from dataclasses import dataclass

from tests.providers.fakes.server import serve
from tests.providers.fakes.toucan import FakeToucan
from tests.scaling.cluster import WORKERS, running_app, workers

from bench.table import Row, Target

SECTION = "workers"
SESSIONS = 20
REQUESTS = 32
THREADS = 16
UPSTREAM_DELAY = 0.100
API_KEY = "bench-toucan-api-key-0123456789abcdef"
USERS = ("alice", "bob", "carol")


@dataclass(frozen=True)
class Run:
    """Per session: how many tokens were minted, and how many workers answered."""

    mints: list[int]
    workers: list[int]
    provider_calls: int


def _run(redis_url: str | None) -> Run:
    toucan = FakeToucan(API_KEY, delay=UPSTREAM_DELAY)
    mints: list[int] = []
    reached: list[int] = []
    with serve(toucan.app) as toucan_url:
        env = {
            "EMBEDGATE_PROVIDER": "toucan",
            "EMBEDGATE_PROVIDER_URL": toucan_url,
            "EMBEDGATE_API_KEY": API_KEY,
            "EMBEDGATE_SECRET": "",
        }
        with running_app("fastapi", redis_url, env=env, opaque=True) as app:
            for n in range(SESSIONS):
                with app.browser() as browser:
                    browser.preset_session()  # cold: no first page warms any worker up
                    browser.log_in_only(USERS[n % len(USERS)])
                    answers = browser.spread(REQUESTS, threads=THREADS)
                mints.append(len({answer.token for answer in answers}))
                reached.append(len(workers(answers)))
    return Run(mints, reached, toucan.calls)


def _rows(label: str, run: Run, target: Target | None, note: str) -> list[Row]:
    return [
        Row(
            SECTION,
            f"mints per session, {label} (mean)",
            statistics.fmean(run.mints),
            "mints",
            target,
            note,
        ),
        Row(
            SECTION,
            f"mints per session, {label} (max)",
            max(run.mints),
            "mints",
            target,
            f"{run.provider_calls} provider calls in all; "
            f"{statistics.fmean(run.workers):.1f} of {WORKERS} workers answered per session",
        ),
    ]


def run() -> list[Row]:
    """Measure, and return the rows for the table ([] without redis-server)."""
    binary = shutil.which("redis-server")
    if binary is None:
        print(f"bench: skipped {SECTION}: redis-server is not installed", file=sys.stderr)
        return []
    from tests.support.redis_server import RedisServer

    with RedisServer(binary) as server:
        shared = _run(server.url)
    alone = _run(None)
    scenario = f"{SESSIONS} cold sessions x {REQUESTS} requests, {WORKERS} uvicorn workers"
    return [
        # A session always gets a token, so "at most 1" is "exactly 1".
        *_rows("shared Redis", shared, Target("<=", 1.0), scenario),
        # Over one per worker: a worker's sync page helpers and its async token endpoint
        # do not share single-flight, so each can mint for the same cold key.
        *_rows("in-process only", alone, None, f"contrast: no Redis, {WORKERS}+ expected"),
    ]
