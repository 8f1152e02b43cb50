"""The example apps under a real multi-worker server (uvicorn or gunicorn), and a client
that behaves like one browser but opens a new connection for every request, so the kernel
hands its requests to different workers.

Each response names its worker (the examples' ``X-Served-By`` header, on with
``EXAMPLE_SERVED_BY=1``) and carries a token. A JWT signed with the test secret is verified
and known by its ``jti``; an opaque provider token by its own value. Every mint is served
to at least the request that caused it, so when every answer of a session is read, the
number of distinct ``jti`` is the number of mints for that session.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen
from typing import IO

import httpx

from embedgate.engine import derive_key
from embedgate.web.session import SessionIds
from tests.conftest import TEST_SECRET
from tests.integrations.helpers import claims, page_token
from tests.support.net import PYTHON, free_port, run_server

KINDS = ("fastapi", "flask")
WORKERS = 4
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
COOKIE = "embedgate_session"
TOKEN_HEADERS = {"X-Embedgate": "1"}


def server_argv(kind: str, port: int, workers: int = WORKERS) -> list[str]:
    """``uvicorn app:app --workers N`` for FastAPI, ``gunicorn -w N app:app`` for Flask."""
    if kind == "fastapi":
        return [
            PYTHON, "-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers), "--no-access-log",
        ]  # fmt: skip
    if kind == "flask":
        return [PYTHON, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}", "app:app"]
    raise ValueError(f"no example called {kind!r}")


def app_env(redis_url: str | None) -> dict[str, str]:
    """One signing secret and one Redis for every worker (no Redis: in-process caches)."""
    return {
        "EMBEDGATE_SECRET": TEST_SECRET,
        "EMBEDGATE_REDIS_URL": redis_url or "",
        # The per-session limit is per process; these tests send more than a browser would.
        "EMBEDGATE_RATE_LIMIT": "100000",
        "EMBEDGATE_USER_RATE_LIMIT": "100000",
        "EXAMPLE_SERVED_BY": "1",
        "SESSION_SECRET": "scaling-session-key",
        "FLASK_SECRET_KEY": "scaling-flask-key",
    }


@dataclass(frozen=True)
class Answer:
    """What one request got: which worker answered, the token, and (a JWT of ours) its
    ``jti`` and ``sub``; an opaque token is its own ``jti``, with no known subject."""

    worker: str
    jti: str
    subject: str | None
    via: str  # "page" or "endpoint"
    token: str = field(repr=False)


def workers(answers: list[Answer]) -> set[str]:
    return {answer.worker for answer in answers}


def jtis(answers: list[Answer]) -> set[str]:
    return {answer.jti for answer in answers}


def subjects(answers: list[Answer]) -> set[str | None]:
    return {answer.subject for answer in answers}


@dataclass(frozen=True)
class App:
    base_url: str
    process: Popen[bytes]
    opaque: bool = False

    def browser(self) -> Browser:
        return Browser(self.base_url, opaque=self.opaque)


def new_connections(base_url: str) -> httpx.Client:
    """A client that keeps no connection alive: each request connects anew."""
    return httpx.Client(
        base_url=base_url, timeout=10, limits=httpx.Limits(max_keepalive_connections=0)
    )


class Browser:
    """One cookie jar, so one session; every request on a new connection."""

    def __init__(self, base_url: str, *, opaque: bool = False) -> None:
        self.client = new_connections(base_url)
        self.opaque = opaque

    def log_in(self, name: str) -> Answer:
        """Log in and load the page once, as a browser does after the redirect: that first
        page sets embedgate's session cookie (and mints the session's first token)."""
        self.log_in_only(name)
        return self.page()

    def log_in_only(self, name: str) -> None:
        response = self.client.post("/login", data={"username": name, "password": "demo"})
        assert response.status_code == 303, response.text

    def preset_session(self, secret: str = TEST_SECRET) -> str:
        """Pick the session id before any page has: embedgate adopts an id it issued (one
        MAC'd with the key every worker derives from ``secret``, the engine's secret
        material), so a session's very first requests can reach every worker at once."""
        key = derive_key(secret.encode("utf-8"), "embedgate session id")
        session_id = SessionIds(key).issue()
        self.client.cookies.set(COOKIE, session_id)
        return session_id

    def log_out(self) -> None:
        assert self.client.post("/logout").status_code == 303

    @property
    def session_id(self) -> str:
        value = self.client.cookies.get(COOKIE)
        assert value, "no embedgate session cookie yet"
        return value

    def _request(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        # One client shared by many threads: httpx may lose a connection another thread
        # closed (EBADF) before any byte reached the server. That is the client's race, not
        # an answer of the app under test: try such a request once more.
        try:
            return self.client.request(method, path, **kwargs)  # type: ignore[arg-type]
        except (httpx.ReadError, httpx.WriteError, httpx.ConnectError):
            return self.client.request(method, path, **kwargs)  # type: ignore[arg-type]

    def page(self) -> Answer:
        response = self._request("GET", "/")
        assert response.status_code == 200, response.text
        token = page_token(response.text)
        assert token is not None, "the page carries no token"
        return self._answer(response, token, "page")

    def endpoint(self) -> Answer:
        response = self._request("POST", "/_embedgate/token", headers=TOKEN_HEADERS)
        assert response.status_code == 200, response.text
        return self._answer(response, response.json()["token"], "endpoint")

    def spread(self, count: int, *, threads: int = 8) -> list[Answer]:
        """``count`` requests, pages and token endpoint alternately, ``threads`` at a time."""
        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(lambda i: self.page() if i % 2 else self.endpoint(), range(count)))

    def spread_over(
        self, minimum: int = 3, *, count: int = 60, limit: int = 240, threads: int = 8
    ) -> list[Answer]:
        """At least ``count`` requests, more (up to ``limit``) until ``minimum`` workers
        have answered: the kernel's choice of worker is not ours to make."""
        answers = self.spread(count, threads=threads)
        while len(workers(answers)) < minimum and len(answers) < limit:
            answers += self.spread(count // 2, threads=threads)
        assert len(workers(answers)) >= minimum, f"only {workers(answers)} answered"
        return answers

    def _answer(self, response: httpx.Response, token: str, via: str) -> Answer:
        worker = response.headers["x-served-by"]
        if self.opaque:
            return Answer(worker, token, None, via, token)
        verified = claims(token)  # signed with the one secret every worker shares
        return Answer(worker, verified["jti"], verified["sub"], via, token)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def wait_for_workers(base_url: str, count: int = WORKERS, timeout: float = 30.0) -> None:
    """Block until ``count`` distinct workers have answered (the master may accept
    connections before its workers have imported the app)."""
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    with new_connections(base_url) as client, ThreadPoolExecutor(16) as pool:
        while len(seen) < count:
            assert time.monotonic() < deadline, f"only {len(seen)} of {count} workers answered"
            answers = pool.map(lambda _: client.get("/login").headers["x-served-by"], range(32))
            seen.update(answers)


@contextlib.contextmanager
def running_app(
    kind: str,
    redis_url: str | None,
    *,
    workers: int = WORKERS,
    env: Mapping[str, str] | None = None,
    opaque: bool = False,
    log: IO[bytes] | None = None,
    start_timeout: float = 30.0,
) -> Iterator[App]:
    """The example ``kind`` under its multi-worker server on a free 127.0.0.1 port, every
    worker up; stopped (with its workers) on exit. ``env`` adds to :func:`app_env`;
    ``opaque`` says the configured provider hands out tokens we cannot verify; ``log``
    receives the server's output (tracebacks included)."""
    port = free_port()
    argv = server_argv(kind, port, workers)
    full_env = {**app_env(redis_url), **(env or {})}
    with run_server(
        argv, port, cwd=str(EXAMPLES / kind), env=full_env, log=log, timeout=start_timeout
    ) as process:
        base_url = f"http://127.0.0.1:{port}"
        wait_for_workers(base_url, workers, timeout=start_timeout)
        yield App(base_url, process, opaque)
