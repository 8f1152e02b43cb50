"""Property-based fuzz of the page injection through both real middleware (ASGI, WSGI).

Pages are built from parts whose role is known (decoys hide ``</head>``, ``</body>``, the
marker or a data block where the HTML parser does not see them: comments, attribute
values, raw-text elements, script strings), so the expected insertion point is known by
construction; html5lib (test dependency only) then parses every injected page as a browser
would. The oracle:

- untouched responses: the app's bytes and headers, exactly;
- injected responses: one data block and one loader, parsed by html5lib as elements (the
  block's JSON intact), at the expected place, every original byte kept in order, and the
  rest of the document parsed exactly as before; framing: ``Content-Length`` equal to the
  body, never with ``Transfer-Encoding``.

``make test`` runs a small seed; ``make fuzz`` runs the nightly profile (≥ 100k cases), chosen
with ``EMBEDGATE_FUZZ=nightly`` (or any Hypothesis profile name registered below).
"""

from __future__ import annotations

import gzip
import itertools
import json
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

import html5lib
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embedgate.web.injection import MARKER
from tests.middleware.cases import make_engine
from tests.middleware.checks import find_snippets
from tests.middleware.drivers import asgi_direct, wsgi_direct
from tests.middleware.shells import SHELLS, Shell
from tests.support.blocks import without_binding

settings.register_profile(
    "seed",
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "nightly",
    max_examples=int(os.environ.get("EMBEDGATE_FUZZ_EXAMPLES", "50000")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
PROFILE = os.environ.get("EMBEDGATE_FUZZ", "seed")

ENGINE = make_engine()
SESSION = "f" * 40


# -- pages -------------------------------------------------------------------------------

DECOY_TEXT = [
    b"</head>",
    b"</HEAD >",
    b"</body>",
    b"</Body\n>",
    MARKER,
    b"<script id=embedgate-token>",
    b"id='embedgate-token'",
    b"<body>",
    b"x",
    b"",
]


@st.composite
def decoy(draw: st.DrawFn) -> bytes:
    """Markup the parser reads as text, a comment or an attribute: never an insertion point."""
    inner = draw(st.sampled_from(DECOY_TEXT))
    shape = draw(st.integers(0, 11))
    if shape == 0:
        return b"<!-- " + inner + b" -->"
    if shape == 1:
        return b'<meta name="d" content="' + inner.replace(b'"', b"'") + b'">'
    if shape == 2:
        return b"<link rel=x title='" + inner.replace(b"'", b'"') + b"'>"
    if shape == 3:
        return b'<script>var s = "' + inner.replace(b'"', b"'") + b'";</script>'
    if shape == 4:
        return b"<title>" + inner + b"</title>"
    if shape == 5:
        return b"<style>/* " + inner + b" */</style>"
    if shape == 6:
        return b"<noscript>" + inner + b"</noscript>"
    if shape == 7:
        return b"<script><!-- <script>'" + inner + b"'</script> --></script>"
    if shape == 8:
        return b"<textarea>" + inner + b"</textarea>"
    if shape == 9:
        return b"<xmp>" + inner + b"</xmp>"
    if shape == 10:
        return b"<!--" + inner.replace(b"-->", b"") + b"--!>"
    return b'<script type="text/template" data-x="' + inner.replace(b'"', b"") + b'"></script>'


PLAIN_HEAD = [
    b'<meta charset="utf-8">',
    b"<meta name=viewport content=width=device-width>",
    b'<link rel="stylesheet" href="/s.css">',
    b'<script src="/a.js" defer></script>',
    b"<style>p{color:red}</style>",
    b"\n  ",
    b"<base href=/>",
]
PLAIN_BODY = [b"<p>para</p>", b"<div class=a>text &amp; more</div>", b"\n", b"<br/>", b"<h1>T</h1>"]
BLOCKS = [
    b'<script type="application/json" id="embedgate-token">null</script>',
    b"<script type='application/json' id='embedgate-token'>null</script>",
    b"<script id=embedgate-token type=application/json>null</script>",
    b"<SCRIPT TYPE=application/json ID=embedgate-token>null</SCRIPT>",
]


@dataclass
class Page:
    body: bytes
    expected: tuple[str, int] | None  # (kind, offset) of the insertion point, or None


@st.composite
def pages(draw: st.DrawFn) -> Page:
    parts: list[tuple[bytes, str]] = []
    if draw(st.booleans()):
        parts.append((b"<!DOCTYPE html>", "plain"))
    parts.append((b"<html>", "plain"))
    has_head = draw(st.booleans())
    head_end = draw(st.sampled_from([b"</head>", b"</HEAD>", b"</head >", b"</head\n>"]))
    text = st.sampled_from(["plain", "decoy", "marker", "block"])
    if has_head:
        parts.append((b"<head>", "plain"))
        for role in draw(st.lists(text, max_size=6)):
            parts.append(_part(draw, role, PLAIN_HEAD))
        parts.append((head_end, "head"))
    if draw(st.booleans()):
        parts.append((b"<body>", "plain"))
    # After a head end nothing is read: a block there would be the page's own mistake.
    body_text = st.sampled_from(["plain", "decoy", "marker"]) if has_head else text
    for role in draw(st.lists(body_text, max_size=6)):
        parts.append(_part(draw, role, PLAIN_BODY))
    if draw(st.booleans()):
        parts.append((draw(st.sampled_from([b"</body>", b"</BODY>", b"</body >"])), "body"))
        parts.append((b"</html>", "plain"))
    for _ in range(draw(st.integers(0, 2))):
        parts.append((draw(decoy()), "plain"))
    # The rules: read up to the head end (the whole page without one); a data block there
    # leaves the page alone; else the first marker, else the head end, else the last </body>.
    body = b""
    marker: int | None = None
    head_at: int | None = None
    block = False
    last_body: int | None = None
    for data, role in parts:
        if head_at is None:
            if role == "block":
                block = True
            elif role == "marker" and marker is None:
                marker = len(body)
            elif role == "head":
                head_at = len(body)
        if role == "body":
            last_body = len(body)
        body += data
    expected: tuple[str, int] | None = None
    if block:
        expected = None
    elif marker is not None:
        expected = ("marker", marker)
    elif head_at is not None:
        expected = ("head", head_at)
    elif last_body is not None:
        expected = ("body", last_body)
    return Page(body, expected)


def _part(draw: st.DrawFn, role: str, plain: list[bytes]) -> tuple[bytes, str]:
    if role == "decoy":
        return draw(decoy()), "plain"
    if role == "marker":
        return MARKER, "marker"
    if role == "block":
        return draw(st.sampled_from(BLOCKS)), "block"
    return draw(st.sampled_from(plain)), "plain"


# -- responses ---------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: list[tuple[bytes, bytes]]
    chunks: list[bytes]
    injectable: bool  # headers, status and charset allow injection


CHARSETS = [None, "utf-8", "UTF-8", "iso-8859-1", "windows-1252", "shift_jis", "utf-16"]


@st.composite
def responses(draw: st.DrawFn, body: bytes) -> Response:
    status = draw(st.sampled_from([200, 200, 200, 201, 204, 206, 304, 404, 500]))
    media = draw(st.sampled_from(["text/html", "text/html", "application/xhtml+xml", "text/plain"]))
    charset = draw(st.sampled_from(CHARSETS))
    encoding = draw(st.sampled_from([None, None, "identity", "gzip"]))
    injectable = (
        200 <= status < 300
        and status not in (204, 206)
        and media != "text/plain"
        and charset != "utf-16"
        and encoding != "gzip"
    )
    if charset == "utf-16":
        body = body.decode("latin-1").encode("utf-16")
    elif charset in ("utf-8", "UTF-8"):
        body = body + "<p>caf\u00e9 \u2603</p>".encode()
    elif charset in ("iso-8859-1", "windows-1252"):
        body = body + "<p>caf\u00e9</p>".encode("latin-1")
    elif charset == "shift_jis":
        body = body + "<p>\u8868\u793a</p>".encode("shift_jis")  # 0x5C/0x7C second bytes
    if encoding == "gzip":
        body = gzip.compress(body, mtime=0)
    if status in (204, 304):
        body = b""
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", (media + (f"; charset={charset}" if charset else "")).encode())
    ]
    if encoding:
        headers.append((b"content-encoding", encoding.encode()))
    if draw(st.booleans()) and status not in (204, 304):
        headers.append((b"content-length", str(len(body)).encode()))
    headers.append((b"x-app", b"kept"))
    if draw(st.booleans()):
        headers.append((b"etag", b'"v1"'))
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=8)))
    if draw(st.booleans()):  # one-byte chunks over a stretch
        start = draw(st.integers(0, len(body)))
        cuts = sorted({*cuts, *range(start, min(len(body), start + 40))})
    bounds = [0, *cuts, len(body)]
    chunks = [body[a:b] for a, b in itertools.pairwise(bounds)]
    return Response(status, headers, chunks, injectable)


# -- the apps ----------------------------------------------------------------------------


def asgi_app(response: Response) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(
            {"type": "http.response.start", "status": response.status, "headers": response.headers}
        )
        chunks = response.chunks if scope["method"] != "HEAD" else [b""]
        for i, chunk in enumerate(chunks):
            more = i < len(chunks) - 1
            await send({"type": "http.response.body", "body": chunk, "more_body": more})

    return app


def wsgi_app(response: Response) -> Any:
    def app(environ: Any, start_response: Any) -> Any:
        headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in response.headers]
        start_response(f"{response.status} X", headers)
        if environ["REQUEST_METHOD"] == "HEAD":
            return []
        return iter(list(response.chunks))  # a generator-like iterable: streamed

    return app


def _tree(data: bytes) -> bytes:
    parser = html5lib.HTMLParser(namespaceHTMLElements=False)
    return _serialise(parser.parse(data, scripting=True, transport_encoding="latin-1"))


def _serialise(doc: Any) -> bytes:
    """The tree without comments and blank text: a comment or whitespace before <head>
    moves into the head once our elements open it, which changes nothing a page shows."""
    for parent in list(doc.iter()):
        for child in list(parent):
            if child.tag is ET.Comment:
                _remove(parent, child)
    # Whitespace the parser drops before <head> is kept once our elements opened it.
    for element in doc.iter():
        if element.text is not None and not element.text.strip():
            element.text = None
        if element.tail is not None and not element.tail.strip():
            element.tail = None
    return ET.tostring(doc)


def _without_ours(data: bytes) -> Any:
    parser = html5lib.HTMLParser(namespaceHTMLElements=False)
    return parser.parse(data, scripting=True, transport_encoding="latin-1")


def _remove(parent: Any, element: Any) -> None:
    """Take ``element`` out of the tree, keeping the text that followed it (its tail)."""
    tail = element.tail or ""
    siblings = list(parent)
    at = siblings.index(element)
    if at:
        siblings[at - 1].tail = (siblings[at - 1].tail or "") + tail
    else:
        parent.text = (parent.text or "") + tail
    parent.remove(element)


def _check_parsed(original: bytes, out: bytes, point: tuple[str, int], payload: Any) -> None:
    """html5lib agrees: our block and loader are elements, the JSON intact, and the rest of
    the page parses exactly as before."""
    doc = _without_ours(out)
    found = [
        (parent, el)
        for parent in doc.iter()
        for el in list(parent)
        if el.tag == "script" and el.get("id") == "embedgate-token"
    ]
    assert len(found) == 1, f"html5lib sees {len(found)} data blocks"
    parent, block = found[0]
    assert without_binding(json.loads(block.text or "")) == payload
    siblings = list(parent)
    loader = siblings[siblings.index(block) + 1]
    assert loader.tag == "script"
    assert "embedgate.js" in (loader.get("src") or "")
    # In the head, or in the body when body-only content (a textarea, say) closed the head
    # before its end tag: an element either way, never inside another's text.
    assert parent.tag in ("head", "body")
    _remove(parent, loader)
    _remove(parent, block)
    before = original
    if point[0] == "marker":
        before = original[: point[1]] + original[point[1] + len(MARKER) :]
    assert _serialise(doc) == _tree(before)


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s.kind)
@settings(settings.get_profile(PROFILE))
@given(page=pages(), data=st.data())
def test_injection_fuzz(shell: Shell, page: Page, data: st.DataObject) -> None:
    response = data.draw(responses(page.body))
    method = data.draw(st.sampled_from(["GET", "GET", "HEAD"]))
    user = data.draw(st.sampled_from([None, "alice"]))
    app = shell.wrap(
        ENGINE,
        app=asgi_app(response) if shell.kind == "asgi" else wsgi_app(response),
        session_resolver=lambda _: SESSION,
    )
    headers = [("X-Test-User", user)] if user else []
    run = asgi_direct if shell.kind == "asgi" else wsgi_direct
    result = run(app, method, "/", headers)
    original = b"".join(response.chunks) if method == "GET" else b""
    app_headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in response.headers]
    inject = (
        response.injectable and method == "GET" and user is not None and page.expected is not None
    )
    assert result.status == response.status
    if method == "HEAD" and user is not None and response.injectable:
        # The headers of the GET that would carry a token: private, the app's own kept.
        assert result.body == b""
        assert result.header("cache-control") == "private, no-store"
        assert result.header("x-app") == "kept"
        return
    if not inject:
        assert result.body == original
        assert [(n, v) for n, v in result.headers] == [(n.lower(), v) for n, v in app_headers]
        return
    snippets = find_snippets(result.body)
    assert len(snippets) == 1
    snippet = snippets[0]
    kind, offset = page.expected  # type: ignore[misc]
    assert snippet.start == offset, (kind, offset, snippet.start)
    rest = result.body[: snippet.start] + result.body[snippet.end :]
    if kind == "marker":
        assert rest == original[:offset] + original[offset + len(MARKER) :]
    else:
        assert rest == original
    # Released at the head, a stream without a declared length stays unframed by us.
    declared = any(n == b"content-length" for n, _ in response.headers)
    lengths = result.all("content-length")
    assert lengths == [str(len(result.body))] or (not lengths and not declared)
    assert result.header("transfer-encoding") is None
    assert result.header("etag") is None
    assert result.header("x-app") == "kept"
    _check_parsed(original, result.body, page.expected, snippet.payload)  # type: ignore[arg-type]
