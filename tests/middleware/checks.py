"""What every response of the table must look like: the snippet once, in the right place,
with the page's own bytes around it; or the app's response exactly as it left the app."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from embedgate import Engine, verify
from embedgate.web.injection import MARKER
from tests.middleware.cases import APP_MARKER, Case
from tests.middleware.drivers import Result
from tests.support.blocks import without_binding

SNIPPET = re.compile(
    rb'<script type="application/json" id="embedgate-token">(?P<data>.*?)</script>'
    rb"<script (?P<attrs>[^>]*) defer></script>"
)
# Headers the servers add or own; the middleware's verdict is judged without them.
SERVER_HEADERS = frozenset({"date", "server", "transfer-encoding", "connection", "keep-alive"})


@dataclass(frozen=True)
class Snippet:
    start: int
    end: int
    payload: dict[str, Any] | None
    attrs: dict[str, str]


def find_snippets(body: bytes) -> list[Snippet]:
    out = []
    for m in SNIPPET.finditer(body):
        attrs = dict(re.findall(r'([a-z-]+)="([^"]*)"', m.group("attrs").decode("ascii")))
        payload = without_binding(json.loads(m.group("data")))
        out.append(Snippet(m.start(), m.end(), payload, attrs))
    return out


def claims_of(engine: Engine, token: str) -> dict[str, Any]:
    keys = engine.service.issuer.keys  # type: ignore[attr-defined]
    return verify(
        token, keys, audience=engine.config.audience, issuer=engine.config.issuer, leeway=0
    )


def check_injected(engine: Engine, case: Case, result: Result) -> Snippet:
    """The page carries one snippet, at the case's anchor, and the headers of a page
    holding a credential; everything else is the app's."""
    assert result.status == case.status
    snippets = find_snippets(result.body)
    assert len(snippets) == 1, f"expected one snippet, got {len(snippets)}"
    snippet = snippets[0]
    original = case.body
    if case.anchor == MARKER:
        assert MARKER not in result.body
        at = original.index(MARKER)
        assert snippet.start == at
        around = original[:at] + original[at + len(MARKER) :]
    else:
        assert case.anchor is not None
        assert result.body[snippet.end :].startswith(case.anchor)
        around = original
    assert result.body[: snippet.start] + result.body[snippet.end :] == around  # bytes round-trip
    assert snippet.payload is not None
    assert set(snippet.payload) >= {"token", "expires_at", "refresh_in", "endpoint"}
    assert claims_of(engine, snippet.payload["token"])["sub"] == case.user
    assert snippet.payload["endpoint"] == "/_embedgate/token"
    assert snippet.attrs["src"].startswith("/_embedgate/embedgate.js?v=")
    # The loader carries the nonce the page's CSP allows for scripts, and only that.
    policy = dict(case.headers).get("Content-Security-Policy")
    nonce = re.search(r"'nonce-([^']+)'", policy) if policy else None
    assert snippet.attrs.get("nonce") == (nonce.group(1) if nonce else None)
    # Headers of a page holding a credential.
    # A stream without a declared length stays unframed by us (the server chunks it).
    length = result.header("content-length")
    assert length == str(len(result.body)) or (length is None and not case.content_length)
    assert "etag" not in result.names()
    assert "last-modified" not in result.names()
    assert result.all("cache-control") == ["private, no-store"]
    vary = [t.strip().lower() for v in result.all("vary") for t in v.split(",")]
    assert vary.count("cookie") == 1
    cookies = result.all("set-cookie")
    assert len(cookies) == 1
    assert cookies[0].startswith("embedgate_session=")
    assert result.header(APP_MARKER[0]) == APP_MARKER[1]
    assert result.header("content-type") == case.content_type
    return snippet


def check_untouched(case: Case, result: Result, app_headers: list[tuple[str, str]] | None) -> None:
    """The response is the app's, byte for byte; with ``app_headers`` (what the app sent,
    recorded in process) the headers must be exactly those."""
    assert result.status == case.status
    assert result.body == case.sent_body
    assert "set-cookie" not in result.names()
    if app_headers is not None:
        assert result.headers == app_headers
        return
    # Over a real server: the app's headers survive, the server may add its own.
    seen = [(n, v) for n, v in result.headers if n not in SERVER_HEADERS]
    expected = [(n.lower(), v) for n, v in case.response_headers()]
    if case.file is not None:  # the file response chose its own validators
        expected = [(n, v) for n, v in expected if n != "content-type"]
        seen = [(n, v) for n, v in seen if n in {e for e, _ in expected}]
    for pair in expected:
        if pair[0] == "content-length" and case.method == "HEAD":
            continue  # some servers recompute it for HEAD
        assert pair in seen, f"{pair} lost"


def check_private(case: Case, result: Result) -> None:
    """The body is the app's, the headers keep every shared cache away (HEAD of a page)."""
    assert result.status == case.status
    assert result.body == case.sent_body
    assert result.header("cache-control") == "private, no-store"
    assert "cookie" in (result.header("vary") or "").lower()
    assert "surrogate-control" not in result.names()
    assert result.header(APP_MARKER[0]) == APP_MARKER[1]
