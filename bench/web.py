"""Web section: what the middleware adds to a page, next to a peer that also rewrites bodies.

A 20 KB HTML page, driven in process with no sockets: the ASGI apps through direct
``scope``/``receive``/``send`` calls, the WSGI apps through a direct ``environ`` /
``start_response`` loop. Side by side, in one run: the bare app, the app behind the
middleware injecting a cached token (user from a resolver, warm cache, the session cookie
sent back), and (ASGI) the app behind Starlette's ``GZipMiddleware``. Then the injection
scan of a 1 MB page on its own.
"""

from __future__ import annotations

import asyncio
import io
import sys
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask
from starlette.applications import Starlette
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from bench.table import Row, Target
from bench.timing import per_call
from embedgate import Engine
from embedgate.asgi import EmbedgateMiddleware
from embedgate.web.injection import HtmlInjector
from embedgate.wsgi import EmbedgateWSGIMiddleware

SECTION = "web"
SECRET = "bench-web-secret-Xk3pQ9vM2nL7rT4wB8zC1yD6fG5hJ"
OVERHEAD_TARGET = 20.0  # % of the bare request
SCAN_TARGET = 1.0  # GB/s
BATCH = 200  # requests per timed call (amortises the event loop's own cost)

USER = {
    "sub": "user-0000042",
    "email": "user42@customer-7.example.com",
    "name": "User Number 42",
}


def html_page(size: int, *, head: bool = True) -> bytes:
    """A page of ``size`` bytes: ``</head>`` near the top, or only ``</body>`` at the end."""
    top = b"<!doctype html><html><head><meta charset=utf-8><title>Sales</title>"
    top += b"</head><body>" if head else b"<body>"
    row = b'<tr><td class="c">Region</td><td class="n">12,345.67</td><td>EU</td></tr>\n'
    tail = b"</table></body></html>"
    rows = (size - len(top) - len(tail) - 7) // len(row) + 1
    body = top + b"<table>" + row * rows + tail
    return body[: size - len(tail)] + tail if len(body) > size else body


PAGE = html_page(20 * 1024)
PAGE_LENGTH = ("Content-Length", str(len(PAGE)))
API_ANSWER = {"rows": [{"region": "EU", "total": 12345.67}] * 20}


def _engine() -> Engine:
    return Engine.from_settings(environ={}, secret=SECRET)


def _user(_: object) -> dict[str, str]:
    return USER


def _cookie(engine: Engine) -> bytes:
    """A session id the engine already holds a token for (a warm cache)."""
    session = "bench-session-" + "a" * 32
    engine.token_for(USER, session)
    return f"{engine.config.cookie_name}={session}".encode()


# -- ASGI --------------------------------------------------------------------------------------


def starlette_app() -> Starlette:
    async def page(request: object) -> HTMLResponse:
        return HTMLResponse(PAGE)

    async def api(request: object) -> JSONResponse:
        return JSONResponse(API_ANSWER)

    return Starlette(routes=[Route("/", page), Route("/api", api)])


def _scope(headers: list[tuple[bytes, bytes]], path: str = "/") -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"app.example.com"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


def asgi_timer(app: Any, headers: list[tuple[bytes, bytes]], path: str = "/") -> Callable[[], int]:
    """A callable running ``BATCH`` requests through ``app``; returns the bytes sent."""
    template = _scope(headers, path)
    loop = asyncio.new_event_loop()
    request = {"type": "http.request", "body": b"", "more_body": False}

    async def receive() -> dict[str, Any]:
        return request

    async def batch() -> int:
        sent = 0

        async def send(message: Any) -> None:
            nonlocal sent
            sent += len(message.get("body", b""))

        for _ in range(BATCH):
            scope = dict(template)
            scope["state"] = {}
            await app(scope, receive, send)
        return sent

    return lambda: loop.run_until_complete(batch())


# -- WSGI --------------------------------------------------------------------------------------


def flask_app() -> Flask:
    app = Flask("bench")

    @app.get("/")
    def page() -> tuple[bytes, int, dict[str, str]]:
        return PAGE, 200, {"Content-Type": "text/html; charset=utf-8"}

    return app


def plain_wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """The page from a bare WSGI callable: what the middleware costs on its own."""
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"), PAGE_LENGTH])
    return [PAGE]


def _environ(headers: dict[str, str]) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/",
        "QUERY_STRING": "",
        "SERVER_NAME": "app.example.com",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "app.example.com",
        "HTTP_ACCEPT": "text/html,application/xhtml+xml",
        "HTTP_USER_AGENT": "bench/1.0",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    environ.update(headers)
    return environ


def wsgi_timer(app: Callable[..., Iterable[bytes]], headers: dict[str, str]) -> Callable[[], int]:
    template = _environ(headers)

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        return None

    def batch() -> int:
        sent = 0
        for _ in range(BATCH):
            environ = dict(template)
            environ["wsgi.input"] = io.BytesIO()
            result = app(environ, start_response)
            try:
                for chunk in result:
                    sent += len(chunk)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        return sent

    return batch


# -- measuring ---------------------------------------------------------------------------------


Timer = tuple[Callable[[], int], Callable[[int], bool]]


def _per_request(timers: dict[str, Timer], rounds: int = 9) -> dict[str, float]:
    """Seconds per request of each variant: the best of ``rounds`` runs, taken in turns so
    that a busy moment of the machine weighs on every variant alike (the ratios matter)."""
    for name, (timer, expected) in timers.items():
        sent = timer()
        assert expected(sent // BATCH), f"{name}: unexpected body size {sent // BATCH}"
    best = dict.fromkeys(timers, float("inf"))
    for _ in range(rounds):
        for name, (timer, _) in timers.items():
            best[name] = min(best[name], per_call(timer, number=3, repeat=1) / BATCH)
    return best


def _injected(size: int) -> bool:
    return len(PAGE) + 200 < size < len(PAGE) + 2000


def _rows(label: str, bare: float, gate: float, peer: tuple[str, float] | None) -> list[Row]:
    overhead = gate - bare
    rows = [
        Row(SECTION, f"{label}: bare 20 KB page", bare * 1e6, "µs/req"),
        Row(SECTION, f"{label}: + embedgate (cached token)", gate * 1e6, "µs/req"),
    ]
    if peer is not None:
        rows.append(Row(SECTION, f"{label}: + {peer[0]}", peer[1] * 1e6, "µs/req"))
    rows.append(
        Row(
            SECTION,
            f"{label}: embedgate overhead",
            100 * overhead / bare,
            "%",
            Target("<=", OVERHEAD_TARGET),
            note=f"{overhead * 1e6:.1f} µs over the bare request",
        )
    )
    if peer is not None:
        rows.append(
            Row(
                SECTION,
                f"{label}: embedgate overhead / {peer[0]} overhead",
                overhead / (peer[1] - bare),
                "x",
                Target("<=", 1.0),
                note=f"{peer[0]} adds {(peer[1] - bare) * 1e6:.0f} µs",
            )
        )
    return rows


def asgi_rows() -> list[Row]:
    engine = _engine()
    cookie = [(b"cookie", _cookie(engine))]
    app = starlette_app()
    gated = EmbedgateMiddleware(app, engine, user_resolver=_user)
    gzip_headers = [*cookie, (b"accept-encoding", b"gzip, deflate, br")]
    t = _per_request(
        {
            "bare": (asgi_timer(app, cookie), lambda n: n == len(PAGE)),
            "gate": (asgi_timer(gated, cookie), _injected),
            "gzip": (asgi_timer(GZipMiddleware(app), gzip_headers), lambda n: n < len(PAGE)),
            # A response that is not a page: what every API call pays for the middleware.
            "api": (asgi_timer(app, cookie, "/api"), lambda n: n > 0),
            "api-gate": (asgi_timer(gated, cookie, "/api"), lambda n: n > 0),
        }
    )
    rows = _rows("starlette", t["bare"], t["gate"], ("GZipMiddleware", t["gzip"]))
    rows.append(
        Row(
            SECTION,
            "starlette: JSON response passed through, overhead",
            (t["api-gate"] - t["api"]) * 1e6,
            "µs/req",
            note=f"bare JSON request {t['api'] * 1e6:.1f} µs",
        )
    )
    return rows


def wsgi_rows() -> list[Row]:
    engine = _engine()
    cookie = {"HTTP_COOKIE": _cookie(engine).decode()}
    app = flask_app()
    gated = EmbedgateWSGIMiddleware(app, engine, user_resolver=_user)
    plain_gated = EmbedgateWSGIMiddleware(plain_wsgi_app, engine, user_resolver=_user)
    t = _per_request(
        {
            "bare": (wsgi_timer(app, cookie), lambda n: n == len(PAGE)),
            "gate": (wsgi_timer(gated, cookie), _injected),
            "plain": (wsgi_timer(plain_wsgi_app, cookie), lambda n: n == len(PAGE)),
            "plain-gate": (wsgi_timer(plain_gated, cookie), _injected),
        }
    )
    rows = _rows("flask", t["bare"], t["gate"], None)
    rows.append(
        Row(
            SECTION,
            "plain WSGI callable: embedgate overhead",
            (t["plain-gate"] - t["plain"]) * 1e6,
            "µs/req",
            note="the same work without a framework around it",
        )
    )
    return rows


def scan_rows() -> list[Row]:
    size = 1024 * 1024
    snippet = b'<script type="application/json" id="embedgate-token">{}</script>'
    rows = []
    for where, page in (("</head> near the top", html_page(size)),
                        ("only </body> at the end", html_page(size, head=False))):  # fmt: skip

        def scan(page: bytes = page) -> bytes:
            injector = HtmlInjector(limit=size)
            injector.feed(page)
            assert injector.insertion_point() is not None
            return injector.finish(snippet)

        seconds = per_call(scan, number=20)
        rows.append(
            Row(
                SECTION,
                f"injection scan, 1 MB page, {where}",
                size / seconds / 1e9,
                "GB/s",
                Target(">=", SCAN_TARGET),
                note=f"{seconds * 1e3:.2f} ms per page, splice included",
            )
        )
    return rows


def run() -> list[Row]:
    """Measure, and return the rows for the table."""
    return asgi_rows() + wsgi_rows() + scan_rows()
