"""Web section: what embedgate adds to a request, next to what an app would write by hand.

In process, no sockets: the ASGI apps through direct ``scope``/``receive``/``send`` calls,
the WSGI apps through a direct ``environ`` / ``start_response`` loop. The peers are the
hand-written versions of the same job (see :mod:`bench.handwritten`): a session cookie →
a pre-rendered snippet in a dict → ``find(b"</head>")`` → splice → fix Content-Length, the
same for WSGI, a token endpoint with the same header checks, and one that signs a JWT
with ``jwt.encode`` on every request.

Requests are realistic: a 20 KB page of varied rows, a ``Cookie`` header with other
cookies in it, the session drawn at random among ``SESSIONS`` live sessions (each with a
warm token), the user an object whose ``embed_principal()`` builds a new Principal on
every request, the garbage collector on. Variants run in interleaved rounds; each ratio
is the median of the per-round ratios, with its spread (min-max) in the note.
"""

from __future__ import annotations

import asyncio
import gc
import io
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, request
from starlette.applications import Starlette
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from bench import handwritten
from bench.table import Row, Target
from embedgate import Engine, Principal
from embedgate.asgi import EmbedgateMiddleware
from embedgate.integrations.flask import EmbedGate
from embedgate.web.session import SessionIds
from embedgate.wsgi import EmbedgateWSGIMiddleware

SECTION = "web"
SECRET = "bench-web-secret-Xk3pQ9vM2nL7rT4wB8zC1yD6fG5hJ"
SESSIONS = 2_000  # live sessions the requests are drawn from
USERS = 500
BATCH = 100  # requests per timed batch
ROUNDS = 15
PEER_RATIO = 1.5  # embedgate's added cost / the hand-written one's
SIZE_RATIO = 1.10  # a 1 MB page / a 20 KB page, </head> in the first 4 KB

_REGIONS = ("EU", "US", "APAC", "LATAM")


def html_page(size: int) -> bytes:
    """A page of ``size`` bytes: a real-looking head, ``</head>`` within the first 4 KB,
    then a table of rows that differ (numbers, names, classes)."""
    rnd = random.Random(size)
    head = (
        b"<!doctype html><html lang=en><head><meta charset=utf-8>"
        b'<meta name="viewport" content="width=device-width, initial-scale=1">'
        b"<title>Sales by region</title>"
        b'<link rel="stylesheet" href="/static/app.css?v=3f2a">'
        b'<script src="/static/app.js?v=3f2a" defer></script>'
        b"<style>table{border-collapse:collapse}td{padding:2px 6px}.n{text-align:right}</style>"
        b"</head><body><header><nav><a href=/>Home</a> <a href=/reports>Reports</a></nav>"
        b"</header><main><h1>Sales</h1><table>"
    )
    tail = b"</table></main><footer>&copy; Example</footer></body></html>"
    rows = []
    total = len(head) + len(tail)
    n = 0
    while total < size:
        row = (
            f'<tr class="r{n % 7}"><td>{_REGIONS[n % 4]}-{rnd.randrange(10_000)}</td>'
            f'<td class="n">{rnd.random() * 1e5:,.2f}</td><td>{rnd.choice("ABCDEFG")}'
            f"{rnd.randrange(100)}</td></tr>\n"
        ).encode()
        rows.append(row)
        total += len(row)
        n += 1
    body = head + b"".join(rows)
    return body[: size - len(tail)] + tail


PAGE = html_page(20 * 1024)
BIG_PAGE = html_page(1024 * 1024)
API_ANSWER = {"rows": [{"region": "EU", "total": 12345.67}] * 20}


@dataclass
class User:
    """An app's user object: the Principal is built anew on every call, as apps do."""

    id: int
    tenant: str = field(init=False)

    def __post_init__(self) -> None:
        self.tenant = f"customer-{self.id % 97}"

    def embed_principal(self) -> Principal:
        n = self.id
        return Principal(
            subject=f"user-{n:07d}",
            email=f"user{n}@{self.tenant}.example.com",
            tenant=self.tenant,
            roles=("viewer", "analyst") if n % 3 else ("viewer",),
            attributes={"region": _REGIONS[n % 4], "cost_center": f"CC-{n % 500:04d}"},
        )


def engine(cache_size: int = 10_000) -> Engine:
    return Engine.from_settings(
        environ={},
        secret=SECRET,
        cache_size=cache_size,
        rate_limit=1_000_000,
        user_rate_limit=1_000_000,
    )


@dataclass
class Population:
    """Live sessions: embedgate-issued ids, each with its user and a warm token."""

    ids: list[str]
    users: list[User]
    cookie_name: str
    order: list[int]  # the random draw, the same for every variant

    def cookie(self, i: int, name: str | None = None) -> bytes:
        return (
            f"_ga=GA1.2.1234567890.1700000000; csrftoken=Zx8vQ2mN7pL4kR9tW3yB6cD1fG5hJ0sA; "
            f"{name or self.cookie_name}={self.ids[i]}; theme=dark"
        ).encode()


def population(eng: Engine, sessions: int = SESSIONS, draws: int = 50_000) -> Population:
    ids_maker = SessionIds(eng.derived_key("embedgate session id"))
    users = [User(n) for n in range(USERS)]
    ids = [ids_maker.issue() for _ in range(sessions)]
    session_users = [users[n % USERS] for n in range(sessions)]
    for sid, user in zip(ids, session_users, strict=True):
        eng.service.get_token(user.embed_principal(), sid)
    rnd = random.Random(15)
    order = [rnd.randrange(sessions) for _ in range(draws)]
    return Population(ids, session_users, eng.config.cookie_name, order)


# -- apps --------------------------------------------------------------------------------------


def starlette_app(page: bytes = PAGE) -> Starlette:
    async def html(request: object) -> HTMLResponse:
        return HTMLResponse(page)

    async def api(request: object) -> JSONResponse:
        return JSONResponse(API_ANSWER)

    return Starlette(routes=[Route("/", html), Route("/api", api)])


def flask_app(page: bytes = PAGE) -> Flask:
    app = Flask("bench")

    @app.get("/")
    def html() -> tuple[bytes, int, dict[str, str]]:
        return page, 200, {"Content-Type": "text/html; charset=utf-8"}

    return app


def flask_extension_app(eng: Engine, page: bytes = PAGE) -> Flask:
    """What the README recommends: ``EmbedGate(app)``, the user from a user loader."""
    app = flask_app(page)
    ext = EmbedGate()
    ext.init_app(app, engine=eng)

    @ext.user_loader
    def load_user() -> Any:
        return request.environ["bench.user"]

    return app


# -- drivers -----------------------------------------------------------------------------------


def _scope(path: str, method: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


BROWSER = [
    (b"host", b"app.example.com"),
    (b"accept", b"text/html,application/xhtml+xml"),
    (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64) bench/1.0"),
    (b"accept-language", b"en-GB,en;q=0.9"),
]
FETCH = [
    (b"host", b"app.example.com"),
    (b"accept", b"application/json"),
    (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64) bench/1.0"),
    (b"origin", b"http://app.example.com"),
    (b"sec-fetch-site", b"same-origin"),
    (b"x-embedgate", b"1"),
    (b"content-type", b"application/json"),
]

Batch = Callable[[int], int]  # (start in the draw) -> bytes sent


def asgi_batch(
    app: Any, pop: Population, path: str = "/", method: str = "GET", cookie: str | None = None
) -> Batch:
    """Runs ``BATCH`` requests through ``app`` (sessions in the population's draw order)."""
    loop = asyncio.new_event_loop()
    base = FETCH if method == "POST" else BROWSER
    headers = [[*base, (b"cookie", pop.cookie(i, cookie))] for i in range(len(pop.ids))]
    request = {"type": "http.request", "body": b"{}", "more_body": False}

    async def receive() -> dict[str, Any]:
        return request

    async def run(start: int) -> int:
        sent = 0

        async def send(message: Any) -> None:
            nonlocal sent
            sent += len(message.get("body", b""))

        order = pop.order
        for k in range(start, start + BATCH):
            i = order[k % len(order)]
            scope = _scope(path, method, headers[i])
            scope["state"] = {"embedgate_user": pop.users[i]}
            await app(scope, receive, send)
        return sent

    return lambda start: loop.run_until_complete(run(start))


def _environ(i: int, pop: Population, cookie: str | None) -> dict[str, Any]:
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
        "HTTP_USER_AGENT": "Mozilla/5.0 (X11; Linux x86_64) bench/1.0",
        "HTTP_ACCEPT_LANGUAGE": "en-GB,en;q=0.9",
        "HTTP_COOKIE": pop.cookie(i, cookie).decode(),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    return environ


def wsgi_batch(
    app: Callable[..., Iterable[bytes]], pop: Population, cookie: str | None = None
) -> Batch:
    templates = [_environ(i, pop, cookie) for i in range(len(pop.ids))]

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        return None

    def run(start: int) -> int:
        sent = 0
        order = pop.order
        for k in range(start, start + BATCH):
            i = order[k % len(order)]
            environ = dict(templates[i])
            environ["wsgi.input"] = io.BytesIO()
            environ["embedgate.user"] = environ["bench.user"] = pop.users[i]
            result = app(environ, start_response)
            try:
                for chunk in result:
                    sent += len(chunk)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        return sent

    return run


# -- measuring ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """What one request of a variant must send (bytes), to be sure it did the job."""

    low: int
    high: int

    def __call__(self, sent: int) -> bool:
        return self.low <= sent <= self.high


def injected(page: bytes = PAGE) -> Check:
    return Check(len(page) + 200, len(page) + 2_000)


def exact(page: bytes = PAGE) -> Check:
    return Check(len(page), len(page))


def rounds(variants: dict[str, tuple[Batch, Check]], n: int = ROUNDS) -> dict[str, list[float]]:
    """CPU seconds per request of each variant in each of ``n`` interleaved rounds (GC on)."""
    for name, (batch, check) in variants.items():
        sent = batch(0)
        assert check(sent // BATCH), f"{name}: unexpected body size {sent // BATCH}"
    times: dict[str, list[float]] = {name: [] for name in variants}
    start = BATCH
    for _ in range(n):
        gc.collect()
        for name, (batch, _) in variants.items():
            began = time.process_time()  # CPU time: other processes' load is not ours
            batch(start)
            times[name].append((time.process_time() - began) / BATCH)
        start += BATCH
    return times


def median(values: list[float]) -> float:
    return statistics.median(values)


def spread(values: list[float]) -> str:
    return f"{min(values):.2f}-{max(values):.2f}"


def added(times: dict[str, list[float]], variant: str, bare: str) -> list[float]:
    return [v - b for v, b in zip(times[variant], times[bare], strict=True)]


def ratio_row(
    label: str,
    times: dict[str, list[float]],
    ours: str,
    peer: str,
    bare: str,
    bound: float,
    peer_label: str,
) -> Row:
    """Our added cost over the peer's, round by round (paired): median, and the spread."""
    ratios = [
        o / p if p > 0 else float("inf")
        for o, p in zip(added(times, ours, bare), added(times, peer, bare), strict=True)
    ]
    ours_us = median(added(times, ours, bare)) * 1e6
    peer_us = median(added(times, peer, bare)) * 1e6
    return Row(
        SECTION,
        label,
        median(ratios),
        "x",
        Target("<=", bound),
        note=f"+{ours_us:.1f} µs vs {peer_label} +{peer_us:.1f} µs; spread {spread(ratios)}",
    )


def time_rows(label: str, times: dict[str, list[float]], names: dict[str, str]) -> list[Row]:
    return [
        Row(
            SECTION,
            f"{label}: {text}",
            median(times[key]) * 1e6,
            "µs/req",
            note=f"spread {spread([t * 1e6 for t in times[key]])} µs",
        )
        for key, text in names.items()
    ]


# -- sections ----------------------------------------------------------------------------------


def asgi_rows() -> list[Row]:
    eng = engine()
    pop = population(eng)
    app = starlette_app()
    gated = EmbedgateMiddleware(app, eng)
    snippets = handwritten.snippets(pop.ids, SECRET)
    hand = handwritten.AsgiInjector(app, snippets)
    signing = handwritten.AsgiInjector(app, handwritten.Signing(pop.ids, SECRET))
    t = rounds(
        {
            "bare": (asgi_batch(app, pop), exact()),
            "embedgate": (asgi_batch(gated, pop), injected()),
            "hand": (asgi_batch(hand, pop, cookie=handwritten.COOKIE), injected()),
            "jwt": (asgi_batch(signing, pop, cookie=handwritten.COOKIE), injected()),
        }
    )
    names = {
        "bare": "bare 20 KB page",
        "embedgate": "+ EmbedgateMiddleware",
        "hand": "+ hand-written middleware, dict-cached snippet",
        "jwt": "+ hand-written middleware, jwt.encode per request",
    }
    return [
        *time_rows("ASGI (Starlette)", t, names),
        ratio_row(
            "ASGI page: embedgate / hand-written added cost",
            t,
            "embedgate",
            "hand",
            "bare",
            PEER_RATIO,
            "hand-written",
        ),
    ]


def endpoint_rows() -> list[Row]:
    eng = engine()
    pop = population(eng)
    bare = handwritten.json_app(API_ANSWER)
    gated = EmbedgateMiddleware(bare, eng)
    tokens = handwritten.tokens(pop.ids, SECRET)
    hand = handwritten.TokenEndpoint(bare, tokens)
    path = eng.config.prefix + "/token"
    t = rounds(
        {
            "bare": (asgi_batch(bare, pop, path, "POST"), Check(10, 10_000)),
            "embedgate": (asgi_batch(gated, pop, path, "POST"), Check(100, 10_000)),
            "hand": (
                asgi_batch(hand, pop, path, "POST", cookie=handwritten.COOKIE),
                Check(100, 10_000),
            ),
        }
    )
    names = {
        "bare": "bare JSON route",
        "embedgate": "embedgate token endpoint",
        "hand": "hand-written token endpoint, same checks",
    }
    return [
        *time_rows("token endpoint (ASGI)", t, names),
        ratio_row(
            "token endpoint: embedgate / hand-written added cost",
            t,
            "embedgate",
            "hand",
            "bare",
            PEER_RATIO,
            "hand-written",
        ),
    ]


def wsgi_rows() -> list[Row]:
    eng = engine()
    pop = population(eng)
    app = flask_app()
    gated = EmbedgateWSGIMiddleware(app, eng)
    extension = flask_extension_app(eng)
    bare_ext = flask_app()
    snippets = handwritten.snippets(pop.ids, SECRET)
    hand = handwritten.WsgiInjector(app, snippets)
    signing = handwritten.WsgiInjector(app, handwritten.Signing(pop.ids, SECRET))
    t = rounds(
        {
            "bare": (wsgi_batch(app, pop), exact()),
            "middleware": (wsgi_batch(gated, pop), injected()),
            "bare-ext": (wsgi_batch(bare_ext, pop), exact()),
            "extension": (wsgi_batch(extension, pop), injected()),
            "hand": (wsgi_batch(hand, pop, cookie=handwritten.COOKIE), injected()),
            "jwt": (wsgi_batch(signing, pop, cookie=handwritten.COOKIE), injected()),
        }
    )
    names = {
        "bare": "bare 20 KB page",
        "middleware": "+ EmbedgateWSGIMiddleware",
        "extension": "+ EmbedGate(app) extension",
        "hand": "+ hand-written WSGI middleware, dict-cached snippet",
        "jwt": "+ hand-written WSGI middleware, jwt.encode per request",
    }
    ext_vs_mw = [
        e / m if m > 0 else float("inf")
        for e, m in zip(
            added(t, "extension", "bare-ext"), added(t, "middleware", "bare"), strict=True
        )
    ]
    return [
        *time_rows("WSGI (Flask)", t, names),
        ratio_row(
            "WSGI page: middleware / hand-written added cost",
            t,
            "middleware",
            "hand",
            "bare",
            PEER_RATIO,
            "hand-written",
        ),
        ratio_row(
            "Flask extension / hand-written added cost",
            t,
            "extension",
            "hand",
            "bare",
            PEER_RATIO,
            "hand-written",
        ),
        Row(
            SECTION,
            "Flask extension / WSGI middleware added cost",
            median(ext_vs_mw),
            "x",
            Target("<=", 1.0),
            note=f"spread {spread(ext_vs_mw)}",
        ),
    ]


def size_rows() -> list[Row]:
    """A 1 MB page whose </head> is in the first 4 KB costs what a 20 KB page does."""
    eng = engine()
    pop = population(eng)
    small, big = starlette_app(PAGE), starlette_app(BIG_PAGE)
    t = rounds(
        {
            "small": (asgi_batch(small, pop), exact()),
            "small-gate": (asgi_batch(EmbedgateMiddleware(small, eng), pop), injected()),
            "big": (asgi_batch(big, pop), exact(BIG_PAGE)),
            "big-gate": (asgi_batch(EmbedgateMiddleware(big, eng), pop), injected(BIG_PAGE)),
        },
        n=9,
    )
    ratios = [
        b / s if s > 0 else float("inf")
        for b, s in zip(added(t, "big-gate", "big"), added(t, "small-gate", "small"), strict=True)
    ]
    return [
        Row(
            SECTION,
            "1 MB page / 20 KB page, embedgate's added cost",
            median(ratios),
            "x",
            Target("<=", SIZE_RATIO),
            note=f"</head> in the first 4 KB; spread {spread(ratios)}",
        )
    ]


PARTS = (asgi_rows, endpoint_rows, wsgi_rows, size_rows)


def run() -> list[Row]:
    """Measure, and return the rows for the table."""
    return [row for part in PARTS for row in part()]
