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
import tempfile
from dataclasses import dataclass, field
from typing import IO

from tests.providers.fakes.server import serve
from tests.providers.fakes.toucan import FakeToucan
from tests.scaling.cluster import WORKERS, running_app, workers

from bench.table import Row, Target

SECTION = "workers"
SESSIONS = 20
REQUESTS = 32
THREADS = 16
UPSTREAM_DELAY = 0.100
START_TIMEOUT = 120.0  # 4 workers importing the app on a loaded 2-core machine
API_KEY = "bench-toucan-api-key-0123456789abcdef"
USERS = ("alice", "bob", "carol")


@dataclass(frozen=True)
class Run:
    """Per session: how many tokens were minted, and how many workers answered."""

    mints: list[int]
    workers: list[int]
    provider_calls: int
    failures: list[str] = field(default_factory=list)
    timeouts: list[int] = field(default_factory=list)


def _run(redis_url: str | None) -> Run:
    toucan = FakeToucan(API_KEY, delay=UPSTREAM_DELAY)
    mints: list[int] = []
    reached: list[int] = []
    failures: list[str] = []
    timeouts: list[int] = []
    with serve(toucan.app) as toucan_url, tempfile.TemporaryFile() as log:
        env = {
            "EMBEDGATE_PROVIDER": "toucan",
            "EMBEDGATE_PROVIDER_URL": toucan_url,
            "EMBEDGATE_API_KEY": API_KEY,
            "EMBEDGATE_SECRET": "",
        }
        try:
            _sessions(redis_url, env, log, mints, reached, failures, timeouts)
        finally:
            if failures or sys.exc_info()[0] is not None:
                log.seek(0)
                _print_tracebacks(log.read().decode("utf-8", "replace"))
    return Run(mints, reached, toucan.calls, failures, timeouts)


def _sessions(
    redis_url: str | None,
    env: dict[str, str],
    log: IO[bytes],
    mints: list[int],
    reached: list[int],
    failures: list[str],
    timeouts: list[int],
) -> None:
    with running_app(
        "fastapi", redis_url, env=env, opaque=True, log=log, start_timeout=START_TIMEOUT
    ) as app:
        for n in range(SESSIONS):
            with app.browser() as browser:
                browser.preset_session(API_KEY)  # cold: no page warmed any worker up
                browser.log_in_only(USERS[n % len(USERS)])
                try:
                    answers = browser.spread(REQUESTS, threads=THREADS)
                except AssertionError as error:  # a 5xx: keep going, show the server's side
                    text = str(error)
                    if "provider_timeout" in text:  # 503 + Retry-After: the script retries
                        timeouts.append(n)
                    else:
                        failures.append(f"session {n}: {text[:300]}")
                    continue
            mints.append(len({answer.token for answer in answers}))
            reached.append(len(workers(answers)))


def _print_tracebacks(output: str, limit: int = 3) -> None:
    """The server's tracebacks (the first ``limit``), to find what answered 5xx."""
    blocks = output.split("Traceback (most recent call last):")[1:]
    print(f"bench: {SECTION}: the server logged {len(blocks)} traceback(s)", file=sys.stderr)
    for block in blocks[:limit]:
        lines = block.strip().splitlines()[:60]
        print("Traceback (most recent call last):\n" + "\n".join(lines), file=sys.stderr)


def _rows(label: str, run: Run, target: Target | None, note: str) -> list[Row]:
    if not run.mints:
        return [Row(SECTION, f"sessions answered without error, {label}", 0, "sessions", note=note)]
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
    errors = [
        row
        for label, run in (("shared Redis", shared), ("in-process only", alone))
        for row in (
            Row(
                SECTION,
                f"sessions with a 500 (or other error), {label}",
                len(run.failures),
                "sessions",
                Target("<=", 0),
                "; ".join(run.failures[:2]) or "the server's tracebacks are printed when any",
            ),
            Row(
                SECTION,
                f"sessions with a 503 provider_timeout, {label}",
                len(run.timeouts),
                "sessions",
                note="page deadline passed or another worker minting (the script retries)",
            ),
        )
    ]
    return [
        *errors,
        # A session always gets a token, so "at most 1" is "exactly 1".
        *_rows("shared Redis", shared, Target("<=", 1.0), scenario),
        # Over one per worker: a worker's sync page helpers and its async token endpoint
        # do not share single-flight, so each can mint for the same cold key.
        *_rows("in-process only", alone, None, f"contrast: no Redis, {WORKERS}+ expected"),
    ]
