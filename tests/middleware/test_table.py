"""One table of responses through both shells.

Every case runs through the ASGI middleware (direct ``scope``/``receive``/``send`` calls
with the pathsend extension, and ``httpx.ASGITransport``) and the WSGI middleware (a
direct PEP 3333 loop and ``werkzeug.test.Client``, each app answering as a list, a lazy
generator and through ``write()``), then through uvicorn and gunicorn on 127.0.0.1, and
in the frameworks' own apps under their servers (Litestar: uvicorn, Quart: hypercorn).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.util import FileWrapper

import httpx
import pytest

from embedgate import Engine
from embedgate.asgi import EmbedgateMiddleware
from embedgate.wsgi import EmbedgateWSGIMiddleware
from tests.middleware.cases import (
    CASES,
    WSGI_STYLES,
    Case,
    WSGICaseApp,
    asgi_app,
    case_path,
    make_engine,
)
from tests.middleware.checks import check_injected, check_private, check_untouched, find_snippets
from tests.middleware.drivers import (
    Result,
    asgi_direct,
    asgi_httpx,
    http_request,
    wsgi_direct,
    wsgi_werkzeug,
)
from tests.support.net import PYTHON, free_port, run_server

Headers = list[tuple[str, str]]


def _lower(pairs: Iterable[tuple[Any, Any]]) -> Headers:
    def text(value: Any) -> str:
        return value.decode("latin-1") if isinstance(value, bytes) else value

    return [(text(n).lower(), text(v)) for n, v in pairs]


class ASGIRecorder:
    """Sits between the middleware and the app; keeps the headers the app sent."""

    def __init__(self) -> None:
        self.headers: Headers | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def record(message: Any) -> None:
            if message["type"] == "http.response.start":
                self.headers = _lower(message["headers"])
            await send(message)

        await asgi_app(scope, receive, record)


class WSGIRecorder:
    """Same for WSGI; returns the app's iterable itself (file wrappers stay what they are)."""

    def __init__(self) -> None:
        self.app = WSGICaseApp()
        self.headers: Headers | None = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        def record(status: str, headers: Headers, exc_info: Any = None) -> Any:
            self.headers = _lower(headers)
            return start_response(status, headers, exc_info)

        return self.app(environ, record)


@pytest.fixture(scope="module")
def engine() -> Engine:
    return make_engine()


def _judge(engine: Engine, case: Case, result: Result, app_headers: Headers | None) -> bool:
    """Check ``result`` against the case; True if the page was injected."""
    if case.expect == "inject":
        check_injected(engine, case, result)
        return True
    if case.expect == "private":
        check_private(case, result)
        return False
    check_untouched(case, result, app_headers)
    return False


# -- ASGI, in process --------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_asgi_direct(engine: Engine, case: Case) -> None:
    recorder = ASGIRecorder()
    result = asgi_direct(EmbedgateMiddleware(recorder, engine), case.method, case_path(case))
    sent = [m["type"] for m in result.messages]
    if case.file is not None:
        # The server offers http.response.pathsend: the file is never read into memory,
        # so even an HTML file is left alone, and the pathsend message reaches the server.
        assert "http.response.pathsend" in sent
        check_untouched(case, result, recorder.headers)
        return
    _judge(engine, case, result, recorder.headers)
    if case.name in ("stream-over-limit", "event-stream"):
        # Passed through as a stream, not collected into one message.
        assert sent.count("http.response.body") > 1
    if case.name == "event-stream":
        assert [m["body"] for m in result.messages[1:]] == list(case.chunks)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_asgi_httpx(engine: Engine, case: Case) -> None:
    recorder = ASGIRecorder()
    result = asgi_httpx(EmbedgateMiddleware(recorder, engine), case.method, case_path(case))
    _judge(engine, case, result, recorder.headers)


# -- WSGI, in process --------------------------------------------------------------------------


@pytest.mark.parametrize("style", WSGI_STYLES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_wsgi_direct(engine: Engine, case: Case, style: str) -> None:
    recorder = WSGIRecorder()
    middleware = EmbedgateWSGIMiddleware(recorder, engine)
    result = wsgi_direct(middleware, case.method, case_path(case, style))
    injected = _judge(engine, case, result, recorder.headers)
    if case.file is not None:
        if not injected:  # returned as the app made it: the server may sendfile() it
            assert isinstance(result.iterable, FileWrapper)
    else:
        assert recorder.app.closed == [case.name]  # close() called, exactly once
    if case.name in ("stream-over-limit", "event-stream"):
        assert len(result.parts) > 1  # streamed on, not collected into one piece
    if case.name == "event-stream":
        assert result.parts == list(case.chunks)


@pytest.mark.parametrize("style", WSGI_STYLES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_wsgi_werkzeug(engine: Engine, case: Case, style: str) -> None:
    recorder = WSGIRecorder()
    middleware = EmbedgateWSGIMiddleware(recorder, engine)
    result = wsgi_werkzeug(middleware, case.method, case_path(case, style))
    _judge(engine, case, result, recorder.headers)
    if case.file is None:
        assert recorder.app.closed == [case.name]


# -- real servers on 127.0.0.1 -----------------------------------------------------------------


# Each served shell: the app factory a real server imports, the server, and the WSGI
# answering styles its app takes (None: the query string is not read).
SERVED: dict[str, tuple[str, tuple[str | None, ...]]] = {
    "uvicorn": ("tests.middleware.served:asgi", (None,)),
    "gunicorn": ("tests.middleware.served:wsgi()", WSGI_STYLES),
    "litestar-uvicorn": ("tests.middleware.served:litestar", (None,)),
    "quart-hypercorn": ("tests.middleware.served:quart()", (None,)),
}


def _argv(name: str, port: int) -> list[str]:
    target = SERVED[name][0]
    if name == "gunicorn":
        argv = [PYTHON, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1"]
        return [*argv, "--log-level", "warning", target]
    if name == "quart-hypercorn":
        argv = [PYTHON, "-m", "hypercorn", "--bind", f"127.0.0.1:{port}", "--workers", "1"]
        return [*argv, "--log-level", "warning", target]
    argv = [PYTHON, "-m", "uvicorn", "--factory", target]
    return [*argv, "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]


@pytest.fixture(scope="module")
def servers() -> Iterator[Callable[[str], str]]:
    """The base URL of a served shell, each server started on first use."""
    urls: dict[str, str] = {}
    with contextlib.ExitStack() as stack:

        def url(name: str) -> str:
            if name not in urls:
                port = free_port()
                stack.enter_context(run_server(_argv(name, port), port))
                urls[name] = f"http://127.0.0.1:{port}"
            return urls[name]

        yield url


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


TARGETS = [(name, style) for name, (_, styles) in SERVED.items() for style in styles]


@pytest.mark.parametrize(
    ("server", "style"), TARGETS, ids=[f"{n}-{s}" if s else n for n, s in TARGETS]
)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_served(
    engine: Engine,
    servers: Callable[[str], str],
    http: httpx.Client,
    case: Case,
    server: str,
    style: str | None,
) -> None:
    """The table through real servers: the raw shells under uvicorn and gunicorn, the
    Litestar plugin under uvicorn, the Quart extension under hypercorn."""
    result = http_request(http, case.method, servers(server) + case_path(case, style))
    _judge(engine, case, result, None)


# -- beyond the table --------------------------------------------------------------------------


def test_asgi_stacked_middlewares_inject_once(engine: Engine) -> None:
    app = EmbedgateMiddleware(EmbedgateMiddleware(asgi_app, engine), engine)
    result = asgi_direct(app, "GET", "/case/html-head")
    assert len(find_snippets(result.body)) == 1
    assert len(result.all("set-cookie")) == 1


def test_wsgi_stacked_middlewares_inject_once(engine: Engine) -> None:
    app = EmbedgateWSGIMiddleware(EmbedgateWSGIMiddleware(WSGICaseApp(), engine), engine)
    result = wsgi_direct(app, "GET", "/case/html-head")
    assert len(find_snippets(result.body)) == 1
    assert len(result.all("set-cookie")) == 1
