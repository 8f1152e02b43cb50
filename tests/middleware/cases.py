"""The one table of responses both shells are checked against, and the two tiny apps that
produce them: a raw ASGI callable and a raw WSGI callable, each serving ``/case/<name>``.

Each app hands its user over the way an app would during the request (ASGI:
``request.state.embedgate_user``; WSGI: ``environ["embedgate.user"]``), so the middleware
must read it at response time. The WSGI app answers in the style named by the query string
(``?style=iterable|lazy|write``): a list, a generator calling ``start_response`` lazily, or
the legacy ``write()`` callable. File cases use Starlette's ``FileResponse`` (ASGI, which
sends ``http.response.pathsend`` when the server offers it) and ``wsgi.file_wrapper``.
"""

from __future__ import annotations

import gzip
import itertools
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs
from wsgiref.util import FileWrapper

from starlette.responses import FileResponse

from embedgate import Engine
from embedgate.web.injection import MARKER
from tests.conftest import TEST_SECRET

FILES = Path(__file__).parent / "files"
BUFFER_LIMIT = 64 * 1024  # EMBEDGATE_MAX_INJECT_BYTES of these tests: streams outgrow it
APP_MARKER = ("x-app", "kept")  # a header of the app's own that must survive injection

PAGE = (
    b"<!doctype html><html><head><meta charset=utf-8><title>Reports</title></head>"
    b"<body><h1>Sales</h1><tc-dashboard data-embedgate-token=auth-token></tc-dashboard>"
    b"</body></html>"
)
MARKED = PAGE.replace(b"<title>", MARKER + b"<title>")
BODY_ONLY = b"<p>no head here</p><div>content</div></body>"
ALREADY = (
    b'<html><head><script type="application/json" id="embedgate-token">null</script>'
    b"</head><body></body></html>"
)
LATIN1 = (
    "<html><head><title>Caf\xe9 cr\xe8me</title></head><body>\xa9 \xe0 \xff</body></html>"
).encode("latin-1")
BIG_PAGE = b"<html><head><title>big</title></head><body>" + b"x" * (BUFFER_LIMIT + 10) + b"</body>"


def split_at(data: bytes, *cuts: int) -> tuple[bytes, ...]:
    """``data`` cut at the given offsets."""
    bounds = [0, *cuts, len(data)]
    return tuple(data[a:b] for a, b in itertools.pairwise(bounds))


def pieces(data: bytes, size: int) -> tuple[bytes, ...]:
    return tuple(data[i : i + size] for i in range(0, len(data), size))


Expect = Literal["inject", "untouched", "private"]


@dataclass(frozen=True)
class Case:
    """One response of the tiny apps and what the middleware must make of it."""

    name: str
    chunks: tuple[bytes, ...] = (PAGE,)
    content_type: str | None = "text/html; charset=utf-8"
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    content_length: bool = True  # declare Content-Length (streams do not)
    method: str = "GET"
    user: str | None = "alice"
    expect: Expect = "inject"
    anchor: bytes | None = b"</head>"  # the snippet goes right before it (or replaces MARKER)
    file: str | None = None  # served from FILES as a file response

    @property
    def body(self) -> bytes:
        if self.file is not None:
            return (FILES / self.file).read_bytes()
        return b"".join(self.chunks)

    @property
    def sent_body(self) -> bytes:
        """The body the client must see when the page is left alone."""
        no_body = self.method == "HEAD" or self.status in (204, 304)
        return b"" if no_body else self.body

    def response_headers(self) -> list[tuple[str, str]]:
        """The app's headers, in WSGI's native-string form."""
        out: list[tuple[str, str]] = []
        if self.content_type is not None:
            out.append(("Content-Type", self.content_type))
        if self.content_length and self.status not in (204, 304):
            out.append(("Content-Length", str(len(self.body))))
        out.extend(self.headers)
        out.append(APP_MARKER)
        return out


CASES: tuple[Case, ...] = (
    Case("html-head"),
    Case("html-marker", chunks=(MARKED,), anchor=MARKER),
    Case(
        "html-head-split", chunks=split_at(PAGE, PAGE.index(b"</head>") + 4), content_length=False
    ),
    Case(
        "html-marker-split",
        chunks=split_at(MARKED, MARKED.index(MARKER) + 3, MARKED.index(MARKER) + 11),
        anchor=MARKER,
        content_length=False,
    ),
    Case("html-many-chunks", chunks=pieces(PAGE, 7), content_length=False),
    Case("html-body-only", chunks=(BODY_ONLY,), anchor=b"</body>"),
    Case("html-no-anchor", chunks=(b"<p>a fragment, nowhere to go</p>",), expect="untouched"),
    Case("html-empty", chunks=(), expect="untouched"),
    Case("xhtml", content_type="application/xhtml+xml"),
    Case("latin-1", chunks=(LATIN1,), content_type="text/html; charset=ISO-8859-1"),
    Case(
        "utf-16",
        chunks=(PAGE.decode().encode("utf-16"),),
        content_type="text/html; charset=utf-16",
        expect="untouched",
    ),
    Case(
        "headers-rewritten",
        headers=(
            ("ETag", '"v1"'),
            ("Last-Modified", "Wed, 21 Oct 2015 07:28:00 GMT"),
            ("Cache-Control", "public, max-age=600"),
            ("Vary", "Accept-Encoding"),
        ),
    ),
    Case(
        "csp-nonce",
        headers=(("Content-Security-Policy", "default-src 'self'; script-src 'nonce-r4nd0m+/='"),),
    ),
    Case(
        "json",
        chunks=(b'{"html": "</head>"}',),
        content_type="application/json",
        expect="untouched",
    ),
    Case(
        "gzip",
        chunks=(gzip.compress(PAGE, mtime=0),),
        headers=(("Content-Encoding", "gzip"),),
        expect="untouched",
    ),
    Case(
        "br",
        chunks=(b"\x1b\x4d\x00\xf8</head>not really brotli",),
        headers=(("Content-Encoding", "br"),),
        expect="untouched",
    ),
    Case(
        # No head: the point needs the whole body, which outgrows the buffer.
        "stream-over-limit",
        chunks=pieces(b"<html><body>" + b"y" * (3 * BUFFER_LIMIT) + b"</body>", 16384),
        headers=(("Cache-Control", "public, max-age=60"), ("ETag", '"stream"')),
        content_length=False,
        expect="untouched",
    ),
    Case(
        # A head: injected at </head>, the rest streamed as it comes (never buffered).
        "stream-past-the-head",
        chunks=pieces(b"<html><head></head><body>" + b"y" * (3 * BUFFER_LIMIT) + b"</body>", 16384),
        content_length=False,
    ),
    Case(
        # Released at </head> with the length declared: the new one is the old plus the snippet.
        "stream-past-the-head-with-length",
        chunks=pieces(b"<html><head></head><body>" + b"y" * (BUFFER_LIMIT // 2) + b"</body>", 4096),
    ),
    Case("length-over-limit", chunks=(BIG_PAGE,), expect="untouched"),
    Case(
        "event-stream",
        chunks=(b"data: one\n\n", b"data: </head>\n\n", b"data: three\n\n"),
        content_type="text/event-stream",
        content_length=False,
        expect="untouched",
    ),
    # A HEAD answers with the headers its GET would have: no shared cache keeps either.
    Case(
        "head-method",
        method="HEAD",
        headers=(("Cache-Control", "public, max-age=60"), ("Surrogate-Control", "max-age=600")),
        expect="private",
    ),
    Case("head-anonymous", method="HEAD", user=None, expect="untouched"),
    Case("status-204", chunks=(), status=204, expect="untouched"),
    Case("status-304", chunks=(), status=304, headers=(("ETag", '"v1"'),), expect="untouched"),
    Case("status-500", status=500, expect="untouched"),
    Case("status-404", status=404, expect="untouched"),
    Case("already-injected", chunks=(ALREADY,), expect="untouched"),
    Case("anonymous", user=None, expect="untouched"),
    Case("file-html", file="static.html", content_type="text/html; charset=utf-8"),
    Case(
        "file-text", file="notes.txt", content_type="text/plain; charset=utf-8", expect="untouched"
    ),
)
BY_NAME = {case.name: case for case in CASES}
WSGI_STYLES = ("iterable", "lazy", "write")


def case_path(case: Case, style: str | None = None) -> str:
    return f"/case/{case.name}" + (f"?style={style}" if style else "")


def make_engine(**settings: Any) -> Engine:
    """The engine of these tests: HMAC-signed generic tokens, a small buffer limit."""
    settings.setdefault("secret", TEST_SECRET)
    settings.setdefault("max_inject_bytes", BUFFER_LIMIT)
    return Engine.from_settings(environ={}, **settings)


# -- the tiny ASGI app -----------------------------------------------------------------------

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]


async def asgi_app(
    scope: Scope,
    receive: Callable[[], Any],
    send: Callable[[Message], Any],
) -> None:
    """Serve ``/case/<name>`` as raw ASGI messages, one ``http.response.body`` per chunk."""
    case = BY_NAME[scope["path"].rpartition("/")[2]]
    if case.user is not None:
        scope.setdefault("state", {})["embedgate_user"] = {"sub": case.user}
    if case.file is not None:
        response = FileResponse(FILES / case.file, media_type=case.content_type)
        response.headers[APP_MARKER[0]] = APP_MARKER[1]
        await response(scope, receive, send)
        return
    headers = [
        (n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in case.response_headers()
    ]
    await send({"type": "http.response.start", "status": case.status, "headers": headers})
    chunks = () if scope["method"] == "HEAD" or case.status in (204, 304) else case.chunks
    if not chunks:
        await send({"type": "http.response.body", "body": b""})
        return
    for i, chunk in enumerate(chunks):
        await send({"type": "http.response.body", "body": chunk, "more_body": i < len(chunks) - 1})


# -- the tiny WSGI app -----------------------------------------------------------------------

StartResponse = Callable[..., Callable[[bytes], object]]


class Closing:
    """An app iterable that records its ``close()`` (PEP 3333: the server must call it)."""

    def __init__(self, chunks: Iterable[bytes], closed: list[str], name: str) -> None:
        self._chunks = list(chunks)
        self._closed = closed
        self._name = name

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._chunks)

    def close(self) -> None:
        self._closed.append(self._name)


class WSGICaseApp:
    """Serve ``/case/<name>?style=...``; ``closed`` lists the iterables closed so far."""

    def __init__(self) -> None:
        self.closed: list[str] = []

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        case = BY_NAME[environ["PATH_INFO"].rpartition("/")[2]]
        style = parse_qs(environ.get("QUERY_STRING", "")).get("style", ["iterable"])[0]
        if case.user is not None:
            environ["embedgate.user"] = {"sub": case.user}
        status = f"{case.status} {HTTPStatus(case.status).phrase}"
        headers = case.response_headers()
        if case.file is not None:
            start_response(status, headers)
            wrapper = environ.get("wsgi.file_wrapper", FileWrapper)
            return wrapper(open(FILES / case.file, "rb"), 8192)
        chunks = (
            () if environ["REQUEST_METHOD"] == "HEAD" or case.status in (204, 304) else case.chunks
        )
        if style == "lazy":
            return self._lazy(case, status, headers, chunks, start_response)
        if style == "write":
            write = start_response(status, headers)
            for chunk in chunks:
                write(chunk)
            return Closing([], self.closed, case.name)
        start_response(status, headers)
        return Closing(chunks, self.closed, case.name)

    def _lazy(
        self,
        case: Case,
        status: str,
        headers: list[tuple[str, str]],
        chunks: tuple[bytes, ...],
        start_response: StartResponse,
    ) -> Iterator[bytes]:
        try:
            start_response(status, headers)  # only once the server starts iterating
            yield from chunks
        finally:
            self.closed.append(case.name)
