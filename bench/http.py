"""Over real HTTP: requests per second and server CPU per request, bare vs embedgate vs
the hand-written peer, under uvicorn (1 worker, Starlette + ``EmbedgateMiddleware``) and
gunicorn (sync and gthread, Flask + ``EmbedGate(app)``), loaded by wrk on loopback.

Each variant runs in its own server, all started at once; rounds are interleaved (bare,
embedgate, hand, bare, ...) so a busy moment of the machine weighs on each alike. Server
CPU is the process tree's utime + stime from ``/proc`` (the master and its workers)
before and after each round, divided by the requests wrk completed. Requests draw a
session at random among ``SESSIONS`` live ones (wrk's Lua ``math.random``), warmed first.
Skipped when wrk is not installed. Ratios are medians of the per-round ratios.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from tests.support.net import PYTHON, free_port, run_server

from bench import handwritten
from bench.table import Row, Target
from bench.web import engine
from embedgate.web.session import SessionIds

SECTION = "http"
ROOT = Path(__file__).resolve().parents[1]
SESSIONS = 1_000
USERS = 500
ROUNDS = 5
SECONDS = 2
CONNECTIONS = 8
RPS_TARGET = 0.95
VARIANTS = ("bare", "embedgate", "hand")
TICK = os.sysconf("SC_CLK_TCK")
SERVERS = {
    "uvicorn, Starlette": ["-m", "uvicorn", "bench.http_apps:asgi_app", "--workers", "1",
                           "--no-access-log", "--log-level", "warning", "--host", "127.0.0.1"],
    "gunicorn sync, Flask": ["-m", "gunicorn", "-w", "1", "-k", "sync", "bench.http_apps:wsgi_app"],
    "gunicorn gthread, Flask": ["-m", "gunicorn", "-w", "1", "-k", "gthread", "--threads", "4",
                                "bench.http_apps:wsgi_app"],
}  # fmt: skip


def _argv(base: list[str], port: int) -> list[str]:
    if base[1] == "uvicorn":
        return [PYTHON, *base, "--port", str(port)]
    return [PYTHON, *base, "-b", f"127.0.0.1:{port}"]


def _tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and its descendants, from /proc."""
    total = 0.0
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            stat = Path(f"/proc/{current}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            total += (int(fields[11]) + int(fields[12])) / TICK
            for task in Path(f"/proc/{current}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def _lua(path: Path, ids: list[str], cookie: str) -> None:
    pairs = ",\n".join(
        f'{{"{cookie}={sid}; {handwritten.COOKIE}={sid}; theme=dark", "{n % USERS}"}}'
        for n, sid in enumerate(ids)
    )
    path.write_text(
        f"local s = {{\n{pairs}\n}}\n"
        "request = function()\n"
        "  local p = s[math.random(#s)]\n"
        '  return wrk.format("GET", "/", {["Cookie"] = p[1], ["X-User"] = p[2],'
        ' ["Accept"] = "text/html"})\n'
        "end\n"
    )


def _wrk(wrk: str, script: Path, url: str, seconds: int) -> tuple[float, int]:
    out = subprocess.run(
        [wrk, "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    ).stdout
    rate = re.search(r"Requests/sec:\s*([\d.]+)", out)
    done = re.search(r"(\d+) requests in", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if rate is None or done is None or errors is not None:
        raise RuntimeError(f"wrk: unexpected output or errors:\n{out}")
    return float(rate.group(1)), int(done.group(1))


@contextmanager
def _servers(kind: str, env: dict[str, str]) -> Iterator[dict[str, tuple[str, int]]]:
    with ExitStack() as stack:
        running = {}
        for variant in VARIANTS:
            port = free_port()
            process = stack.enter_context(
                run_server(
                    _argv(SERVERS[kind], port),
                    port,
                    cwd=str(ROOT),
                    env={**env, "BENCH_VARIANT": variant},
                    timeout=120,
                    log=stack.enter_context(tempfile.TemporaryFile()),
                )
            )
            running[variant] = (f"http://127.0.0.1:{port}/", process.pid)
        yield running


def _measure(wrk: str, kind: str, script: Path, env: dict[str, str]) -> list[Row]:
    rates: dict[str, list[float]] = {v: [] for v in VARIANTS}
    cpu: dict[str, list[float]] = {v: [] for v in VARIANTS}
    with _servers(kind, env) as running:
        for url, _ in running.values():
            _wrk(wrk, script, url, 1)  # warm: every session's token minted, caches filled
        for _ in range(ROUNDS):
            for variant, (url, pid) in running.items():
                before = _tree_cpu(pid)
                rate, done = _wrk(wrk, script, url, SECONDS)
                rates[variant].append(rate)
                cpu[variant].append((_tree_cpu(pid) - before) / done)
    ratio = [e / b for e, b in zip(rates["embedgate"], rates["bare"], strict=True)]
    hand = [h / b for h, b in zip(rates["hand"], rates["bare"], strict=True)]

    def us(values: list[float]) -> str:
        return f"{statistics.median(values) * 1e6:.0f} µs (spread {min(values) * 1e6:.0f}-" + (
            f"{max(values) * 1e6:.0f})"
        )

    added = [(e - b) * 1e6 for e, b in zip(cpu["embedgate"], cpu["bare"], strict=True)]
    hand_added = [(h - b) * 1e6 for h, b in zip(cpu["hand"], cpu["bare"], strict=True)]
    return [
        Row(
            SECTION,
            f"{kind}: req/s with embedgate / bare",
            statistics.median(ratio),
            "x",
            Target(">=", RPS_TARGET),
            note=f"spread {min(ratio):.2f}-{max(ratio):.2f}; bare "
            f"{statistics.median(rates['bare']):.0f} req/s",
        ),
        Row(
            SECTION,
            f"{kind}: req/s hand-written / bare",
            statistics.median(hand),
            "x",
            note=f"spread {min(hand):.2f}-{max(hand):.2f}",
        ),
        Row(
            SECTION,
            f"{kind}: server CPU per request, bare",
            statistics.median(cpu["bare"]) * 1e6,
            "µs",
            note=us(cpu["bare"]),
        ),
        Row(
            SECTION,
            f"{kind}: server CPU added, embedgate",
            statistics.median(added),
            "µs",
            note=f"spread {min(added):.0f}-{max(added):.0f}",
        ),
        Row(
            SECTION,
            f"{kind}: server CPU added, hand-written",
            statistics.median(hand_added),
            "µs",
            note=f"spread {min(hand_added):.0f}-{max(hand_added):.0f}",
        ),
    ]


def _part(kind: str) -> list[Row]:
    wrk = shutil.which("wrk")
    if wrk is None:
        print(f"bench: skipped {SECTION}: wrk is not installed (apt install wrk)", file=sys.stderr)
        return []
    eng = engine()
    ids_maker = SessionIds(eng.derived_key("embedgate session id"))
    ids = [ids_maker.issue() for _ in range(SESSIONS)]
    with tempfile.TemporaryDirectory() as folder:
        sessions = Path(folder) / "sessions.txt"
        sessions.write_text("\n".join(ids))
        script = Path(folder) / "requests.lua"
        _lua(script, ids, eng.config.cookie_name)
        env = {"BENCH_SESSIONS": str(sessions), "PYTHONPATH": str(ROOT)}
        return _measure(wrk, kind, script, env)


def uvicorn_rows() -> list[Row]:
    return _part("uvicorn, Starlette")


def gunicorn_sync_rows() -> list[Row]:
    return _part("gunicorn sync, Flask")


def gunicorn_gthread_rows() -> list[Row]:
    return _part("gunicorn gthread, Flask")


PARTS = (uvicorn_rows, gunicorn_sync_rows, gunicorn_gthread_rows)


def run() -> list[Row]:
    """Measure, and return the rows for the table."""
    return [row for part in PARTS for row in part()]
